// Arithmetic on secret scalars held as bytes (secret-scalars.ts): libsodium's on buffers for
// Ed25519 and ristretto255, noble's for secp256k1 and P-256; each must agree with bigint arithmetic.
// And the wipe helpers every share, state and message goes through (common.ts).
import { describe, expect, it } from 'vitest';
import { usingSecrets, wipeSecrets } from '../../signers/protocols/common.js';
import { evalSecretPoly, sumSecrets } from '../../signers/protocols/dkg.js';
import { evalPoly } from '../../signers/protocols/shamir.js';
import { getGroup, groupNames } from '../../signers/protocols/suites.js';
import { seededRng } from '../helpers/rng.js';

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

describe.each(groupNames)('a secret polynomial on %s', (name) => {
  const g = getGroup(name);
  const { Fn } = g;

  it('is evaluated over bytes as bigint arithmetic evaluates it; random scalars are canonical', () => {
    const rng = seededRng(`poly/${name}`);
    const coeffs = [g.secret.random(rng), g.secret.random(rng), g.secret.random(rng)];
    for (const a of coeffs) expect(g.secret.valid(a)).toBe(true);
    expect(coeffs[0]).not.toEqual(coeffs[1]);
    for (const x of [1n, 2n, 65535n]) expect(evalSecretPoly(g, coeffs, x)).toEqual(Fn.toBytes(evalPoly(Fn, coeffs.map((a) => Fn.fromBytes(a)), x)));
    expect(sumSecrets(g, coeffs)).toEqual(Fn.toBytes(coeffs.reduce((s, a) => Fn.add(s, Fn.fromBytes(a)), 0n)));
  });
});

describe('wiping secrets', () => {
  it('wipes every buffer of what was spent, but those the kept value also holds', () => {
    const carried = Uint8Array.of(1, 2);
    const spent = { state: { a: Uint8Array.of(3), carried }, inbound: [{ payload: { share: Uint8Array.of(4) } }], map: new Map([[1, Uint8Array.of(5)]]) };
    wipeSecrets(spent, { next: { carried } });
    expect(spent.state.a).toEqual(Uint8Array.of(0));
    expect(spent.inbound[0]!.payload.share).toEqual(Uint8Array.of(0));
    expect(spent.map.get(1)).toEqual(Uint8Array.of(0));
    expect(carried).toEqual(Uint8Array.of(1, 2));
  });

  it('usingSecrets wipes at once after a synchronous use, after the promise of an asynchronous one, and on a throw', async () => {
    const a = Uint8Array.of(7);
    expect(usingSecrets({ a }, (s) => s.a[0])).toBe(7);
    expect(a[0]).toBe(0);
    const b = Uint8Array.of(8);
    const pending = usingSecrets({ b }, async (s) => {
      await new Promise((r) => setTimeout(r, 5));
      return s.b[0];
    });
    expect(b[0]).toBe(8); // still in use
    expect(await pending).toBe(8);
    expect(b[0]).toBe(0);
    const c = Uint8Array.of(9);
    await expect(usingSecrets({ c }, async () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    expect(c[0]).toBe(0);
    const d = Uint8Array.of(10);
    expect(() =>
      usingSecrets({ d }, () => {
        throw new Error('refused');
      }),
    ).toThrow('refused');
    expect(d[0]).toBe(0);
  });
});
