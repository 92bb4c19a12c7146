// Integer helpers for threshold RSA: conversions, gcd/inverse, sampling from the injected Rng.
// Only public values go through the non-constant-time routines here (gcd, inverse, Lagrange);
// secret exponentiations go through modPow's native path.

import { ProtocolError } from '../common.js';
import { type Rng } from '../../../contract/bytes.js';
import { bigIntToBytes, bytesToBigInt, WORD } from '../integers.js';

export function bitLength(x: bigint): number {
  let n = 0;
  for (; x > WORD; x >>= 64n) n += 64;
  for (; x > 0n; x >>= 1n) n++;
  return n;
}
export const byteLength = (x: bigint): number => Math.ceil(bitLength(x) / 8);

/** Minimal-length big-endian bytes (at least one byte). */
export const bigIntToMinBytes = (x: bigint): Uint8Array => bigIntToBytes(x, Math.max(1, byteLength(x)));

export const mod = (a: bigint, m: bigint): bigint => ((a % m) + m) % m;

export function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Extended Euclid: returns [g, x, y] with a·x + b·y = g = gcd(a, b), for a, b ≥ 0. */
export function egcd(a: bigint, b: bigint): [bigint, bigint, bigint] {
  let [r0, r1, x0, x1, y0, y1] = [a, b, 1n, 0n, 0n, 1n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [x0, x1] = [x1, x0 - q * x1];
    [y0, y1] = [y1, y0 - q * y1];
  }
  return [r0, x0, y0];
}

/** a⁻¹ mod m; throws RangeError when a is not invertible. */
export function modInverse(a: bigint, m: bigint): bigint {
  const [g, x] = egcd(mod(a, m), m);
  if (g !== 1n) throw new RangeError('not invertible');
  return mod(x, m);
}

export function factorial(k: number): bigint {
  let f = 1n;
  for (let i = 2n; i <= BigInt(k); i++) f *= i;
  return f;
}

/** A uniform integer in [0, 2^bits) from the Rng; the random bytes are zeroed after use. */
export function randomBits(rng: Rng, bits: number): bigint {
  const bytes = rng(Math.ceil(bits / 8));
  if (bytes.length !== Math.ceil(bits / 8)) throw new ProtocolError('bad-parameters', 'rng returned the wrong length');
  const x = bytesToBigInt(bytes) & ((1n << BigInt(bits)) - 1n);
  bytes.fill(0);
  return x;
}

/** An integer in [0, m), statistically within 2^-128 of uniform (128 extra bits, reduced). */
export const randomBelow = (rng: Rng, m: bigint): bigint => randomBits(rng, bitLength(m) + 128) % m;
