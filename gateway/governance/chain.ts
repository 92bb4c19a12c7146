// The governance chain the gateway was given at bootstrap (DIR/governance.json): verified at
// start, its last version in force, one link longer with each approved governance update; and
// how the gateway reads its governance files that may not exist yet.
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../contract/io/atomic.js';
import { verifyGovernanceChain, type GovernanceDocument } from '../../policy/index.js';
import { readJsonFile } from '../../contract/io/json-file.js';

/** Where the gateway keeps the governance chain it was given at bootstrap. */
export const governanceFile = (dir: string) => path.join(dir, 'governance.json');
export const governanceFileSchema = z.strictObject({ chain: z.array(z.unknown()).min(1) });

export class GovernanceChain {
  private constructor(
    private readonly dir: string,
    private chain: unknown[],
    private current: GovernanceDocument,
  ) {}

  /** Loads and verifies the governance chain; the gateway does not start without one. */
  static load(dir: string): GovernanceChain {
    const file = governanceFile(dir);
    const raw = readJson(file);
    if (raw === undefined) throw new Error(`${file} is missing: this gateway has no governance (re-initialise the cluster)`);
    const { chain } = governanceFileSchema.parse(raw);
    const g = verifyGovernanceChain(chain);
    if (!g.ok) throw new Error(`${file}: ${g.reason}`);
    return new GovernanceChain(dir, chain, g.governance);
  }

  /** The governance version in force. */
  get governance(): GovernanceDocument {
    return this.current;
  }

  /** Every link, oldest first, as administrators' tools verify and keep them. */
  get links(): readonly unknown[] {
    return this.chain;
  }

  /** Puts a verified update's link in force, once it is written. */
  async append(link: unknown, governance: GovernanceDocument): Promise<void> {
    const chain = [...this.chain, link];
    await writeFileAtomic(governanceFile(this.dir), Buffer.from(JSON.stringify({ chain }, null, 2) + '\n'), 0o644);
    [this.chain, this.current] = [chain, governance];
  }
}

/** A JSON file of the gateway's, or undefined if there is none yet. */
export function readJson(file: string): unknown {
  try {
    return readJsonFile(file, z.unknown());
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
