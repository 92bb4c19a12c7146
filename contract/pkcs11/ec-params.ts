// CKA_EC_PARAMS as PKCS#11 carries a curve, and the key spec each names.
import type { KeySpec } from '../keys/specs.js';

// Curve identifiers as CKA_EC_PARAMS carries them (DER OBJECT IDENTIFIER; Ed25519 per RFC 8410,
// which PKCS#11 3.0 allows beside the PrintableString "edwards25519").
export type CurveKeySpec = Exclude<KeySpec, `RSA_${string}`>;

export const EC_PARAMS: Readonly<Record<CurveKeySpec, Buffer>> = {
  ECC_NIST_P256: Buffer.from('06082a8648ce3d030107', 'hex'),
  ECC_NIST_P384: Buffer.from('06052b81040022', 'hex'),
  ECC_NIST_P521: Buffer.from('06052b81040023', 'hex'),
  ECC_SECG_P256K1: Buffer.from('06052b8104000a', 'hex'),
  ECC_NIST_EDWARDS25519: Buffer.from('06032b6570', 'hex'),
};
const ED25519_PRINTABLE = Buffer.from('130c656477617264733235353139', 'hex');

/** The key spec a CKA_EC_PARAMS value names, if mpchsm knows the curve. */
export function keySpecOfEcParams(p: Buffer): CurveKeySpec | undefined {
  if (p.equals(ED25519_PRINTABLE)) return 'ECC_NIST_EDWARDS25519';
  return (Object.keys(EC_PARAMS) as CurveKeySpec[]).find((s) => EC_PARAMS[s].equals(p));
}
