// A gateway journal of operations on keys that span the signers and must not be left half-done
// by a crash: one record per key, written atomically (complete or absent) before the first
// signer is told anything that cannot be taken back, and removed once the operation finished
// everywhere. What is left at the gateway's next start is finished or rolled back there
// (resharings: reshare-journal.ts; key creations: create-journal.ts).
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { fsyncDir, writeFileAtomic } from '../contract/io/atomic.js';
import { keyIdSchema } from '../contract/signer-rpc/relayed.js';
import { readJsonFile } from '../contract/io/json-file.js';

/** One file per key, in a directory of the gateway's own. */
export class KeyJournal<T extends { keyId: string }> {
  constructor(
    private readonly dir: string,
    private readonly schema: z.ZodType<T>,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  private file(keyId: string): string {
    return path.join(this.dir, `${keyIdSchema.parse(keyId)}.json`);
  }

  get(keyId: string): T | undefined {
    const file = this.file(keyId);
    return existsSync(file) ? this.read(file) : undefined;
  }

  list(): T[] {
    // Only complete records: an interrupted write leaves a hidden temp file, never a `.json`.
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => this.read(path.join(this.dir, f)));
  }

  put(r: T): Promise<void> {
    return writeFileAtomic(this.file(r.keyId), Buffer.from(JSON.stringify(this.schema.parse(r)) + '\n'), 0o600);
  }

  async delete(keyId: string): Promise<void> {
    await unlink(this.file(keyId));
    await fsyncDir(this.dir);
  }

  private read(file: string): T {
    return readJsonFile(file, this.schema);
  }
}
