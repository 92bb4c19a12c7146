// The curves threshold ECDSA runs on (secp256k1, P-256, P-384, P-521), the validation every inbound
// element goes through, and the domain-separated hashes the protocol uses.
//
// Group arithmetic is @noble/curves', except that multiplications by a secret scalar go to
// OpenSSL (node:crypto ECDH, constant-time) where this build has the curve: an order of magnitude
// faster for P-256, 2–3× for secp256k1, P-384 and P-521. Hashing is node:crypto's (native).
// suites.ts has no P-384 or P-521, so the curve table lives here; the encoding rules are
// suites.ts's (canonical SEC1 compressed points, big-endian fixed-length scalars). P-521 is the
// one curve whose order's bit length (521) is not a whole number of bytes: scalars and
// coordinates take 66 bytes, and code that reads random bytes as a scalar goes by orderBits.

import { createECDH, createHash, getCurves } from 'node:crypto';
import type { CurvePoint, CurvePointCons } from '@noble/curves/abstract/curve.js';
import type { IField } from '@noble/curves/abstract/modular.js';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ProtocolError } from '../common.js';
import { bigIntToBytes, bytesToBigInt } from '../integers.js';
import { fromHex, toHex, type PartyId, type Rng } from '../../../contract/bytes.js';

/** A point of one of the curves below. */
export interface EcPoint extends CurvePoint<bigint, EcPoint> {}

export const ecdsaCurveNames = ['secp256k1', 'p256', 'p384', 'p521'] as const;
export type EcdsaCurveName = (typeof ecdsaCurveNames)[number];

type NobleEcdsa = typeof p256;

export interface EcdsaCurve {
  readonly name: EcdsaCurveName;
  readonly Point: CurvePointCons<EcPoint>;
  readonly Fn: IField<bigint>;
  readonly n: bigint;
  /** SEC1 compressed point length. */
  readonly pointLength: number;
  readonly scalarLength: number;
  /** Bit length of the group order (what ECDSA's bits2int truncates a digest to). */
  readonly orderBits: number;
  /** noble's ECDSA for this curve (signature encodings). */
  readonly ecdsa: NobleEcdsa;
  /** OpenSSL's name for the curve where OpenSSL is the faster constant-time ladder (and this build has it). */
  readonly openssl?: string;
}

const nativeCurves = new Set(getCurves());

const make = (name: EcdsaCurveName, ecdsa: NobleEcdsa, scalarLength: number, openssl?: string): EcdsaCurve => ({
  name,
  ...(openssl !== undefined && nativeCurves.has(openssl) ? { openssl } : {}),
  Point: ecdsa.Point as unknown as CurvePointCons<EcPoint>,
  Fn: ecdsa.Point.Fn,
  n: ecdsa.Point.Fn.ORDER,
  pointLength: scalarLength + 1,
  scalarLength,
  orderBits: ecdsa.Point.Fn.BITS,
  ecdsa,
});

const CURVES: Record<EcdsaCurveName, EcdsaCurve> = {
  secp256k1: make('secp256k1', secp256k1 as unknown as NobleEcdsa, 32, 'secp256k1'),
  p256: make('p256', p256, 32, 'prime256v1'),
  p384: make('p384', p384 as unknown as NobleEcdsa, 48, 'secp384r1'),
  p521: make('p521', p521 as unknown as NobleEcdsa, 66, 'secp521r1'),
};

export function getCurve(name: EcdsaCurveName): EcdsaCurve {
  const c = CURVES[name];
  if (!c) throw new ProtocolError('bad-parameters', `unknown curve ${name}`);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Encodings. Every element that arrives from another party goes through decodePoint/decodeScalar,
// which attribute failures to the sender.

/** Canonical compressed encoding, on the curve, not the identity (all these curves have prime order). */
export function decodePoint(c: EcdsaCurve, hex: string, sender?: PartyId): EcPoint {
  let p: EcPoint;
  try {
    const bytes = fromHex(hex);
    if (bytes.length !== c.pointLength) throw new Error(`expected ${c.pointLength} bytes`);
    p = c.Point.fromBytes(bytes);
    p.assertValidity();
  } catch (e) {
    throw new ProtocolError('invalid-point', `not a ${c.name} point: ${(e as Error).message}`, sender);
  }
  if (p.is0()) throw new ProtocolError('invalid-point', 'identity element', sender);
  if (toHex(p.toBytes()) !== hex) throw new ProtocolError('invalid-point', 'non-canonical encoding', sender);
  return p;
}

export function encodePoint(p: EcPoint): string {
  if (p.is0()) throw new ProtocolError('invalid-point', 'refusing to serialise the identity element');
  return toHex(pointBytes(p, true));
}

/**
 * SEC1 bytes of a point with one field inversion: noble's toBytes makes the point affine twice
 * (its validity check, then the encoding), each an inversion, unless it already is.
 */
function pointBytes(p: EcPoint, compressed: boolean): Uint8Array {
  const a = p.is0() ? p : (p.constructor as unknown as CurvePointCons<EcPoint>).fromAffine(p.toAffine());
  return (a as unknown as { toBytes(c: boolean): Uint8Array }).toBytes(compressed);
}

/**
 * Protocol-internal points travel uncompressed: decoding then costs a curve-equation check
 * instead of a square root. Same rules otherwise: on the curve, not the identity, canonical.
 */
export const wireLength = (c: EcdsaCurve): number => 2 * c.scalarLength + 1;

export function decodeWire(c: EcdsaCurve, hex: string, sender?: PartyId): EcPoint {
  let p: EcPoint;
  try {
    const bytes = fromHex(hex);
    if (bytes.length !== wireLength(c) || bytes[0] !== 4) throw new Error(`expected ${wireLength(c)} bytes, uncompressed`);
    p = c.Point.fromBytes(bytes);
    p.assertValidity();
  } catch (e) {
    throw new ProtocolError('invalid-point', `not a ${c.name} point: ${(e as Error).message}`, sender);
  }
  if (p.is0()) throw new ProtocolError('invalid-point', 'identity element', sender);
  if (toHex((p as unknown as { toBytes(c: boolean): Uint8Array }).toBytes(false)) !== hex) throw new ProtocolError('invalid-point', 'non-canonical encoding', sender);
  return p;
}

export function encodeWire(p: EcPoint): string {
  if (p.is0()) throw new ProtocolError('invalid-point', 'refusing to serialise the identity element');
  return toHex(pointBytes(p, false));
}

/** A scalar in [0, n) (or [1, n) when `nonzero`), big-endian, fixed length. */
export function decodeScalar(c: EcdsaCurve, hex: string, sender?: PartyId, nonzero = false): bigint {
  if (hex.length !== 2 * c.scalarLength || !/^[0-9a-f]*$/.test(hex)) throw new ProtocolError('malformed', `scalar must be ${c.scalarLength} bytes of hex`, sender);
  const s = BigInt('0x' + hex);
  if (s >= c.n || (nonzero && s === 0n)) throw new ProtocolError('scalar-range', 'scalar out of range', sender);
  return s;
}

export const encodeScalar = (c: EcdsaCurve, s: bigint): string => s.toString(16).padStart(2 * c.scalarLength, '0');
/** A scalar's fixed-length big-endian bytes, without a string on the way (it may be secret). */
export const scalarBytes = (c: EcdsaCurve, s: bigint): Uint8Array => bigIntToBytes(s, c.scalarLength);

/** A secret scalar in [1, n) from its bytes (scalarBytes'); a value out of range is attributed to `sender`. */
export function secretScalar(c: EcdsaCurve, b: Uint8Array, sender?: PartyId): bigint {
  const s = b.length === c.scalarLength ? bytesToBigInt(b) : 0n;
  if (s === 0n || s >= c.n) throw new ProtocolError('scalar-range', 'secret scalar out of range', sender);
  return s;
}

/** Bytes of at least scalarLength + 16 reduced mod n: statistically uniform (bias < 2^-128). */
export const reduceWide = (c: EcdsaCurve, b: Uint8Array): bigint => bytesToBigInt(b) % c.n;
export const wideLength = (c: EcdsaCurve): number => c.scalarLength + 16;

/** A uniformly random non-zero scalar from injected randomness. */
export function randomScalar(c: EcdsaCurve, rng: Rng): bigint {
  for (;;) {
    const s = reduceWide(c, rng(wideLength(c)));
    if (s !== 0n) return s;
  }
}

/**
 * k·G for a secret k, constant-time: by OpenSSL where this build has the curve (2–10× faster
 * than noble's ladders on each curve), else by noble. 0 maps to the identity.
 */
export function mulBase(c: EcdsaCurve, k: bigint): EcPoint {
  if (k === 0n) return c.Point.ZERO;
  if (c.openssl === undefined) return c.Point.BASE.multiply(k);
  return c.Point.fromBytes(opensslKey(c, k).getPublicKey());
}

/** k·G for a secret non-zero k, in the wire encoding (decodeWire): OpenSSL's own output when it has the curve. */
export function mulBaseWire(c: EcdsaCurve, k: bigint): string {
  if (k === 0n) throw new ProtocolError('invalid-point', 'refusing to serialise the identity element');
  return c.openssl === undefined ? encodeWire(c.Point.BASE.multiply(k)) : opensslKey(c, k).getPublicKey('hex');
}

function opensslKey(c: EcdsaCurve, k: bigint): ReturnType<typeof createECDH> {
  const e = createECDH(c.openssl!);
  const kb = scalarBytes(c, k);
  e.setPrivateKey(kb);
  kb.fill(0);
  return e;
}

/** x·Z = X, i.e. the projective point (X:Y:Z) has affine x-coordinate `x` (no inversion). */
function hasX(c: EcdsaCurve, P: EcPoint, x: Uint8Array): boolean {
  const { X, Z } = P as unknown as { X: bigint; Z: bigint };
  const Fp = (c.Point as unknown as { Fp: IField<bigint> }).Fp;
  return !P.is0() && Fp.eql(Fp.mul(bytesToBigInt(x), Z), X);
}

/**
 * Whether k·X = d·G + Γ for every triple (X, d, Γ), for secret non-zero k and secret d, in
 * constant time in both.
 *
 * With OpenSSL's curve it avoids JS ladders: OpenSSL returns only x-coordinates, so with
 * Z = d·G + Γ it checks x(k·X) = x(Z) and x(k·(X + G)) = x(Z + k·G). If k·X ≠ Z, the first
 * forces k·X = −Z, and then the second needs −Z + k·G = ±(Z + k·G), i.e. Z = O or k·G = O.
 *
 * Otherwise one noble ladder checks k·(Σ ρ_i·X_i) = (Σ ρ_i·d_i)·G + Σ ρ_i·Γ_i for ρ_1 = 1 and
 * fresh random 128-bit ρ_i: a false triple passes with probability about 2^-128. (Folding does
 * not pay with OpenSSL: the variable-time ρ_i·X_i in JS cost more than OpenSSL's ladders.)
 */
export function secretMulEquals(c: EcdsaCurve, k: bigint, triples: readonly (readonly [EcPoint, bigint, EcPoint])[], rng: Rng): boolean {
  if (k === 0n || triples.length === 0 || triples.some(([X]) => X.is0())) return false;
  if (c.openssl === undefined) {
    let [X, d, Y] = triples[0]!;
    for (const [Xi, di, Yi] of triples.slice(1)) {
      const rho = bytesToBigInt(rng(16)) | 1n;
      X = X.add(Xi.multiplyUnsafe(rho));
      d = c.Fn.add(d, c.Fn.mul(rho, di));
      Y = Y.add(Yi.multiplyUnsafe(rho));
    }
    const Z = mulBase(c, d).add(Y);
    return !X.is0() && !Z.is0() && X.multiply(k).equals(Z);
  }
  const e = opensslKey(c, k);
  const kG = c.Point.fromBytes(e.getPublicKey());
  let ok = true;
  for (const [X, d, Y] of triples) {
    const Z = mulBase(c, d).add(Y);
    const XG = X.add(c.Point.BASE);
    if (Z.is0() || XG.is0()) return false;
    ok = hasX(c, Z, e.computeSecret(encodeUncompressed(X))) && hasX(c, Z.add(kG), e.computeSecret(encodeUncompressed(XG))) && ok;
  }
  return ok;
}

const encodeUncompressed = (P: EcPoint): Uint8Array => pointBytes(P, false);

// ---------------------------------------------------------------------------------------------
// Domain-separated hashing. Every part is length-prefixed so concatenations are unambiguous.
type Part = Uint8Array | string | number;
const enc = new TextEncoder();

/** Unambiguous encoding of a tag and parts: each length-prefixed (numbers as 4-byte big-endian). */
export function framed(tag: string, ...parts: Part[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  const put = (b: Uint8Array) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    chunks.push(len, b);
  };
  put(enc.encode(tag));
  for (const p of parts) {
    if (typeof p === 'number') {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(p);
      put(b);
    } else put(typeof p === 'string' ? enc.encode(p) : p);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

const shake = (data: Uint8Array, length: number): Uint8Array => new Uint8Array(createHash('shake256', { outputLength: length }).update(data).digest());

/** SHA-256 over a tag and length-prefixed parts. */
export const tagged = (tag: string, ...parts: Part[]): Uint8Array => new Uint8Array(createHash('sha256').update(framed(tag, ...parts)).digest());

/** SHAKE256 output of `length` bytes over a tag and length-prefixed parts. */
export const xof = (length: number, tag: string, ...parts: Part[]): Uint8Array => shake(framed(tag, ...parts), length);

/** Hash to a scalar, statistically uniform mod n. */
export const hashToScalar = (c: EcdsaCurve, tag: string, ...parts: Part[]): bigint => reduceWide(c, xof(wideLength(c), tag, ...parts));
