// Where a key record keeps its public package (signers/node/key-records.ts: FROST's, threshold
// ECDSA's or Shoup RSA's public parameters), and the public key in it, which a resharing must
// leave as it was.
import type { KeyPackage } from '../signers/protocols/key-package.js';
export { publicKeyOfPackage } from '../signers/protocols/key-package.js';
import type { KeyRecord } from './keys.js';

/** The package a key record holds for its scheme. */
export const packageOf = (k: KeyRecord): KeyPackage | undefined => (k.scheme === 'rsa-shoup' ? k.rsa : k.scheme === 'ecdsa-dkls23' ? k.ecdsa : k.frost);

/** The key record's field for a package. */
export const packageField = (p: KeyPackage): Pick<KeyRecord, 'rsa'> | Pick<KeyRecord, 'ecdsa'> | Pick<KeyRecord, 'frost'> =>
  'n' in p ? { rsa: p } : 'protocol' in p ? { ecdsa: p } : { frost: p };
