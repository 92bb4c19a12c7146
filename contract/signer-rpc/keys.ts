// A signer's shares of keys: forgetting one whose creation did not finish (a pending share,
// never a committed key), committing a new key once the gateway saw every signer finish with the
// same public package, destroying one whose approved deletion is due by the signer's own clock,
// and the inventory of what it holds (what `mpchsm doctor` and a gateway resuming an interrupted
// creation or recovering its lost record of a key compare).
import { z } from 'zod';
import { KEY_USAGES } from '../keys/specs.js';
import { rotationSettingSchema, tagsSchema } from './authority.js';
import { route } from './route.js';
import { keyIdSchema } from './relayed.js';

const removal = z.strictObject({ keyId: keyIdSchema });
/** `existed`: whether this signer held a share of it. */
const removed = z.object({ keyId: z.string(), existed: z.boolean() });

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * A key as this signer's own policy record has it: what a gateway that lost its record of the
 * key rebuilds it from (gateway/key-recovery.ts). `createdAt`, `deletionDate`: by this signer's clock.
 */
export const inventoryKeySchema = z.object({
  keySpec: z.string().max(64),
  keyUsage: z.enum(KEY_USAGES),
  origin: z.enum(['AWS_KMS', 'EXTERNAL']),
  state: z.enum(['Enabled', 'Disabled', 'PendingDeletion']),
  policy: z.string().max(32768),
  createdAt: z.number(),
  deletionDate: z.number().optional(),
  /** As CreateKey, UpdateKeyDescription, TagResource and UntagResource left them (absent: a key made before signers kept them). */
  description: z.string().max(8192).optional(),
  tags: tagsSchema.optional(),
  rotation: rotationSettingSchema.optional(),
});
export type InventoryKey = z.infer<typeof inventoryKeySchema>;

/**
 * One key as a signer holds it. `pending`: made by a key generation the gateway has not
 * committed yet (only such a share may be forgotten on the gateway's word). `publicKey`: SHA-256
 * of the key's public key (the RSA modulus and exponent, or the group public key) as
 * signers/protocols/key-package.ts `publicKeyOfPackage` writes it; `package`: SHA-256 of the
 * canonical JSON of its public package. `publicPackage` and `key` (its policy record) only when
 * one key was asked for.
 */
export const inventoryEntrySchema = z.object({
  keyId: z.string(),
  state: z.enum(['pending', 'committed']),
  /** Whether the share is stored, and the key's policy record (one without the other is damage). */
  share: z.boolean(),
  policy: z.boolean(),
  publicKey: sha256Hex.optional(),
  package: sha256Hex.optional(),
  publicPackage: z.unknown().optional(),
  key: inventoryKeySchema.optional(),
  /** A symmetric key's materials after the first (rotations), by id, with their public packages; only when one key was asked for. */
  materials: z.array(z.object({ id: z.number().int().min(2), publicPackage: z.unknown() })).max(10_000).optional(),
});
export type InventoryEntry = z.infer<typeof inventoryEntrySchema>;

export const keys = {
  forget: route('/v1/keys/forget', removal, removed),
  commit: route('/v1/keys/commit', removal, z.object({ keyId: z.string(), committed: z.boolean() })),
  destroy: route('/v1/keys/destroy', removal, removed),
  /**
   * `pending`: only the keys not committed, without their hashes (what the gateway's start
   * sweeps). `recovery` (a gateway rebuilding its lost directory, gateway/gateway-recovery.ts):
   * also this signer's aliases (name → key id), governance chain, principals' public records and
   * the last numbered change it processed; the signer records in its audit log that it was read.
   */
  inventory: route(
    '/v1/keys/inventory',
    z.strictObject({ keyId: keyIdSchema.optional(), pending: z.literal(true).optional(), recovery: z.literal(true).optional() }),
    z.object({
      keys: z.array(inventoryEntrySchema).max(100_000),
      aliases: z.record(z.string(), z.string().uuid()).optional(),
      seq: z.number().int().min(0).optional(),
      /** The signer's governance chain (each link signed by administrators: it verifies itself). */
      governance: z.array(z.unknown()).max(10_000).optional(),
      /** The gateway's public record of each principal the signer knows it of (no secret). */
      principals: z.array(z.object({ name: z.string(), role: z.enum(['admin', 'app', 'auditor']), accessKeyId: z.string(), pinLoginHash: z.string() })).max(1024).optional(),
    }),
  ),
};
