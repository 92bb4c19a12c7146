// A key's public package, whatever its scheme (FROST/ECDSA group package or RSA public
// parameters): what a resharing starts from and ends with, for the gateway and signers alike.
import { z } from 'zod';
import { canonicalJson } from '../../contract/canonical.js';
import { digestHex } from '../../contract/signer-rpc/released.js';
import { resharePackageSchema } from './reshare.js';
import { rsaPublicParamsSchema } from './rsa/key.js';

/** A key's public package, whatever its scheme: what a resharing starts from and ends with. */
export const keyPackageSchema = z.union([resharePackageSchema, rsaPublicParamsSchema]);
export type KeyPackage = z.infer<typeof keyPackageSchema>;

/** What identifies the key in a package: the RSA modulus and exponent, or the group public key. */
export const publicKeyOfPackage = (p: KeyPackage): string => ('n' in p ? `${p.n}:${p.e}` : 'protocol' in p ? p.publicKey : p.groupPublicKey);

/** A package's SHA-256 over its canonical JSON: how a backup's share is compared with the key's current package. */
export const packageDigest = (p: KeyPackage): string => digestHex(new TextEncoder().encode(canonicalJson(p)));
