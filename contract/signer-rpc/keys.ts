// A signer's shares of keys: forgetting one whose creation did not finish (a pending share,
// never a committed key), committing a new key once the gateway saw every signer finish with the
// same public package, destroying one whose approved deletion is due by the signer's own clock,
// and the inventory of what it holds (what `mpchsm doctor` and a gateway resuming an interrupted
// creation compare).
import { z } from 'zod';
import { route } from './route.js';
import { keyIdSchema } from './relayed.js';

const removal = z.strictObject({ keyId: keyIdSchema });
/** `existed`: whether this signer held a share of it. */
const removed = z.object({ keyId: z.string(), existed: z.boolean() });

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * One key as a signer holds it. `pending`: made by a key generation the gateway has not
 * committed yet (only such a share may be forgotten on the gateway's word). `publicKey`: SHA-256
 * of the key's public key (the RSA modulus and exponent, or the group public key) as
 * signers/protocols/key-package.ts `publicKeyOfPackage` writes it; `package`: SHA-256 of the
 * canonical JSON of its public package. `publicPackage` only when one key was asked for.
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
});
export type InventoryEntry = z.infer<typeof inventoryEntrySchema>;

export const keys = {
  forget: route('/v1/keys/forget', removal, removed),
  commit: route('/v1/keys/commit', removal, z.object({ keyId: z.string(), committed: z.boolean() })),
  destroy: route('/v1/keys/destroy', removal, removed),
  /** `pending`: only the keys not committed, without their hashes (what the gateway's start sweeps). */
  inventory: route('/v1/keys/inventory', z.strictObject({ keyId: keyIdSchema.optional(), pending: z.literal(true).optional() }), z.object({ keys: z.array(inventoryEntrySchema).max(100_000) })),
};
