// What a key may be used for, decided by its own spec and usage — at every signer, whatever the
// gateway asks: a SIGN_VERIFY key only signs, with its spec's algorithms (an RSA key also with
// PKCS#11's raw PKCS#1 v1.5, still a type-1 signature block); an ENCRYPT_DECRYPT key only
// decrypts. A raw RSA operation on a signing key would be a signature by another name.
import { isKeySpec, isRsaKeySpec, RSA_PKCS1_RAW, SIGNING_ALGORITHMS_BY_SPEC } from '../contract/keys/specs.js';

/** Decryption paddings an RSA ENCRYPT_DECRYPT key serves (PKCS#1 v1.5 for PKCS#11's CKM_RSA_PKCS). */
export const DECRYPTION_ALGORITHMS = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSAES_PKCS1_V1_5'] as const;

export interface KeyUse {
  keyId: string;
  keySpec: string;
  keyUsage: 'SIGN_VERIFY' | 'ENCRYPT_DECRYPT';
}

/** Why `key` may not do `operation` with `algorithm`, or undefined when it may. */
export function keyUseProblem(key: KeyUse, operation: 'Sign' | 'Decrypt', algorithm: string): string | undefined {
  if (!isKeySpec(key.keySpec)) return `key ${key.keyId} has an unknown key spec ${key.keySpec}`;
  const usage = operation === 'Sign' ? 'SIGN_VERIFY' : 'ENCRYPT_DECRYPT';
  if (key.keyUsage !== usage) return `key ${key.keyId} is a ${key.keyUsage} key: it does not ${operation === 'Sign' ? 'sign' : 'decrypt'}`;
  const allowed: readonly string[] =
    operation === 'Decrypt' ? (isRsaKeySpec(key.keySpec) ? DECRYPTION_ALGORITHMS : [])
    : isRsaKeySpec(key.keySpec) ? [...SIGNING_ALGORITHMS_BY_SPEC[key.keySpec], RSA_PKCS1_RAW]
    : SIGNING_ALGORITHMS_BY_SPEC[key.keySpec];
  if (!allowed.includes(algorithm)) return `${algorithm.slice(0, 64)} is not an algorithm of ${key.keySpec} key ${key.keyId} (${allowed.join(', ') || 'none'})`;
  return undefined;
}
