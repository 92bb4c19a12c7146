// What the KMS facade keeps beside the cluster's key records: aliases and key policies, in one
// JSON file written atomically. Every change — here or to a key record (state, description,
// tags) — runs through `exclusive`, one at a time, so concurrent requests never lose an update.
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../../contract/io/atomic.js';
import type { KeyRecord, KeyStore } from '../keys.js';
import { SerialQueue } from '../../contract/serial-queue.js';
import { readJsonFile } from '../../contract/io/json-file.js';

const aliasSchema = z.object({
  name: z.string(),
  keyId: z.string().uuid(),
  creationDate: z.number(),
  lastUpdatedDate: z.number(),
});
export type Alias = z.infer<typeof aliasSchema>;

const fileSchema = z.object({
  aliases: z.array(aliasSchema),
  /** Key policy documents by key id, as the caller wrote them. Enforcement is the policy issue's. */
  policies: z.record(z.string(), z.string()),
});
type StateFile = z.infer<typeof fileSchema>;

export class KmsState {
  private data: StateFile;
  private readonly queue = new SerialQueue();

  constructor(
    private readonly file: string,
    private readonly keys: KeyStore,
  ) {
    this.data = existsSync(file) ? readJsonFile(file, fileSchema) : { aliases: [], policies: {} };
  }

  /** Runs `f` after every earlier change has finished. */
  exclusive<T>(f: () => Promise<T>): Promise<T> {
    return this.queue.run(f);
  }

  alias(name: string): Alias | undefined {
    return this.data.aliases.find((a) => a.name === name);
  }

  /** All aliases, sorted by name (stable paging). */
  aliases(): Alias[] {
    return [...this.data.aliases].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  policy(keyId: string): string | undefined {
    return this.data.policies[keyId];
  }

  /** Call inside `exclusive`. Replaces (or, with keyId undefined, removes) an alias. */
  async putAlias(name: string, keyId: string | undefined, now = Date.now()): Promise<void> {
    const old = this.alias(name);
    const others = this.data.aliases.filter((a) => a.name !== name);
    const aliases = keyId ? [...others, { name, keyId, creationDate: old?.creationDate ?? now, lastUpdatedDate: now }] : others;
    await this.save({ ...this.data, aliases });
  }

  /** Call inside `exclusive`: drops a destroyed key's aliases and policy. */
  async forgetKey(keyId: string): Promise<void> {
    const { [keyId]: _, ...policies } = this.data.policies;
    await this.save({ aliases: this.data.aliases.filter((a) => a.keyId !== keyId), policies });
  }

  /** Call inside `exclusive`. */
  async putPolicy(keyId: string, policy: string): Promise<void> {
    await this.save({ ...this.data, policies: { ...this.data.policies, [keyId]: policy } });
  }

  /** Call inside `exclusive`: rewrites a key record with `change` applied to its current version. */
  async updateKey(keyId: string, change: (k: KeyRecord) => KeyRecord): Promise<KeyRecord> {
    const current = this.keys.get(keyId);
    if (!current) throw new Error(`key ${keyId} vanished`);
    const next = change(current);
    await this.keys.put(next);
    return next;
  }

  private async save(next: StateFile): Promise<void> {
    await writeFileAtomic(this.file, Buffer.from(JSON.stringify(next, null, 2) + '\n'), 0o600);
    this.data = next;
  }
}
