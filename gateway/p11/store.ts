// What the PKCS#11 facade keeps beside the cluster's key records, in DIR/gateway/p11/:
// - store.json: certificates created with C_CreateObject (token objects every logged-in
//   principal sees), and per key: the CKA_ID given at C_GenerateKeyPair or import (instead of
//   its UUID's bytes), and the label C_SetAttributeValue chose among the key's aliases;
// - credential.key: the MAC key of the session credentials issued at C_Login.
// Changes run one at a time through `exclusive` and are written atomically.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../contract/io/atomic.js';
import { readJsonFileIfExists } from '../../contract/io/json-file.js';
import { SerialQueue } from '../../contract/serial-queue.js';

const hex = z.string().regex(/^([0-9a-f]{2})*$/);

const certificateSchema = z.object({
  id: z.string().uuid(),
  /** DER, base64 */
  value: z.string(),
  label: z.string(),
  /** CKA_ID, hex */
  ckaId: hex,
  private: z.boolean(),
  trusted: z.boolean(),
  category: z.number().int().min(0).max(3),
  createdBy: z.string(),
  creationDate: z.number(),
});
export type StoredCertificate = z.infer<typeof certificateSchema>;

const keyMetaSchema = z.object({ ckaId: hex.optional(), label: z.string().max(256).optional() });
export type KeyMeta = z.infer<typeof keyMetaSchema>;

const fileSchema = z.object({
  certificates: z.array(certificateSchema),
  keys: z.record(z.string().uuid(), keyMetaSchema),
});
type StoreFile = z.infer<typeof fileSchema>;

export class P11Store {
  private data: StoreFile;
  private readonly queue = new SerialQueue();
  private readonly file: string;
  /** MAC key for session credentials; survives restarts so applications stay logged in. */
  readonly credentialKey: Buffer;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = path.join(dir, 'store.json');
    this.data = readJsonFileIfExists(this.file, fileSchema) ?? { certificates: [], keys: {} };
    const keyFile = path.join(dir, 'credential.key');
    // Made once, synchronously, before the listener accepts anything.
    if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32), { mode: 0o600, flag: 'wx' });
    this.credentialKey = readFileSync(keyFile);
    if (this.credentialKey.length !== 32) throw new Error(`${keyFile}: not a 32-byte key`);
  }

  exclusive<T>(f: () => Promise<T>): Promise<T> {
    return this.queue.run(f);
  }

  certificates(): readonly StoredCertificate[] {
    return this.data.certificates;
  }

  keyMeta(keyId: string): KeyMeta | undefined {
    return this.data.keys[keyId];
  }

  /** Call inside `exclusive`. */
  async addCertificate(c: StoredCertificate): Promise<void> {
    await this.save({ ...this.data, certificates: [...this.data.certificates, certificateSchema.parse(c)] });
  }

  /** Call inside `exclusive`. Returns whether it existed. */
  async removeCertificate(id: string): Promise<boolean> {
    const rest = this.data.certificates.filter((c) => c.id !== id);
    if (rest.length === this.data.certificates.length) return false;
    await this.save({ ...this.data, certificates: rest });
    return true;
  }

  /** Call inside `exclusive`. Sets the fields given, keeps the others. */
  async setKeyMeta(keyId: string, meta: KeyMeta): Promise<void> {
    await this.save({ ...this.data, keys: { ...this.data.keys, [keyId]: keyMetaSchema.parse({ ...this.data.keys[keyId], ...meta }) } });
  }

  private async save(next: StoreFile): Promise<void> {
    await writeFileAtomic(this.file, Buffer.from(JSON.stringify(next, null, 2) + '\n'), 0o600);
    this.data = next;
  }
}
