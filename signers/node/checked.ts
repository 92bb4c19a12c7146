// Stored key records pass their full check (the shares' curve arithmetic against the public
// key: many scalar multiplications) once per record, not on every signature. The store is
// sealed with authenticated encryption, so bytes read back identical to bytes once checked are
// the same valid record; only their digests are kept here, no secrets.
import { createHash } from 'node:crypto';

export class CheckedRecords {
  private readonly digests = new Map<string, string>();

  /** `full(raw)` the first time a record's bytes are seen (and after they change), else `structural(raw)`. */
  load<T>(name: string, raw: Uint8Array, full: (raw: Uint8Array) => T, structural: (raw: Uint8Array) => T): T {
    const digest = createHash('sha256').update(raw).digest('hex');
    if (this.digests.get(name) === digest) return structural(raw);
    const value = full(raw);
    this.digests.set(name, digest);
    return value;
  }
}
