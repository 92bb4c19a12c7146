// Arithmetic on secret scalars held as bytes (key shares, nonces, polynomial coefficients), so
// that a secret is never a string: libsodium's scalar field on buffers for Ed25519 and
// ristretto255, noble's for secp256k1 and P-256 (docs/threat-model.md, "Shares in memory").

import type { CurvePoint, CurvePointCons } from '@noble/curves/abstract/curve.js';
import { getMinHashLength } from '@noble/curves/abstract/modular.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { concatBytes } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { timingSafeEqual } from 'node:crypto';
import * as native from 'sodium-native';
import { bigIntToBytes, bytesToBigInt } from './integers.js';
import type { Rng } from '../../contract/bytes.js';

/**
 * Secret scalars as the group's canonical scalar bytes (Fn.toBytes), so that a share or a nonce
 * is never a string. For Ed25519 and ristretto255 (one scalar field) every operation is
 * libsodium's on buffers and no bigint of a secret exists; for secp256k1 and P-256, whose
 * arithmetic is noble's, each operation makes the bigint it needs and drops it on return
 * (docs/threat-model.md, "Shares in memory").
 */
export interface SecretScalars {
  /** Whether `k` is a canonical scalar in [1, order). */
  valid(k: Uint8Array): boolean;
  mulBase(k: Uint8Array): Uint8Array;
  mul(P: Uint8Array, k: Uint8Array): Uint8Array;
  /** d + Σ kᵢ·cᵢ for secret d, kᵢ and public cᵢ: a value that is made public (a signature share, a proof). */
  combine(d: Uint8Array, terms: readonly (readonly [Uint8Array, bigint])[]): Uint8Array;
  /** A secret scalar from a wide hash (its RFC 9591 H3 under `dst`); `m` is wiped by the caller. */
  hashToScalar(m: Uint8Array, dst: Uint8Array): Uint8Array;
  /** A uniformly random scalar from injected randomness (zero is all but impossible: callers check `valid`). */
  random(rng: Rng): Uint8Array;
}
/** A public Ed25519 scalar as libsodium takes it (32 bytes, little-endian, reduced). */
export const edScalar = (k: bigint): Uint8Array => ed25519.Point.Fn.toBytes(ed25519.Point.Fn.create(k));

/**
 * d + Σ kᵢ·cᵢ mod L on buffers: each kᵢ·cᵢ as a 64-byte schoolbook product of the little-endian
 * bytes (a fixed number of steps whatever the values), reduced by libsodium. Two native calls per
 * term where a double-and-add over cᵢ's bits made some 380.
 */
function edCombine(d: Uint8Array, terms: readonly (readonly [Uint8Array, bigint])[]): Uint8Array {
  const acc = Buffer.from(d);
  const sums = new Float64Array(64);
  const wide = new Uint8Array(64);
  const term = new Uint8Array(32);
  try {
    for (const [k, c] of terms) {
      const cb = edScalar(c);
      sums.fill(0);
      for (let i = 0; i < 32; i++) for (let j = 0; j < 32; j++) sums[i + j]! += k[i]! * cb[j]!;
      // Each column is below 2^21, so carrying byte by byte is exact; the product is below 2^512.
      let carry = 0;
      for (let i = 0; i < 64; i++) {
        const v = sums[i]! + carry;
        wide[i] = v % 256;
        carry = Math.floor(v / 256);
      }
      native.crypto_core_ed25519_scalar_reduce(term, wide);
      native.crypto_core_ed25519_scalar_add(acc, acc, term);
    }
    return Uint8Array.from(acc);
  } finally {
    for (const b of [acc, wide, term]) native.sodium_memzero(b);
    sums.fill(0);
  }
}

/** k is canonical (k < L: reducing it changes nothing) and not zero, without branching on its bytes. */
function edValid(k: Uint8Array): boolean {
  if (k.length !== 32) return false;
  const wide = new Uint8Array(64);
  const reduced = new Uint8Array(32);
  wide.set(k);
  native.crypto_core_ed25519_scalar_reduce(reduced, wide);
  const canonical = timingSafeEqual(reduced, k);
  const nonzero = k.reduce((acc, x) => acc | x, 0) !== 0;
  native.sodium_memzero(wide);
  native.sodium_memzero(reduced);
  return canonical && nonzero;
}

function edHashToSecret(m: Uint8Array, dst: Uint8Array): Uint8Array {
  const wide = sha512(concatBytes(dst, m));
  const out = new Uint8Array(32);
  native.crypto_core_ed25519_scalar_reduce(out, wide);
  native.sodium_memzero(wide);
  return out;
}

/** 64 random bytes reduced mod L: uniform. */
function edRandom(rng: Rng): Uint8Array {
  const wide = Uint8Array.from(rng(64));
  const out = new Uint8Array(32);
  native.crypto_core_ed25519_scalar_reduce(out, wide);
  native.sodium_memzero(wide);
  return out;
}

/** Ed25519 or ristretto255's secret scalars: libsodium's scalar field operations on buffers. */
export const edSecret = (mulBase: (k: Uint8Array) => Uint8Array, mul: (P: Uint8Array, k: Uint8Array) => Uint8Array): SecretScalars => ({
  valid: edValid,
  mulBase,
  mul,
  combine: edCombine,
  hashToScalar: edHashToSecret,
  random: edRandom,
});

/** noble's groups: each operation converts the secret to the bigint noble needs, for that operation only. */
export const nobleSecret = <P extends CurvePoint<bigint, P>>(Point: CurvePointCons<P>, hashToScalar: (m: Uint8Array, dst: Uint8Array) => bigint): SecretScalars => {
  const { Fn } = Point;
  // Big-endian scalars (these groups' encoding) converted without noble's Fn.fromBytes and
  // Fn.toBytes, which go through a hex string of the secret.
  const inRange = (k: Uint8Array, v: bigint): boolean => k.length === Fn.BYTES && v < Fn.ORDER;
  const n = (k: Uint8Array): bigint => {
    const v = bytesToBigInt(k);
    if (!inRange(k, v)) throw new RangeError(`a scalar is ${Fn.BYTES} bytes below the group order`);
    return v;
  };
  const bytes = (v: bigint): Uint8Array => bigIntToBytes(v, Fn.BYTES);
  return {
    valid: (k) => {
      const v = bytesToBigInt(k);
      return inRange(k, v) && v !== 0n;
    },
    mulBase: (k) => Point.BASE.multiply(n(k)).toBytes(),
    mul: (P, k) => Point.fromBytes(P).multiply(n(k)).toBytes(),
    combine: (d, terms) => bytes(terms.reduce((acc, [k, c]) => Fn.add(acc, Fn.mul(n(k), c)), n(d))),
    hashToScalar: (m, dst) => bytes(hashToScalar(m, dst)),
    // noble's mapHashToField (wide mod (n − 1), plus 1: never zero), without its hex.
    random: (rng) => {
      const wide = Uint8Array.from(rng(getMinHashLength(Fn.ORDER)));
      try {
        return bytes((bytesToBigInt(wide) % (Fn.ORDER - 1n)) + 1n);
      } finally {
        wide.fill(0);
      }
    },
  };
};