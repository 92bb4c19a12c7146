// Ciphersuite table for DKG and FROST: the prime-order groups keys live in, and the RFC 9591
// ciphersuites (plus a local Ed25519ph variant) that sign with them.
//
// Group and field arithmetic is @noble/curves', except what every request does for Ed25519 and
// ristretto255 (symmetric keys' PRF): the prime-order-subgroup check of each Ed25519 commitment,
// and the scalar multiplications and additions over encodings (`Encoded`), are libsodium's
// (constant-time). Ed25519's is native (sodium-native: a scalar multiplication ~0.07 ms, against
// ~0.2 ms in libsodium's WebAssembly and ~0.7 ms in noble's JS), as FROST signs with it on every
// request; ristretto255, which sodium-native lacks, stays WebAssembly. This file fixes encodings,
// the validation every inbound element goes through, and the RFC 9591 hash functions H1..H5.

import type { CurvePoint, CurvePointCons } from '@noble/curves/abstract/curve.js';
import { expand_message_xmd } from '@noble/curves/abstract/hash-to-curve.js';
import type { IField } from '@noble/curves/abstract/modular.js';
import { ed25519, ristretto255 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToNumberBE, bytesToNumberLE, concatBytes } from '@noble/curves/utils.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import sodium from 'libsodium-wrappers-sumo';
import * as native from 'sodium-native';
import { ProtocolError } from './common.js';
import { bytesToBigInt } from './integers.js';
import { edScalar, edSecret, nobleSecret, type SecretScalars } from './secret-scalars.js';
import { fromHex, toHex, type PartyId } from '../../contract/bytes.js';

/** A point of one of the groups below (all have bigint coordinates). */
export interface GroupPoint extends CurvePoint<bigint, GroupPoint> {}

export const groupNames = ['ed25519', 'secp256k1', 'p256', 'ristretto255'] as const;
/** The group a threshold key lives in (what DKG produces). */
export type GroupName = (typeof groupNames)[number];

export interface Group {
  readonly name: GroupName;
  readonly Point: CurvePointCons<GroupPoint>;
  readonly Fn: IField<bigint>;
  /** Serialized element length (Ed25519: 32; SEC1 compressed: 33). */
  readonly pointLength: number;
  readonly scalarLength: number;
  /** Hash used for DKG transcripts and views; the group's RFC 9591 hash. */
  readonly hash: (m: Uint8Array) => Uint8Array;
  /** Hash to a scalar under a domain-separation tag, as RFC 9591 H1/H3 do for this group. */
  readonly hashToScalar: (m: Uint8Array, dst: Uint8Array) => bigint;
  /**
   * Where the group has a cofactor (Ed25519): whether an encoding is canonical, on the curve, in
   * the prime-order subgroup and not of small order — every check decodePoint makes, in one.
   */
  readonly checkEncoding?: (bytes: Uint8Array) => boolean;
  /** Arithmetic on validated encodings, for signing. */
  readonly encoded: Encoded;
  /** Arithmetic on secret scalars held as bytes (key shares, nonces). */
  readonly secret: SecretScalars;
}

/**
 * Scalar multiplication and addition on encodings of valid points (decodePoint's). An identity
 * result throws (the caller attributes or refuses it). `mulBase` may take a secret scalar and is
 * constant-time; `mul` takes public ones.
 */
export interface Encoded {
  mulBase(k: bigint): Uint8Array;
  mul(P: Uint8Array, k: bigint): Uint8Array;
  add(P: Uint8Array, Q: Uint8Array): Uint8Array;
}

/** The group operations of noble's point type, on encodings (toBytes throws on the identity). */
const nobleEncoded = (Point: CurvePointCons<GroupPoint>): Encoded => ({
  mulBase: (k) => Point.BASE.multiply(k).toBytes(),
  mul: (P, k) => Point.fromBytes(P).multiplyUnsafe(k).toBytes(),
  add: (P, Q) => Point.fromBytes(P).add(Point.fromBytes(Q)).toBytes(),
});

await sodium.ready;
const ED25519_IDENTITY = Uint8Array.of(1, ...new Uint8Array(31));
const notIdentity = (P: Uint8Array): Uint8Array => {
  if (Buffer.from(P).equals(ED25519_IDENTITY)) throw new Error('the identity element');
  return P;
};
/** A libsodium function writing a 32-byte result, called into a fresh buffer. */
const into32 = (f: (out: Uint8Array) => void): Uint8Array => {
  const out = new Uint8Array(32);
  f(out);
  return out;
};
// libsodium's *_noclamp functions throw on a zero scalar or a result of small order.
const sodiumEd25519: Encoded = {
  mulBase: (k) => into32((out) => native.crypto_scalarmult_ed25519_base_noclamp(out, edScalar(k))),
  mul: (P, k) => into32((out) => native.crypto_scalarmult_ed25519_noclamp(out, edScalar(k), P)),
  add: (P, Q) => notIdentity(into32((out) => native.crypto_core_ed25519_add(out, P, Q))),
};

const ristrettoScalar = (k: bigint): Uint8Array => ristretto255.Point.Fn.toBytes(ristretto255.Point.Fn.create(k));
const RISTRETTO_IDENTITY = new Uint8Array(32);
// libsodium's ristretto255 scalar multiplications throw on an identity result (a zero scalar).
const sodiumRistretto255: Encoded = {
  mulBase: (k) => sodium.crypto_scalarmult_ristretto255_base(ristrettoScalar(k)),
  mul: (P, k) => sodium.crypto_scalarmult_ristretto255(ristrettoScalar(k), P),
  add: (P, Q) => {
    const R = sodium.crypto_core_ristretto255_add(P, Q);
    if (Buffer.from(R).equals(RISTRETTO_IDENTITY)) throw new Error('the identity element');
    return R;
  },
};

function edHashToScalar(m: Uint8Array, dst: Uint8Array): bigint {
  return ed25519.Point.Fn.create(bytesToNumberLE(sha512(concatBytes(dst, m))));
}

/**
 * RFC 9380 hash_to_field to one scalar (expand_message_xmd with SHA-256, k = 128), as RFC 9591's
 * P-256 and secp256k1 suites hash to scalars: noble's hasher computes the same, through a hex
 * string of the result, which for a nonce (H3) is a secret.
 */
function xmdHashToScalar(Fn: IField<bigint>): (m: Uint8Array, dst: Uint8Array) => bigint {
  const length = Math.ceil((Fn.BITS + 128) / 8);
  return (m, dst) => {
    const uniform = expand_message_xmd(m, dst, length, sha256);
    try {
      return bytesToBigInt(uniform) % Fn.ORDER;
    } finally {
      uniform.fill(0);
    }
  };
}

/** A prime-order short-Weierstrass group of noble's (33-byte compressed points, SHA-256): its encodings and secret scalars noble's too. */
function nobleGroup(name: GroupName, Point: CurvePointCons<GroupPoint>): Group {
  const hashToScalar = xmdHashToScalar(Point.Fn);
  return { name, Point, Fn: Point.Fn, pointLength: 33, scalarLength: 32, hash: sha256, hashToScalar, encoded: nobleEncoded(Point), secret: nobleSecret(Point, hashToScalar) };
}

const GROUPS: Record<GroupName, Group> = {
  ed25519: {
    name: 'ed25519',
    Point: ed25519.Point as unknown as CurvePointCons<GroupPoint>,
    Fn: ed25519.Point.Fn,
    pointLength: 32,
    scalarLength: 32,
    hash: sha512,
    hashToScalar: edHashToScalar,
    // Canonical, on the curve, in the prime-order subgroup and not of small order.
    checkEncoding: (bytes) => native.crypto_core_ed25519_is_valid_point(bytes),
    encoded: sodiumEd25519,
    secret: edSecret(
      (k) => into32((out) => native.crypto_scalarmult_ed25519_base_noclamp(out, k)),
      (P, k) => into32((out) => native.crypto_scalarmult_ed25519_noclamp(out, k, P)),
    ),
  },
  secp256k1: nobleGroup('secp256k1', secp256k1.Point as unknown as CurvePointCons<GroupPoint>),
  p256: nobleGroup('p256', p256.Point as unknown as CurvePointCons<GroupPoint>),
  // Prime order, no cofactor: what symmetric keys' threshold PRF (tprf.ts) lives in.
  ristretto255: {
    name: 'ristretto255',
    Point: ristretto255.Point as unknown as CurvePointCons<GroupPoint>,
    Fn: ristretto255.Point.Fn,
    pointLength: 32,
    scalarLength: 32,
    hash: sha512,
    hashToScalar: edHashToScalar,
    encoded: sodiumRistretto255,
    secret: edSecret(
      (k) => sodium.crypto_scalarmult_ristretto255_base(k),
      (P, k) => sodium.crypto_scalarmult_ristretto255(k, P),
    ),
  },
};

export function getGroup(name: GroupName): Group {
  return GROUPS[name];
}

/**
 * Decodes an element as RFC 9591 DeserializeElement does: canonical encoding, on the curve,
 * not the identity, in the prime-order subgroup. Failures are attributed to `sender`.
 */
export function decodePoint(g: Group, hex: string, sender?: PartyId): GroupPoint {
  const bytes = fromHex(hex);
  let p: GroupPoint;
  try {
    if (bytes.length !== g.pointLength) throw new Error(`expected ${g.pointLength} bytes`);
    p = g.Point.fromBytes(bytes);
    p.assertValidity();
  } catch (e) {
    throw new ProtocolError('invalid-point', `not a ${g.name} point: ${(e as Error).message}`, sender);
  }
  if (p.is0()) throw new ProtocolError('invalid-point', 'identity element', sender);
  if (g.checkEncoding && !g.checkEncoding(bytes)) throw new ProtocolError('invalid-point', 'not in the prime-order subgroup', sender);
  // Reject alternative encodings of a valid point so that hashes over encodings are unambiguous.
  if (toHex(p.toBytes()) !== hex) throw new ProtocolError('invalid-point', 'non-canonical encoding', sender);
  return p;
}

/**
 * A valid element's encoding, checked as decodePoint checks it, without decoding it where the
 * group can check the encoding alone (Ed25519, for each commitment of every signature).
 */
export function validEncoding(g: Group, hex: string, sender?: PartyId): Uint8Array {
  if (!g.checkEncoding) return decodePoint(g, hex, sender).toBytes();
  const bytes = fromHex(hex);
  if (bytes.length !== g.pointLength || !g.checkEncoding(bytes)) throw new ProtocolError('invalid-point', `not a canonical ${g.name} point of the prime-order subgroup, other than the identity`, sender);
  return bytes;
}

export function encodePoint(p: GroupPoint): string {
  if (p.is0()) throw new ProtocolError('invalid-point', 'refusing to serialise the identity element');
  return toHex(p.toBytes());
}

/** Decodes a scalar in [0, order) (or [1, order) when `nonzero`); failures name `sender`. */
export function decodeScalar(g: Group, hex: string, sender?: PartyId, nonzero = false): bigint {
  const bytes = fromHex(hex);
  if (bytes.length !== g.scalarLength) throw new ProtocolError('malformed', `scalar must be ${g.scalarLength} bytes`, sender);
  const s = g.Fn.isLE ? bytesToNumberLE(bytes) : bytesToNumberBE(bytes);
  if (s >= g.Fn.ORDER || (nonzero && s === 0n)) throw new ProtocolError('scalar-range', 'scalar out of range', sender);
  return s;
}

export const encodeScalar = (g: Group, s: bigint): string => toHex(g.Fn.toBytes(s));

/** Identifier of a party as a scalar (RFC 9591: identifiers are non-zero scalars). */
export const idScalar = (id: PartyId): bigint => BigInt(id);

export const suiteNames = ['ed25519', 'ed25519ph', 'secp256k1', 'p256', 'ristretto255'] as const;
/** A signing ciphersuite. */
export type SuiteName = (typeof suiteNames)[number];

export interface Suite {
  readonly name: SuiteName;
  readonly contextString: string;
  readonly group: Group;
  /** RFC 9591 H1 (binding factor), H3 (nonce), H4 (message), H5 (commitment list). */
  readonly H1: (m: Uint8Array) => bigint;
  readonly H3: (m: Uint8Array) => bigint;
  readonly H4: (m: Uint8Array) => Uint8Array;
  readonly H5: (m: Uint8Array) => Uint8Array;
  /** The Schnorr challenge c = H2(R, PK, msg) as the suite's verifier computes it, over encodings. */
  readonly challenge: (R: Uint8Array, PK: Uint8Array, msg: Uint8Array) => bigint;
  /** Required message length, when the suite signs a fixed-size digest. */
  readonly messageLength?: number;
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function makeSuite(
  name: SuiteName,
  contextString: string,
  g: Group,
  challenge: (R: Uint8Array, PK: Uint8Array, msg: Uint8Array) => bigint,
  messageLength?: number,
): Suite {
  const tag = (t: string) => utf8(contextString + t);
  const [rho, nonce, msgTag, com] = [tag('rho'), tag('nonce'), tag('msg'), tag('com')];
  return {
    name,
    contextString,
    group: g,
    H1: (m) => g.hashToScalar(m, rho),
    H3: (m) => g.hashToScalar(m, nonce),
    H4: (m) => g.hash(concatBytes(msgTag, m)),
    H5: (m) => g.hash(concatBytes(com, m)),
    challenge,
    ...(messageLength === undefined ? {} : { messageLength }),
  };
}

const rfcChallenge =
  (g: Group, contextString: string) =>
  (R: Uint8Array, PK: Uint8Array, msg: Uint8Array): bigint =>
    g.hashToScalar(concatBytes(R, PK, msg), utf8(contextString + 'chal'));

// RFC 8032 §5.1: Ed25519ph hashes dom2(phflag=1, context='') || R || A || PH(M). The signed
// "message" in this suite is PH(M) = SHA-512(M) itself, as AWS KMS ED25519_PH_SHA_512 expects.
const DOM2_PH = concatBytes(utf8('SigEd25519 no Ed25519 collisions'), Uint8Array.of(1, 0));

const SUITES: Record<SuiteName, Suite> = {
  // RFC 9591 §6.1: H2 is undecorated SHA-512, so signatures are plain RFC 8032 Ed25519.
  ed25519: makeSuite('ed25519', 'FROST-ED25519-SHA512-v1', GROUPS.ed25519, (R, PK, m) =>
    edHashToScalar(concatBytes(R, PK, m), new Uint8Array(0)),
  ),
  // Not an RFC 9591 suite: its own context string keeps binding factors and nonces domain-separated
  // from plain Ed25519; only the challenge must match what Ed25519ph verifiers compute.
  ed25519ph: makeSuite(
    'ed25519ph',
    'FROST-ED25519PH-SHA512-v1',
    GROUPS.ed25519,
    (R, PK, m) => edHashToScalar(concatBytes(R, PK, m), DOM2_PH),
    64,
  ),
  secp256k1: makeSuite('secp256k1', 'FROST-secp256k1-SHA256-v1', GROUPS.secp256k1, rfcChallenge(GROUPS.secp256k1, 'FROST-secp256k1-SHA256-v1')),
  p256: makeSuite('p256', 'FROST-P256-SHA256-v1', GROUPS.p256, rfcChallenge(GROUPS.p256, 'FROST-P256-SHA256-v1')),
  // RFC 9591 §6.2. Its context string also separates the DKG proofs of ristretto255 keys.
  ristretto255: makeSuite('ristretto255', 'FROST-RISTRETTO255-SHA512-v1', GROUPS.ristretto255, rfcChallenge(GROUPS.ristretto255, 'FROST-RISTRETTO255-SHA512-v1')),
};

export function getSuite(name: SuiteName): Suite {
  return SUITES[name];
}
