// scalar-words.ts: sums and differences mod n word by word, as the multiplication OTs use them,
// checked against BigInt arithmetic on every curve, at random and at the edges where a sum
// carries out of the top word or a difference borrows.
import { describe, expect, it } from 'vitest';
import { ecdsaCurveNames, getCurve } from '../../signers/protocols/ecdsa/curves.js';
import { addMod, belowN, scalarWords, subMod, wipe, wordStride } from '../../signers/protocols/ecdsa/scalar-words.js';
import { bytesToBigInt, readBigInt, writeBigInt } from '../../signers/protocols/integers.js';
import { seededRng } from '../helpers/rng.js';

describe('scalar words', () => {
  const rng = seededRng('scalar-words');

  for (const name of ecdsaCurveNames) {
    it(`adds and subtracts mod n as BigInt does on ${name}`, () => {
      const c = getCurve(name);
      const S = wordStride(c);
      const w = scalarWords(c);
      const random = () => bytesToBigInt(rng(c.scalarLength + 16)) % c.n;
      const edges = [0n, 1n, 2n, c.n - 1n, c.n - 2n, c.n >> 1n, (c.n >> 1n) + 1n, (1n << BigInt(8 * c.scalarLength - 1)) % c.n];
      const values = [...edges, ...Array.from({ length: 24 }, random)];
      const buf = new Uint8Array(3 * S + 4).fill(0xaa);
      const view = new DataView(buf.buffer);
      const [x, y, out] = [0, S, 2 * S];
      for (const a of values) {
        for (const b of values) {
          writeBigInt(view, x, S, a);
          writeBigInt(view, y, S, b);
          addMod(w, view, out, view, x, view, y);
          expect(readBigInt(view, out, S)).toBe((a + b) % c.n);
          addMod(w, view, out, view, x, view, y, 0);
          expect(readBigInt(view, out, S)).toBe(a);
          subMod(w, view, out, view, x, view, y);
          expect(readBigInt(view, out, S)).toBe((a - b + c.n) % c.n);
          // In place, as rvole.ts uses it.
          addMod(w, view, x, view, x, view, y);
          expect(readBigInt(view, x, S)).toBe((a + b) % c.n);
        }
      }
      expect(buf.subarray(3 * S).every((v) => v === 0xaa)).toBe(true);
      wipe(w);
      expect([...w.sum, ...w.reduced].every((v) => v === 0)).toBe(true);
    });

    it(`tells scalars below n from the rest on ${name}`, () => {
      const c = getCurve(name);
      const S = wordStride(c);
      const w = scalarWords(c);
      const view = new DataView(new ArrayBuffer(S));
      const top = (1n << BigInt(8 * S)) - 1n;
      for (const [v, below] of [[0n, true], [c.n - 1n, true], [c.n, false], [c.n + 1n, false], [top, false]] as const) {
        writeBigInt(view, 0, S, v);
        expect(belowN(w, view, 0)).toBe(below);
      }
    });
  }

  it('keeps P-521 scalars in whole words, two zero bytes ahead', () => {
    expect(wordStride(getCurve('p521'))).toBe(68);
    expect(wordStride(getCurve('p256'))).toBe(32);
    expect(wordStride(getCurve('p384'))).toBe(48);
  });
});
