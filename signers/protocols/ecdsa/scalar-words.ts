// Sums and differences mod n of scalars held as bytes, 32-bit word by word, without a BigInt.
// The multiplication OTs (rvole.ts) add and subtract thousands of scalars a signature, most of
// them only to write the result back as bytes; in V8 each BigInt read from bytes allocates about
// ten times and costs some 200 ns, more than the arithmetic itself.
//
// A scalar takes `stride` = 4·⌈L/4⌉ bytes, big-endian, right-aligned (P-521's 66 bytes sit in 68
// with two zero bytes ahead), so every word is one DataView read. The words are combined with
// masks rather than branches on their values.

import { bigIntToBytes } from '../integers.js';
import type { EcdsaCurve } from './curves.js';

/** Bytes a scalar takes in a word table. */
export const wordStride = (c: EcdsaCurve): number => 4 * Math.ceil(c.scalarLength / 4);

const TWO32 = 0x1_0000_0000;

export interface ScalarWords {
  readonly words: number;
  /** n's words, most significant first. */
  readonly n: Uint32Array;
  /** Scratch for one sum and its reduction: secret, so each caller has its own to wipe. */
  readonly sum: Uint32Array;
  readonly reduced: Uint32Array;
}

const moduli = new Map<string, Uint32Array>();

/** Word arithmetic mod c's n, with fresh scratch (wipe() it when done). */
export function scalarWords(c: EcdsaCurve): ScalarWords {
  const words = wordStride(c) / 4;
  let n = moduli.get(c.name);
  if (!n) {
    const view = new DataView(bigIntToBytes(c.n, 4 * words).buffer);
    n = Uint32Array.from({ length: words }, (_, i) => view.getUint32(4 * i));
    moduli.set(c.name, n);
  }
  return { words, n, sum: new Uint32Array(words), reduced: new Uint32Array(words) };
}

export function wipe(w: ScalarWords): void {
  w.sum.fill(0);
  w.reduced.fill(0);
}

/** Whether the scalar at `x` is below n (the final borrow of x − n). */
export function belowN(w: ScalarWords, xv: DataView, x: number): boolean {
  let borrow = 0;
  for (let i = w.words - 1; i >= 0; i--) borrow = +(xv.getUint32(x + 4 * i) - w.n[i]! - borrow < 0);
  return borrow === 1;
}

/**
 * out = x + (y if `take` else 0) mod n, for x, y in [0, n). `take` is 0 or 1 and picks by mask,
 * so the work does not depend on it.
 */
export function addMod(w: ScalarWords, out: DataView, o: number, xv: DataView, x: number, yv: DataView, y: number, take = 1): void {
  const mask = -take;
  const { sum, reduced, n } = w;
  let carry = 0;
  for (let i = w.words - 1; i >= 0; i--) {
    const s = xv.getUint32(x + 4 * i) + ((yv.getUint32(y + 4 * i) & mask) >>> 0) + carry;
    sum[i] = s;
    carry = +(s >= TWO32);
  }
  let borrow = 0;
  for (let i = w.words - 1; i >= 0; i--) {
    const d = sum[i]! - n[i]! - borrow;
    reduced[i] = d;
    borrow = +(d < 0);
  }
  // x + y ≥ n exactly when the sum carried out or x + y − n did not borrow.
  select(w, out, o, -(carry | (borrow ^ 1)));
}

/** out = x − y mod n, for x, y in [0, n). */
export function subMod(w: ScalarWords, out: DataView, o: number, xv: DataView, x: number, yv: DataView, y: number): void {
  const { sum, reduced, n } = w;
  let borrow = 0;
  for (let i = w.words - 1; i >= 0; i--) {
    const d = xv.getUint32(x + 4 * i) - yv.getUint32(y + 4 * i) - borrow;
    sum[i] = d;
    borrow = +(d < 0);
  }
  let carry = 0;
  for (let i = w.words - 1; i >= 0; i--) {
    const s = sum[i]! + n[i]! + carry;
    reduced[i] = s;
    carry = +(s >= TWO32);
  }
  select(w, out, o, -borrow);
}

/** Writes `reduced` where `mask` is all ones, else `sum`. */
function select(w: ScalarWords, out: DataView, o: number, mask: number): void {
  for (let i = 0; i < w.words; i++) out.setUint32(o + 4 * i, ((w.reduced[i]! & mask) | (w.sum[i]! & ~mask)) >>> 0);
}
