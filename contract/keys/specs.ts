// Key specs and signing algorithms under their AWS KMS names, and the SubjectPublicKeyInfo
// (SPKI) encoding of each key spec's public key — what KMS GetPublicKey returns.
//
// One canonical SPKI per key: EC points are always uncompressed (as KMS emits them), so two
// SPKIs of the same key are byte-equal. Parsing accepts only that canonical DER.

import { createPublicKey, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256, p384 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';

export const KEY_SPECS = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_SECG_P256K1',
  'ECC_NIST_EDWARDS25519',
] as const;
export type KeySpec = (typeof KEY_SPECS)[number];

// ECDSA_SHA_512 is AWS's algorithm for ECC_NIST_P521 only; P-521 is not supported, so it is
// not listed: naming it is an unknown algorithm here.
export const SIGNING_ALGORITHMS = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'ECDSA_SHA_256',
  'ECDSA_SHA_384',
  'ED25519_SHA_512',
  'ED25519_PH_SHA_512',
] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

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
  ED25519_SHA_512: info('ED25519', 'SHA-512', ['RAW']),
  ED25519_PH_SHA_512: info('ED25519_PH', 'SHA-512', ['DIGEST']),
};

export const HASHES: Readonly<Record<HashName, (m: Uint8Array) => Uint8Array>> = {
  'SHA-256': sha256,
  'SHA-384': sha384,
  'SHA-512': sha512,
};

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

export function isKeySpec(v: unknown): v is KeySpec {
  return typeof v === 'string' && (KEY_SPECS as readonly string[]).includes(v);
}
export function isSigningAlgorithm(v: unknown): v is SigningAlgorithm {
  return typeof v === 'string' && (SIGNING_ALGORITHMS as readonly string[]).includes(v);
}

// ---- SPKI -------------------------------------------------------------------------------

export type EcKeySpec = 'ECC_NIST_P256' | 'ECC_NIST_P384' | 'ECC_SECG_P256K1';
export type RsaKeySpec = 'RSA_2048' | 'RSA_3072' | 'RSA_4096';

/** noble ECDSA instance for each EC key spec. */
export const EC_CURVES = { ECC_NIST_P256: p256, ECC_NIST_P384: p384, ECC_SECG_P256K1: secp256k1 } as const;

const RSA_BITS: Readonly<Record<RsaKeySpec, number>> = { RSA_2048: 2048, RSA_3072: 3072, RSA_4096: 4096 };

export function isEcKeySpec(s: KeySpec): s is EcKeySpec {
  return s in EC_CURVES;
}
export function isRsaKeySpec(s: KeySpec): s is RsaKeySpec {
  return s in RSA_BITS;
}

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
// DER AlgorithmIdentifier of each key type, byte for byte (RFC 5480, RFC 8410, RFC 3279).
const ALG_ID = {
  // id-ecPublicKey + namedCurve
  ECC_NIST_P256: hex('301306072a8648ce3d020106082a8648ce3d030107'),
  ECC_NIST_P384: hex('301006072a8648ce3d020106052b81040022'),
  ECC_SECG_P256K1: hex('301006072a8648ce3d020106052b8104000a'),
  // id-Ed25519, parameters absent
  ECC_NIST_EDWARDS25519: hex('300506032b6570'),
  // rsaEncryption, parameters NULL
  RSA: hex('300d06092a864886f70d0101010500'),
} as const;

function derLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}
function derTlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(content);
  return Uint8Array.from(Buffer.concat([Uint8Array.of(tag), derLength(body.length), body]));
}

/** Reads one DER TLV at `pos`, rejecting indefinite and non-minimal lengths. */
function readTlv(buf: Uint8Array, pos: number, tag: number): { value: Uint8Array; end: number } {
  const bad = (why: string) => new VerifyError('malformed-public-key', `SPKI: ${why}`);
  if (buf[pos] !== tag) throw bad(`expected tag 0x${tag.toString(16)}`);
  const first = buf[pos + 1];
  if (first === undefined) throw bad('truncated');
  let len = first;
  let p = pos + 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 3) throw bad('unsupported length form');
    len = 0;
    for (let i = 0; i < n; i++) {
      const b = buf[p++];
      if (b === undefined) throw bad('truncated');
      len = len * 256 + b;
    }
    if (len < 0x80 || buf[pos + 2] === 0) throw bad('non-minimal length');
  }
  if (p + len > buf.length) throw bad('truncated');
  return { value: buf.subarray(p, p + len), end: p + len };
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

export type ParsedPublicKey =
  | { kind: 'ec'; keySpec: EcKeySpec; /** uncompressed SEC1 point, 0x04‖x‖y */ point: Uint8Array }
  | { kind: 'ed25519'; keySpec: 'ECC_NIST_EDWARDS25519'; /** RFC 8032 encoding */ publicKey: Uint8Array }
  | { kind: 'rsa'; keySpec: RsaKeySpec; n: bigint; e: bigint; modulusBits: number; key: KeyObject };

/**
 * Parses a canonical DER SPKI of one of the supported key specs. Throws VerifyError
 * ('malformed-public-key') for anything else: BER, trailing bytes, compressed or off-curve
 * points, non-canonical Ed25519 encodings, RSA moduli that are not exactly 2048/3072/4096 bits.
 */
export function parseSpki(spki: Uint8Array): ParsedPublicKey {
  const bad = (why: string) => new VerifyError('malformed-public-key', `SPKI: ${why}`);
  if (!(spki instanceof Uint8Array)) throw new VerifyError('bad-parameter', 'SPKI must be bytes');
  const outer = readTlv(spki, 0, 0x30);
  if (outer.end !== spki.length) throw bad('trailing bytes');
  const alg = readTlv(outer.value, 0, 0x30);
  const bits = readTlv(outer.value, alg.end, 0x03);
  if (bits.end !== outer.value.length) throw bad('trailing bytes in SubjectPublicKeyInfo');
  if (bits.value[0] !== 0) throw bad('BIT STRING has unused bits');
  const algId = outer.value.subarray(0, alg.end);
  const key = bits.value.subarray(1);

  for (const spec of Object.keys(EC_CURVES) as EcKeySpec[]) {
    if (!sameBytes(algId, ALG_ID[spec])) continue;
    const curve = EC_CURVES[spec];
    if (key.length !== 1 + 2 * curve.Point.Fp.BYTES || key[0] !== 0x04) throw bad('EC point must be uncompressed');
    try {
      curve.Point.fromBytes(key).assertValidity();
    } catch {
      throw bad('EC point is not on the curve');
    }
    return { kind: 'ec', keySpec: spec, point: Uint8Array.from(key) };
  }
  if (sameBytes(algId, ALG_ID.ECC_NIST_EDWARDS25519)) {
    if (key.length !== 32) throw bad('Ed25519 key must be 32 bytes');
    let small: boolean;
    try {
      small = ed25519.Point.fromBytes(key, false).isSmallOrder(); // RFC 8032 decoding: y < p
    } catch {
      throw bad('Ed25519 key does not decode to a point');
    }
    // A small-order key (e.g. the identity) is no key: any signature "verifies" under some.
    if (small) throw bad('Ed25519 key has small order');
    return { kind: 'ed25519', keySpec: 'ECC_NIST_EDWARDS25519', publicKey: Uint8Array.from(key) };
  }
  if (sameBytes(algId, ALG_ID.RSA)) return parseRsaSpki(spki);
  throw bad('unsupported algorithm identifier');
}

function parseRsaSpki(spki: Uint8Array): ParsedPublicKey {
  const bad = (why: string) => new VerifyError('malformed-public-key', `SPKI: ${why}`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    throw bad('RSA key does not parse');
  }
  // OpenSSL is lenient about some encodings (e.g. non-minimal INTEGERs); its re-encoding is
  // canonical, so equality pins the input to DER.
  if (key.asymmetricKeyType !== 'rsa' || !sameBytes(key.export({ type: 'spki', format: 'der' }), spki)) {
    throw bad('RSA key is not canonical DER');
  }
  const modulusBits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  const keySpec = (Object.keys(RSA_BITS) as RsaKeySpec[]).find((s) => RSA_BITS[s] === modulusBits);
  if (!keySpec) throw bad(`RSA modulus of ${modulusBits} bits matches no key spec`);
  const jwk = key.export({ format: 'jwk' });
  const n = BigInt('0x' + Buffer.from(jwk.n ?? '', 'base64url').toString('hex'));
  const e = BigInt('0x' + Buffer.from(jwk.e ?? '', 'base64url').toString('hex'));
  return { kind: 'rsa', keySpec, n, e, modulusBits, key };
}

/**
 * SPKI DER for an EC key (SEC1 point, compressed or uncompressed; emitted uncompressed) or an
 * Ed25519 key (32-byte RFC 8032 encoding). Throws VerifyError if the point is invalid.
 */
export function spkiFromRawPublicKey(keySpec: KeySpec, raw: Uint8Array): Uint8Array {
  if (!(raw instanceof Uint8Array)) throw new VerifyError('bad-parameter', 'public key must be bytes');
  if (keySpec === 'ECC_NIST_EDWARDS25519') {
    const spki = derTlv(0x30, ALG_ID.ECC_NIST_EDWARDS25519, derTlv(0x03, Uint8Array.of(0), raw));
    parseSpki(spki); // validates the encoding
    return spki;
  }
  if (!isKeySpec(keySpec) || !isEcKeySpec(keySpec)) {
    throw new VerifyError('unknown-key-spec', `${String(keySpec)} has no raw public key form`);
  }
  let point: Uint8Array;
  try {
    point = EC_CURVES[keySpec].Point.fromBytes(raw).toBytes(false);
  } catch {
    throw new VerifyError('malformed-public-key', `not a ${keySpec} point`);
  }
  return derTlv(0x30, ALG_ID[keySpec], derTlv(0x03, Uint8Array.of(0), point));
}

/** The raw public key inside an SPKI: uncompressed SEC1 point for EC, 32 bytes for Ed25519. */
export function rawPublicKeyFromSpki(keySpec: KeySpec, spki: Uint8Array): Uint8Array {
  const parsed = parseSpki(spki);
  if (parsed.keySpec !== keySpec) {
    throw new VerifyError('malformed-public-key', `SPKI holds a ${parsed.keySpec} key, not ${keySpec}`);
  }
  if (parsed.kind === 'rsa') throw new VerifyError('unknown-key-spec', 'RSA keys have no raw point form');
  return parsed.kind === 'ec' ? parsed.point : parsed.publicKey;
}

const b64u = (v: bigint) => {
  const h = v.toString(16);
  return Buffer.from(h.length % 2 ? '0' + h : h, 'hex').toString('base64url');
};

/** SPKI DER (rsaEncryption) for an RSA public key; the modulus must fit a supported key spec. */
export function spkiFromRsaPublicKey(n: bigint, e: bigint): Uint8Array {
  if (typeof n !== 'bigint' || typeof e !== 'bigint' || n <= 0n || e <= 1n) {
    throw new VerifyError('bad-parameter', 'RSA n and e must be positive bigints (e > 1)');
  }
  let der: Uint8Array;
  try {
    const key = createPublicKey({ key: { kty: 'RSA', n: b64u(n), e: b64u(e) }, format: 'jwk' });
    der = Uint8Array.from(key.export({ type: 'spki', format: 'der' }));
  } catch {
    throw new VerifyError('malformed-public-key', 'RSA public key rejected');
  }
  parseSpki(der); // enforces the key-spec modulus sizes
  return der;
}
