// Arithmetic on secret scalars held as bytes (suites.ts SecretScalars): libsodium's on buffers for
// Ed25519 and ristretto255, noble's for secp256k1 and P-256; each must agree with bigint arithmetic.
import { describe, expect, it } from 'vitest';
import { getGroup, groupNames } from '../../signers/protocols/suites.js';

describe.each(groupNames)('secret scalars on %s', (name) => {
  const g = getGroup(name);
  const { Fn } = g;
  const bytes = (x: bigint) => Fn.toBytes(Fn.create(x));

  it('accepts exactly the non-zero canonical scalars', () => {
    expect(g.secret.valid(bytes(1n))).toBe(true);
    expect(g.secret.valid(bytes(Fn.ORDER - 1n))).toBe(true);
    expect(g.secret.valid(new Uint8Array(32))).toBe(false);
    const order = new Uint8Array(32);
    let x = Fn.ORDER;
    for (let i = 0; i < 32; i++, x >>= 8n) order[Fn.isLE ? i : 31 - i] = Number(x & 0xffn);
    expect(g.secret.valid(order)).toBe(false);
    expect(g.secret.valid(new Uint8Array(32).fill(0xff))).toBe(false);
    expect(g.secret.valid(new Uint8Array(31).fill(1))).toBe(false);
  });

  it('d + Σ kᵢ·cᵢ and k·G as bigint arithmetic gives them', () => {
    const [d, k1, k2, c1, c2] = [123456789n, Fn.ORDER - 5n, 2n ** 200n + 7n, Fn.ORDER - 1n, 3n ** 100n];
    const want = Fn.add(d, Fn.add(Fn.mul(k1, c1), Fn.mul(k2, Fn.create(c2))));
    expect(g.secret.combine(bytes(d), [[bytes(k1), c1], [bytes(k2), c2]])).toEqual(Fn.toBytes(want));
    expect(g.secret.mulBase(bytes(k2))).toEqual(g.encoded.mulBase(k2));
    const P = g.encoded.mulBase(99n);
    expect(g.secret.mul(P, bytes(k1))).toEqual(g.encoded.mul(P, k1));
  });

  it('combine agrees with bigint arithmetic on random and extreme scalars', () => {
    const random = () => Fn.create(BigInt('0x' + Buffer.from(crypto.getRandomValues(new Uint8Array(48))).toString('hex')));
    const cases: bigint[][] = [[0n, Fn.ORDER - 1n, Fn.ORDER - 1n], [1n, 1n, 2n ** 256n - 1n], [Fn.ORDER - 1n, Fn.ORDER - 1n, 1n]];
    for (let i = 0; i < 200; i++) cases.push([random(), random() || 1n, random()]);
    for (const [d, k, c] of cases) expect(g.secret.combine(bytes(d!), [[bytes(k!), c!]])).toEqual(Fn.toBytes(Fn.add(d!, Fn.mul(k!, Fn.create(c!)))));
  });
});
