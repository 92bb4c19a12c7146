// integers.ts: the one bytes ↔ integer conversion every protocol uses (RSA's OS2IP/I2OSP, the
// ECDSA curves' scalars, DKLs23's ã), checked against hex at every length and at the edges.
import { describe, expect, it } from 'vitest';
import { bigIntToBytes, bytesToBigInt, readBigInt, writeBigInt } from '../../signers/protocols/integers.js';
import { seededRng } from '../helpers/rng.js';

const viaHex = (b: Uint8Array): bigint => (b.length === 0 ? 0n : BigInt('0x' + Buffer.from(b).toString('hex')));

describe('big-endian integers', () => {
  const rng = seededRng('integers');

  it('reads and writes every length from 1 to 80 bytes as hex does', () => {
    for (let len = 1; len <= 80; len++) {
      for (const b of [rng(len), new Uint8Array(len), new Uint8Array(len).fill(0xff)]) {
        const x = viaHex(b);
        expect(bytesToBigInt(b)).toBe(x);
        expect(Buffer.from(bigIntToBytes(x, len)).equals(Buffer.from(b))).toBe(true);
      }
    }
  });

  it('reads and writes in place, inside a larger buffer, leaving the neighbours alone', () => {
    for (const len of [32, 33, 48, 66]) {
      const buf = new Uint8Array(len + 10).fill(0xaa);
      const view = new DataView(buf.buffer);
      const x = viaHex(rng(len)) >> 3n; // leading zero bits: the write must fill them
      writeBigInt(view, 5, len, x);
      expect(readBigInt(view, 5, len)).toBe(x);
      expect([...buf.subarray(0, 5), ...buf.subarray(5 + len)].every((v) => v === 0xaa)).toBe(true);
      writeBigInt(view, 5, len, 1n); // a small value over a large one: every byte ahead is zeroed
      expect(readBigInt(view, 5, len)).toBe(1n);
    }
  });

  it('refuses a negative integer or one too large for its length', () => {
    expect(() => bigIntToBytes(-1n, 32)).toThrow(RangeError);
    expect(() => bigIntToBytes(1n << 256n, 32)).toThrow(RangeError);
    expect(() => bigIntToBytes(256n, 1)).toThrow(RangeError);
    expect(bigIntToBytes((1n << 256n) - 1n, 32).every((v) => v === 0xff)).toBe(true);
  });
});
