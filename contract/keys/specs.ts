// Key specs, signing and encryption algorithms and key usages under their AWS KMS names, with
// what each implies: the algorithms a spec allows, an algorithm's scheme, hash and digest length,
// the hash functions and EC curves (@noble) behind the names, and VerifyError, the error for a
// request that names them wrongly. Vocabulary only: the SPKI encoding of a spec's public key
// is spki.ts beside it.

import { p256, p384, p521 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';

export const KEY_SPECS = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_NIST_P521',
  'ECC_SECG_P256K1',
  'ECC_NIST_EDWARDS25519',
] as const;
export type KeySpec = (typeof KEY_SPECS)[number];

/**
 * AWS's symmetric key spec: a threshold PRF key (signers/protocols/tprf.ts) behind AES-256-GCM
 * ciphertexts (ciphertext.ts). Not among KEY_SPECS, which have a public key and an SPKI.
 */
export const SYMMETRIC_KEY_SPEC = 'SYMMETRIC_DEFAULT';
/** Every spec a key can be created with here. */
export type CreatableKeySpec = KeySpec | typeof SYMMETRIC_KEY_SPEC;
/** The group the DKG makes a key of this spec in (the gateway asks for it, each signer insists on it). */
export const DKG_GROUP_OF_SPEC: Readonly<Partial<Record<string, 'ed25519' | 'ristretto255'>>> = { ECC_NIST_EDWARDS25519: 'ed25519', [SYMMETRIC_KEY_SPEC]: 'ristretto255' };

export const SIGNING_ALGORITHMS = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'ECDSA_SHA_256',
  'ECDSA_SHA_384',
  'ECDSA_SHA_512',
  'ED25519_SHA_512',
  'ED25519_PH_SHA_512',
] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/**
 * PKCS#11's CKM_RSA_PKCS over bytes that are not a SHA-2 DigestInfo (a SHA-1 DigestInfo, TLS
 * 1.0/1.1's MD5‖SHA-1, any block up to the modulus size minus 11 bytes): EMSA-PKCS1-v1_5's
 * type-1 padding around the bytes as given. Not an AWS algorithm (the KMS API never names it);
 * a key policy's `mpchsm.allowedAlgorithms` that leaves it out restricts the key to the named
 * digests. Its "digest" (what approvals and the audit name) is the bytes themselves.
 */
export const RSA_PKCS1_RAW = 'RSASSA_PKCS1_V1_5_RAW';
/** What the cluster signs with: AWS's algorithms and PKCS#11's raw PKCS#1 v1.5. */
export type ClusterSigningAlgorithm = SigningAlgorithm | typeof RSA_PKCS1_RAW;

export const ENCRYPTION_ALGORITHMS = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSAES_PKCS1_V1_5'] as const;
export type EncryptionAlgorithm = (typeof ENCRYPTION_ALGORITHMS)[number];

/** One usage per asymmetric key, as in KMS. */
export const KEY_USAGES = ['SIGN_VERIFY', 'ENCRYPT_DECRYPT'] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];

export type MessageType = 'RAW' | 'DIGEST';
export type HashName = 'SHA-256' | 'SHA-384' | 'SHA-512';
export type SignatureScheme = 'RSASSA_PSS' | 'RSASSA_PKCS1_V1_5' | 'ECDSA' | 'ED25519' | 'ED25519_PH';

const RSA_ALGORITHMS = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
] as const satisfies readonly SigningAlgorithm[];

/** The signing algorithms AWS KMS allows for each key spec. */
export const SIGNING_ALGORITHMS_BY_SPEC: Readonly<Record<KeySpec, readonly SigningAlgorithm[]>> = {
  RSA_2048: RSA_ALGORITHMS,
  RSA_3072: RSA_ALGORITHMS,
  RSA_4096: RSA_ALGORITHMS,
  ECC_NIST_P256: ['ECDSA_SHA_256'],
  ECC_NIST_P384: ['ECDSA_SHA_384'],
  ECC_NIST_P521: ['ECDSA_SHA_512'],
  ECC_SECG_P256K1: ['ECDSA_SHA_256'],
  ECC_NIST_EDWARDS25519: ['ED25519_SHA_512', 'ED25519_PH_SHA_512'],
};

export interface AlgorithmInfo {
  scheme: SignatureScheme;
  hash: HashName;
  /** Length in bytes of `hash`'s output: a DIGEST message must be exactly this long. */
  digestLength: 32 | 48 | 64;
  /** KMS MessageType values the algorithm accepts (pure Ed25519 has no prehash step). */
  messageTypes: readonly MessageType[];
}

const BOTH: readonly MessageType[] = ['RAW', 'DIGEST'];
/** Output length in bytes of each hash. */
export const HASH_LENGTH = { 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 } as const;

/** DER DigestInfo prefix of each hash (RFC 8017 §9.2 note 1: AlgorithmIdentifier with NULL parameters). */
export const DIGEST_INFO_PREFIX: Readonly<Record<HashName, Uint8Array>> = {
  'SHA-256': Uint8Array.from(Buffer.from('3031300d060960864801650304020105000420', 'hex')),
  'SHA-384': Uint8Array.from(Buffer.from('3041300d060960864801650304020205000430', 'hex')),
  'SHA-512': Uint8Array.from(Buffer.from('3051300d060960864801650304020305000440', 'hex')),
};
const info = (scheme: SignatureScheme, hash: HashName, messageTypes = BOTH): AlgorithmInfo => ({
  scheme,
  hash,
  digestLength: HASH_LENGTH[hash],
  messageTypes,
});

export const ALGORITHM_INFO: Readonly<Record<SigningAlgorithm, AlgorithmInfo>> = {
  RSASSA_PSS_SHA_256: info('RSASSA_PSS', 'SHA-256'),
  RSASSA_PSS_SHA_384: info('RSASSA_PSS', 'SHA-384'),
  RSASSA_PSS_SHA_512: info('RSASSA_PSS', 'SHA-512'),
  RSASSA_PKCS1_V1_5_SHA_256: info('RSASSA_PKCS1_V1_5', 'SHA-256'),
  RSASSA_PKCS1_V1_5_SHA_384: info('RSASSA_PKCS1_V1_5', 'SHA-384'),
  RSASSA_PKCS1_V1_5_SHA_512: info('RSASSA_PKCS1_V1_5', 'SHA-512'),
  ECDSA_SHA_256: info('ECDSA', 'SHA-256'),
  ECDSA_SHA_384: info('ECDSA', 'SHA-384'),
  ECDSA_SHA_512: info('ECDSA', 'SHA-512'),
  ED25519_SHA_512: info('ED25519', 'SHA-512', ['RAW']),
  ED25519_PH_SHA_512: info('ED25519_PH', 'SHA-512', ['DIGEST']),
};

export const HASHES: Readonly<Record<HashName, (m: Uint8Array) => Uint8Array>> = {
  'SHA-256': sha256,
  'SHA-384': sha384,
  'SHA-512': sha512,
};

/**
 * A KMS Sign/Verify request's Message in the cluster's terms. AWS KMS takes ED25519_PH_SHA_512
 * only with MessageType DIGEST and still applies Ed25519ph's SHA-512 prehash to the Message
 * (API reference, Sign/Verify, MessageType: "the input is hashed twice: once by you and once by
 * KMS"): it is Ed25519ph (RFC 8032 §5.1) with M = the Message, PH(M) = SHA-512(Message). The
 * cluster's DIGEST for Ed25519ph is PH(M) itself (PKCS#11's module prehashes the data), so the
 * KMS API hands it SHA-512(Message). A Message that is not a 64-byte digest passes unchanged,
 * so that every reader refuses its length as AWS does. Gateway and signers both read a KMS
 * request through this.
 */
export function kmsSigningMessage(algorithm: string, messageType: MessageType | undefined, message: Uint8Array): Uint8Array {
  const twice = algorithm === 'ED25519_PH_SHA_512' && messageType === 'DIGEST' && message.length === HASH_LENGTH['SHA-512'];
  return twice ? sha512(message) : message;
}

export type VerifyErrorCode =
  | 'unknown-key-spec'
  | 'unknown-algorithm'
  | 'algorithm-not-for-key-spec' // KMS: InvalidKeyUsageException
  | 'message-type-not-allowed' // KMS: ValidationException
  | 'bad-digest-length' // KMS: ValidationException
  | 'bad-parameter' // a value of the wrong type: a caller bug
  | 'malformed-public-key'
  | 'malformed-signature';

/** A caller error (bad spec/algorithm/parameters or undecodable input to a codec helper). */
export class VerifyError extends Error {
  override readonly name = 'VerifyError';
  constructor(
    readonly code: VerifyErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isClusterSigningAlgorithm(v: unknown): v is ClusterSigningAlgorithm {
  return v === RSA_PKCS1_RAW || isSigningAlgorithm(v);
}

export function isKeySpec(v: unknown): v is KeySpec {
  return typeof v === 'string' && (KEY_SPECS as readonly string[]).includes(v);
}
export function isSigningAlgorithm(v: unknown): v is SigningAlgorithm {
  return typeof v === 'string' && (SIGNING_ALGORITHMS as readonly string[]).includes(v);
}

// ---- curves and moduli ------------------------------------------------------------------

export type EcKeySpec = 'ECC_NIST_P256' | 'ECC_NIST_P384' | 'ECC_NIST_P521' | 'ECC_SECG_P256K1';
export type RsaKeySpec = 'RSA_2048' | 'RSA_3072' | 'RSA_4096';

/** noble ECDSA instance for each EC key spec. */
export const EC_CURVES = { ECC_NIST_P256: p256, ECC_NIST_P384: p384, ECC_NIST_P521: p521, ECC_SECG_P256K1: secp256k1 } as const;

/**
 * Bytes of each EC key spec's field elements and scalars: r and s of a raw (PKCS#11) signature
 * are this long each, an uncompressed point is 1 + 2× this. P-521's 521 bits take 66 bytes.
 */
export const EC_FIELD_BYTES: Readonly<Record<EcKeySpec, number>> = { ECC_NIST_P256: 32, ECC_NIST_P384: 48, ECC_NIST_P521: 66, ECC_SECG_P256K1: 32 };

/** The threshold-ECDSA curve each EC key spec is made on (the names of signers/protocols/ecdsa/curves.ts). */
export const ECDSA_CURVE_OF_SPEC = { ECC_NIST_P256: 'p256', ECC_NIST_P384: 'p384', ECC_NIST_P521: 'p521', ECC_SECG_P256K1: 'secp256k1' } as const satisfies Record<EcKeySpec, string>;

/** The exact modulus size of each RSA key spec. */
export const RSA_MODULUS_BITS: Readonly<Record<RsaKeySpec, number>> = { RSA_2048: 2048, RSA_3072: 3072, RSA_4096: 4096 };

export function isEcKeySpec(s: string): s is EcKeySpec {
  return s in EC_CURVES;
}
export function isRsaKeySpec(s: KeySpec): s is RsaKeySpec {
  return s in RSA_MODULUS_BITS;
}
