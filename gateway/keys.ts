// Key metadata at the gateway: one JSON file per key, written atomically. Never a share.
import { mkdirSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { fsyncDir, writeFileAtomic } from '../contract/io/atomic.js';
import { KEY_USAGES } from '../contract/keys/specs.js';
import { publicPackageSchema } from '../signers/protocols/dkg.js';
import { keyPackageSchema } from '../signers/protocols/key-package.js';
import { rsaPublicParamsSchema } from '../signers/protocols/rsa/key.js';
import { ecdsaPublicSchema } from '../signers/protocols/ecdsa/keyshare.js';
import { readJsonFile } from '../contract/io/json-file.js';

export const schemeSchema = z.enum(['frost-ed25519', 'frost-secp256k1', 'frost-p256', 'rsa-shoup', 'ecdsa-dkls23', 'tprf-ristretto255']);
export type Scheme = z.infer<typeof schemeSchema>;

export const keyRecordSchema = z.object({
  keyId: z.string().uuid(),
  scheme: schemeSchema,
  keySpec: z.string(),
  keyUsage: z.enum(KEY_USAGES),
  /** SubjectPublicKeyInfo DER, base64; empty for a symmetric key. */
  publicKey: z.string(),
  /** Party ids of the signers that hold shares, and how many must take part. */
  holders: z.array(z.number().int()),
  threshold: z.number().int(),
  state: z.enum(['Enabled', 'Disabled', 'PendingDeletion']),
  origin: z.enum(['AWS_KMS', 'EXTERNAL']),
  description: z.string(),
  creationDate: z.number(),
  deletionDate: z.number().optional(),
  tags: z.array(z.object({ TagKey: z.string(), TagValue: z.string() })).default([]),
  /** The scheme's public material the coordinator needs: FROST (or a PRF key's) verifying shares, or RSA v, v_i. */
  frost: publicPackageSchema.optional(),
  rsa: rsaPublicParamsSchema.optional(),
  ecdsa: ecdsaPublicSchema.optional(),
  /**
   * A symmetric key's materials after the first (`frost`), oldest first: each rotation's, under
   * the id its ciphertexts name, kept to decrypt what it sealed. The last one seals.
   */
  materials: z.array(z.object({ id: z.number().int().min(2), frost: publicPackageSchema, createdAt: z.number(), rotationType: z.enum(['AUTOMATIC', 'ON_DEMAND']) })).optional(),
  /**
   * An older sharing of the key revived by approved restorations (gateway/revival.ts): its
   * package (and digest) and the restored holders that hold it, until the key is reshared.
   */
  revival: z.object({ package: keyPackageSchema, digest: z.string().regex(/^[0-9a-f]{64}$/), holders: z.array(z.number().int()) }).optional(),
  /** Holders restored from a backup made before the key (gateway/revival.ts): they hold no share of it until it is reshared. */
  missing: z.array(z.number().int()).optional(),
  /** A symmetric key's automatic rotation: every `periodDays`, next at `next` (ms). */
  rotation: z.object({ enabled: z.boolean(), periodDays: z.number().int().min(90).max(2560), next: z.number().optional() }).optional(),
});
export type KeyRecord = z.infer<typeof keyRecordSchema>;

export class KeyStore {
  private readonly keys = new Map<string, KeyRecord>();
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.json')) continue; // leftover temp files of an interrupted write
      const file = path.join(dir, f);
      const record = readJsonFile(file, keyRecordSchema);
      this.keys.set(record.keyId, record);
    }
  }

  get(keyId: string): KeyRecord | undefined {
    return this.keys.get(keyId);
  }

  /** Keys in creation order (stable paging). */
  list(): KeyRecord[] {
    return [...this.keys.values()].sort((a, b) => a.creationDate - b.creationDate || a.keyId.localeCompare(b.keyId));
  }

  /** Forgets a destroyed key's record. */
  async delete(keyId: string): Promise<void> {
    await rm(path.join(this.dir, `${keyId}.json`), { force: true });
    await fsyncDir(this.dir);
    this.keys.delete(keyId);
  }

  async put(record: KeyRecord): Promise<void> {
    const r = keyRecordSchema.parse(record);
    await writeFileAtomic(path.join(this.dir, `${r.keyId}.json`), Buffer.from(JSON.stringify(r, null, 2) + '\n'), 0o600);
    this.keys.set(r.keyId, r);
  }
}
