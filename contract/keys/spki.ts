// SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) of each key spec's public key, in and out: what KMS
// GetPublicKey returns and PKCS#11 objects carry. DER is read and written by node:crypto
// (createPublicKey, KeyObject.export as spki or jwk), never by hand.
//
// One canonical SPKI per key: the one node:crypto writes from the key's JWK (RFC 5480 named
// curves with uncompressed points, RFC 8410 Ed25519, RFC 3279 rsaEncryption with NULL
// parameters). Parsing accepts only those bytes, so two SPKIs of one key are byte-equal; BER,
// trailing bytes and compressed points are refused. OpenSSL does not check Ed25519 encodings,
// so @noble/curves does (canonical y, not of small order), and decompresses EC input points.

import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  EC_CURVES,
  RSA_MODULUS_BITS,
  VerifyError,
  isEcKeySpec,
  isKeySpec,
  type EcKeySpec,
  type KeySpec,
  type RsaKeySpec,
} from './specs.js';
import { memoized } from '../memo.js';

export type ParsedPublicKey =
  | { kind: 'ec'; keySpec: EcKeySpec; /** uncompressed SEC1 point, 0x04‖x‖y */ point: Uint8Array }
  | { kind: 'ed25519'; keySpec: 'ECC_NIST_EDWARDS25519'; /** RFC 8032 encoding */ publicKey: Uint8Array }
  | { kind: 'rsa'; keySpec: RsaKeySpec; n: bigint; e: bigint; modulusBits: number; key: KeyObject };

/** Each EC key spec's curve: OpenSSL's name (asymmetricKeyDetails.namedCurve) and JWK's `crv`. */
const NAMED_CURVE: Readonly<Record<EcKeySpec, { openssl: string; jwk: string }>> = {
  ECC_NIST_P256: { openssl: 'prime256v1', jwk: 'P-256' },
  ECC_NIST_P384: { openssl: 'secp384r1', jwk: 'P-384' },
  ECC_NIST_P521: { openssl: 'secp521r1', jwk: 'P-521' },
  ECC_SECG_P256K1: { openssl: 'secp256k1', jwk: 'secp256k1' },
};

const malformed = (why: string) => new VerifyError('malformed-public-key', `SPKI: ${why}`);
const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const fromB64u = (s: string | undefined) => Uint8Array.from(Buffer.from(s ?? '', 'base64url'));
const toB64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const bigintOf = (s: string | undefined) => BigInt('0x' + (Buffer.from(s ?? '', 'base64url').toString('hex') || '0'));
const b64uOfBigint = (v: bigint) => {
  const h = v.toString(16);
  return Buffer.from(h.length % 2 ? '0' + h : h, 'hex').toString('base64url');
};

/** The canonical SPKI of a public key given as a JWK; throws what createPublicKey throws. */
const spkiOfJwk = (jwk: JsonWebKey): Uint8Array => Uint8Array.from(createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' }));

/** Which key spec a KeyObject holds, if any: EC by named curve, RSA by exact modulus size. */
function keySpecOf(key: KeyObject): KeySpec {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const spec = (Object.keys(NAMED_CURVE) as EcKeySpec[]).find((s) => NAMED_CURVE[s].openssl === curve);
      if (!spec) throw malformed(`EC curve ${String(curve)} matches no key spec`);
      return spec;
    }
    case 'ed25519':
      return 'ECC_NIST_EDWARDS25519';
    case 'rsa': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      const spec = (Object.keys(RSA_MODULUS_BITS) as RsaKeySpec[]).find((s) => RSA_MODULUS_BITS[s] === bits);
      if (!spec) throw malformed(`RSA modulus of ${bits} bits matches no key spec`);
      return spec;
    }
    default:
      // rsa-pss (RSASSA-PSS-params in the SPKI), x25519, dsa, …
      throw malformed(`unsupported key type ${String(key.asymmetricKeyType)}`);
  }
}

/** RFC 8032 decoding (y < p) and not of small order: any signature "verifies" under some such keys. */
function checkEd25519(publicKey: Uint8Array): void {
  if (publicKey.length !== 32) throw malformed('Ed25519 key must be 32 bytes');
  let small: boolean;
  try {
    small = ed25519.Point.fromBytes(publicKey, false).isSmallOrder();
  } catch {
    throw malformed('Ed25519 key does not decode to a point');
  }
  if (small) throw malformed('Ed25519 key has small order');
}

// SPKIs already parsed, by their bytes: the gateway checks every signature against a key's SPKI,
// few keys sign many times, and OpenSSL's DER decoder and encoder cost some 0.1 ms a call each.
const decodeKnownSpki = memoized(decodeSpki, 256, (spki: Uint8Array) => Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength).toString('base64'));

/**
 * Parses a canonical DER SPKI of one of the supported key specs. Throws VerifyError
 * ('malformed-public-key') for anything else: BER, trailing bytes, compressed or off-curve
 * points, non-canonical Ed25519 encodings, RSA moduli that are not exactly 2048/3072/4096 bits.
 */
export function parseSpki(spki: Uint8Array): ParsedPublicKey {
  if (!(spki instanceof Uint8Array)) throw new VerifyError('bad-parameter', 'SPKI must be bytes');
  const parsed = decodeKnownSpki(spki);
  // Fresh byte arrays for each caller: the remembered ones must not be changed through a result.
  if (parsed.kind === 'ec') return { ...parsed, point: parsed.point.slice() };
  if (parsed.kind === 'ed25519') return { ...parsed, publicKey: parsed.publicKey.slice() };
  return { ...parsed };
}

function decodeSpki(spki: Uint8Array): ParsedPublicKey {
  let key: KeyObject;
  let jwk: JsonWebKey;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    throw malformed('does not parse');
  }
  const keySpec = keySpecOf(key);
  let canonical: Uint8Array;
  try {
    jwk = key.export({ format: 'jwk' });
    canonical = spkiOfJwk(jwk);
  } catch {
    throw malformed('key has no JWK form');
  }
  // OpenSSL accepts trailing bytes, BER lengths, non-minimal INTEGERs and compressed points, and
  // writes back what it read: comparing with the form it builds from the JWK pins canonical DER.
  if (!sameBytes(canonical, spki)) throw malformed('not the canonical DER encoding (EC points uncompressed)');
  if (keySpec === 'ECC_NIST_EDWARDS25519') {
    const publicKey = fromB64u(jwk.x);
    checkEd25519(publicKey);
    return { kind: 'ed25519', keySpec, publicKey };
  }
  if (isEcKeySpec(keySpec)) {
    // OpenSSL has checked the point is on the curve (every curve here has cofactor 1).
    return { kind: 'ec', keySpec, point: Uint8Array.from([0x04, ...fromB64u(jwk.x), ...fromB64u(jwk.y)]) };
  }
  return { kind: 'rsa', keySpec, n: bigintOf(jwk.n), e: bigintOf(jwk.e), modulusBits: RSA_MODULUS_BITS[keySpec], key };
}

/**
 * SPKI DER for an EC key (SEC1 point, compressed or uncompressed; emitted uncompressed) or an
 * Ed25519 key (32-byte RFC 8032 encoding). Throws VerifyError if the point is invalid.
 */
export function spkiFromRawPublicKey(keySpec: KeySpec, raw: Uint8Array): Uint8Array {
  if (!(raw instanceof Uint8Array)) throw new VerifyError('bad-parameter', 'public key must be bytes');
  if (keySpec === 'ECC_NIST_EDWARDS25519') {
    checkEd25519(raw);
    return spkiOfJwk({ kty: 'OKP', crv: 'Ed25519', x: toB64u(raw) });
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
  const half = (point.length - 1) / 2;
  return spkiOfJwk({ kty: 'EC', crv: NAMED_CURVE[keySpec].jwk, x: toB64u(point.subarray(1, 1 + half)), y: toB64u(point.subarray(1 + half)) });
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

/** SPKI DER (rsaEncryption) for an RSA public key; the modulus must fit a supported key spec. */
export function spkiFromRsaPublicKey(n: bigint, e: bigint): Uint8Array {
  if (typeof n !== 'bigint' || typeof e !== 'bigint' || n <= 0n || e <= 1n) {
    throw new VerifyError('bad-parameter', 'RSA n and e must be positive bigints (e > 1)');
  }
  let der: Uint8Array;
  try {
    der = spkiOfJwk({ kty: 'RSA', n: b64uOfBigint(n), e: b64uOfBigint(e) });
  } catch {
    throw new VerifyError('malformed-public-key', 'RSA public key rejected');
  }
  parseSpki(der); // enforces the key-spec modulus sizes
  return der;
}
