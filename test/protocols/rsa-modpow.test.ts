import { describe, expect, it } from 'vitest';
import { egcd, modInverse, randomBelow } from '../../signers/protocols/rsa/arith.js';
import { bigIntToBytes, bytesToBigInt } from '../../signers/protocols/integers.js';
import { modPow, modPowBigInt } from '../../signers/protocols/rsa/modpow.js';
import { seededRng } from '../helpers/rng.js';

describe('modPow', () => {
  const rng = seededRng('modpow');
  // Any odd modulus exercises the native path; a full-length "private" exponent below it.
  const rsaModulus = (bits: number) => {
    const n = (1n << BigInt(bits - 1)) | randomBelow(rng, 1n << BigInt(bits - 1)) | 1n;
    return { n, d: randomBelow(rng, n) };
  };

  it('native and BigInt agree at 2048 and 4096 bits for short, full-length and longer exponents', () => {
    for (const bits of [2048, 4096]) {
      const { n, d } = rsaModulus(bits);
      for (let i = 0; i < 3; i++) {
        const base = randomBelow(rng, n);
        const exp = i === 0 ? d : randomBelow(rng, n << 400n); // longer than the modulus too
        expect(modPow(base, exp, n)).toBe(modPowBigInt(base, exp, n));
      }
      for (const exp of [2n, 65537n, (1n << 256n) - 189n]) {
        const base = randomBelow(rng, n);
        expect(modPow(base, exp, n)).toBe(modPowBigInt(base, exp, n));
      }
      // base larger than the modulus is reduced first
      const b = randomBelow(rng, n);
      expect(modPow(b + 3n * n, d, n)).toBe(modPowBigInt(b, d, n));
    }
  });

  it('handles the bases the native ladder refuses, exactly', () => {
    const { n, d } = rsaModulus(2048);
    const odd = d | 1n;
    const even = d & ~1n;
    expect(modPow(0n, odd, n)).toBe(0n);
    expect(modPow(n, odd, n)).toBe(0n);
    expect(modPow(1n, odd, n)).toBe(1n);
    expect(modPow(n + 1n, odd, n)).toBe(1n);
    expect(modPow(n - 1n, odd, n)).toBe(n - 1n);
    expect(modPow(n - 1n, even, n)).toBe(1n);
    expect(modPow(-1n, odd, n)).toBe(n - 1n);
    expect(modPow(2n, odd, n)).toBe(modPowBigInt(2n, odd, n)); // 2 and n−2 are the edges it accepts
    expect(modPow(n - 2n, odd, n)).toBe(modPowBigInt(n - 2n, odd, n));
    // a result with leading zero bytes: 2^e with e < 2000 is far below n
    expect(modPow(2n, 1999n, n)).toBe(1n << 1999n);
  });

  it('stays right when more moduli are used than are cached', () => {
    for (let i = 0; i < 12; i++) {
      const { n, d } = rsaModulus(1024);
      const base = randomBelow(rng, n);
      expect(modPow(base, d, n)).toBe(modPowBigInt(base, d, n));
    }
  });

  it('handles small and degenerate cases on the BigInt path', () => {
    expect(modPow(5n, 0n, 7n)).toBe(1n);
    expect(modPow(5n, 3n, 1n)).toBe(0n);
    expect(modPow(3n, 4n, 10n)).toBe(1n); // even modulus
    expect(modPowBigInt(2n, 10n, 1000n)).toBe(24n);
    expect(() => modPow(2n, -1n, 7n)).toThrow(RangeError);
    expect(() => modPow(2n, 3n, 0n)).toThrow(RangeError);
  });
});

describe('arith', () => {
  it('egcd and modInverse', () => {
    const [g, x, y] = egcd(240n, 46n);
    expect(g).toBe(2n);
    expect(240n * x + 46n * y).toBe(2n);
    expect((modInverse(17n, 3120n) * 17n) % 3120n).toBe(1n);
    expect((modInverse(-3n, 7n) * 4n) % 7n).toBe(1n); // -3 ≡ 4
    expect(() => modInverse(6n, 9n)).toThrow(RangeError);
  });

  it('fixed-length byte conversions', () => {
    expect(Buffer.from(bigIntToBytes(0x0102n, 4)).toString('hex')).toBe('00000102');
    expect(bytesToBigInt(Uint8Array.of(0, 0, 1, 2))).toBe(0x0102n);
    expect(() => bigIntToBytes(0x10000n, 2)).toThrow(RangeError);
  });
});
