// The gateway's journal of resharings between their two phases (gateway/cluster.ts `reshare`).
// Once every new holder finished with the same public package, each is told to adopt its new
// share. A gateway that stops half-way leaves some holders on new shares and the others on old
// ones, which do not sign together, and a key record naming the old package. So the package is
// written here, atomically, before the first adopt, and removed once every holder adopted and
// the key record names it. A record left here is finished at the gateway's next start (and
// before MpcHsm.RefreshKeyShares reshares the key): adopt is sent again to every holder —
// a signer answers a repeated adopt as done (signers/node/reshare.ts) — then the key record is
// updated. One that still fails is logged and kept for the next attempt.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { fsyncDir, writeFileAtomic } from '../contract/io/atomic.js';
import { keyPackageSchema } from '../signers/protocols/key-package.js';
import { keyIdSchema, sessionIdSchema } from '../contract/signer-rpc/relayed.js';
import { readJsonFile } from '../contract/io/json-file.js';

export const journalRecordSchema = z.strictObject({
  keyId: keyIdSchema,
  session: sessionIdSchema,
  publicPackage: keyPackageSchema,
  /** The new holders: every one of them is told to adopt. */
  holders: z.array(z.number().int().min(1).max(255)).min(1).max(255),
});
export type JournalRecord = z.infer<typeof journalRecordSchema>;

/** One file per key being reshared, in a directory of the gateway's own. */
export class ReshareJournal {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  private file(keyId: string): string {
    return path.join(this.dir, `${keyIdSchema.parse(keyId)}.json`);
  }

  get(keyId: string): JournalRecord | undefined {
    const file = this.file(keyId);
    return existsSync(file) ? this.read(file) : undefined;
  }

  list(): JournalRecord[] {
    // Only complete records: an interrupted write leaves a hidden temp file, never a `.json`.
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => this.read(path.join(this.dir, f)));
  }

  put(r: JournalRecord): Promise<void> {
    return writeFileAtomic(this.file(r.keyId), Buffer.from(JSON.stringify(journalRecordSchema.parse(r)) + '\n'), 0o600);
  }

  async delete(keyId: string): Promise<void> {
    await unlink(this.file(keyId));
    await fsyncDir(this.dir);
  }

  private read(file: string): JournalRecord {
    return readJsonFile(file, journalRecordSchema);
  }
}

/** What finishing a resharing takes of the cluster (gateway/cluster.ts), which uses this journal. */
