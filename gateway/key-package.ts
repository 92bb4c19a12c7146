// A key's public package, whatever its scheme: FROST's (dkg.ts), threshold ECDSA's
// (ecdsa/keyshare.ts) or Shoup RSA's public parameters (rsa/key.ts). Resharing replaces it; the
// public key in it must stay the same.
import { z } from 'zod';
import { resharePackageSchema } from '../signers/protocols/reshare.js';
import { rsaPublicParamsSchema } from '../signers/protocols/rsa/key.js';
import type { KeyRecord } from './keys.js';

export const keyPackageSchema = z.union([resharePackageSchema, rsaPublicParamsSchema]);
export type KeyPackage = z.infer<typeof keyPackageSchema>;

/** The package a key record holds for its scheme. */
export const packageOf = (k: KeyRecord): KeyPackage | undefined => (k.scheme === 'rsa-shoup' ? k.rsa : k.scheme === 'ecdsa-dkls23' ? k.ecdsa : k.frost);

/** The key record's field for a package. */
export const packageField = (p: KeyPackage): Pick<KeyRecord, 'rsa'> | Pick<KeyRecord, 'ecdsa'> | Pick<KeyRecord, 'frost'> =>
  'n' in p ? { rsa: p } : 'protocol' in p ? { ecdsa: p } : { frost: p };

/** What identifies the key in a package: the RSA modulus and exponent, or the group public key. */
export const publicKeyOfPackage = (p: KeyPackage): string => ('n' in p ? `${p.n}:${p.e}` : 'protocol' in p ? p.publicKey : p.groupPublicKey);
