// Building blocks of threshold ECDSA: base OT, KOS extension, random vector OLE.
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../contract/bytes.js';
import { KAPPA, SEED_BYTES, baseOtReceive, baseOtSenderFinish, baseOtSenderStart } from '../../signers/protocols/ecdsa/baseot.js';
import { getCurve, mulBase, randomScalar, secretMulEquals, type EcdsaCurveName } from '../../signers/protocols/ecdsa/curves.js';
import { KOS_PAD, kosReceive, kosSend } from '../../signers/protocols/ecdsa/kos.js';
import { colBytesFor, rvoleAlice, rvoleBobFinish, rvoleBobStart, xiFor } from '../../signers/protocols/ecdsa/rvole.js';
import { bigIntToBytes, bytesToBigInt } from '../../signers/protocols/integers.js';
import { seededRng } from '../helpers/rng.js';
import { expectProtocolError } from '../helpers/protocol.js';

const ctx = new TextEncoder().encode('test-context');

function setup(seed: string) {
  const rng = seededRng(seed);
  const delta = rng(KAPPA / 8);
  const s = baseOtSenderStart(ctx, rng);
  const r = baseOtReceive(ctx, s.msg, delta, 1, rng);
  const { keys0, keys1 } = baseOtSenderFinish(ctx, s.secret, s.msg, r.B, 2);
  return { rng, delta, keys0, keys1, chosen: r.keys, senderMsg: s.msg, B: r.B, secret: s.secret };
}

const bit = (b: Uint8Array, i: number) => (b[i >> 3]! >> (i & 7)) & 1;


describe('base OT (Simplest OT over P-256)', () => {
  it('gives the receiver exactly the chosen key of each pair', () => {
    const { delta, keys0, keys1, chosen } = setup('base');
    for (let i = 0; i < KAPPA; i++) {
      const slot = (k: Uint8Array) => toHex(k.subarray(i * SEED_BYTES, (i + 1) * SEED_BYTES));
      expect(slot(chosen)).toBe(slot(bit(delta, i) ? keys1 : keys0));
      expect(slot(chosen)).not.toBe(slot(bit(delta, i) ? keys0 : keys1));
    }
  });

  it('rejects a forged proof of knowledge and invalid points, naming the sender', () => {
    const rng = seededRng('base-bad');
    const s = baseOtSenderStart(ctx, rng);
    const forged = { ...s.msg, proof: s.msg.proof.slice(0, -2) + (s.msg.proof.endsWith('00') ? '01' : '00') };
    expectProtocolError(() => baseOtReceive(ctx, forged, rng(16), 7, rng), 'bad-proof', 7);
    // Same proof replayed under another context (another session or pair) does not verify.
    expectProtocolError(() => baseOtReceive(new Uint8Array([1]), s.msg, rng(16), 7, rng), 'bad-proof', 7);
    expectProtocolError(() => baseOtReceive(ctx, { ...s.msg, A: '02' + 'ff'.repeat(32) }, rng(16), 7, rng), 'invalid-point', 7);
    const r = baseOtReceive(ctx, s.msg, rng(16), 7, rng);
    const B = [...r.B];
    B[5] = B[4]!;
    expectProtocolError(() => baseOtSenderFinish(ctx, s.secret, s.msg, B, 9), 'invalid-point', 9);
    expectProtocolError(() => baseOtSenderFinish(ctx, s.secret, s.msg, r.B.slice(1), 9), 'malformed', 9);
  });
});

describe('secret-scalar equality check', () => {
  for (const name of ['secp256k1', 'p256', 'p384', 'p521'] as EcdsaCurveName[]) {
    it(`accepts k·X and rejects −k·X and other points on ${name}, with OpenSSL (where used) and noble`, () => {
      const native = getCurve(name);
      const rng = seededRng(`sme-${name}`);
      for (const c of [native, { ...native, openssl: undefined }]) {
        const k = randomScalar(c, rng);
        const [d, e] = [randomScalar(c, rng), randomScalar(c, rng)];
        const X = mulBase(c, randomScalar(c, rng));
        const Y = mulBase(c, randomScalar(c, rng));
        // Γ chosen so that k·X = d·G + Γ (and k·Y = e·G + Γ').
        const G1 = X.multiply(k).subtract(mulBase(c, d));
        const G2 = Y.multiply(k).subtract(mulBase(c, e));
        expect(secretMulEquals(c, k, [[X, d, G1], [Y, e, G2]], rng)).toBe(true);
        // k·X = −(d·G + Γ'): the x-coordinates agree, the points do not.
        expect(secretMulEquals(c, k, [[X, d, X.multiply(k).negate().subtract(mulBase(c, d))]], rng)).toBe(false);
        expect(secretMulEquals(c, k, [[X, d, G1], [Y, e, G1]], rng)).toBe(false);
        expect(secretMulEquals(c, k, [[X, d, G1], [Y, c.Fn.add(e, 1n), G2]], rng)).toBe(false);
        expect(secretMulEquals(c, k, [[X, d, G1.add(c.Point.BASE)]], rng)).toBe(false);
        expect(secretMulEquals(c, 0n, [[X, d, G1]], rng)).toBe(false);
      }
    });
  }
});

describe('KOS OT extension', () => {
  const colBytes = (416 + KOS_PAD) / 8;
  it('yields q_j = t_j ⊕ x_j·Δ and passes the check for an honest receiver', () => {
    const { rng, delta, keys0, keys1, chosen } = setup('kos');
    const x = rng(colBytes);
    const { msg, rows } = kosReceive(ctx, keys0, keys1, x, rng(16), 416);
    const q = kosSend(ctx, delta, chosen, msg, colBytes, 416, 3);
    for (let j = 0; j < 416; j++) {
      const expected = rows.slice(16 * j, 16 * j + 16).map((b, k) => b ^ (bit(x, j) ? delta[k]! : 0));
      expect(toHex(q.subarray(16 * j, 16 * j + 16))).toBe(toHex(expected));
    }
  });

  it('fails the consistency check when the receiver uses inconsistent choice bits', () => {
    const { rng, delta, keys0, keys1, chosen } = setup('kos-bad');
    const { msg } = kosReceive(ctx, keys0, keys1, rng(colBytes), rng(16), 416);
    // Flip one bit of one column u_i: as if x differed in column i (the selective-abort attack).
    const u = Uint8Array.from(msg.u);
    u[3 * colBytes + 2]! ^= 0x10;
    expectProtocolError(() => kosSend(ctx, delta, chosen, { ...msg, u }, colBytes, 416, 3), 'bad-proof', 3);
    const check = fromHex(msg.check);
    check[0]! ^= 1;
    expectProtocolError(() => kosSend(ctx, delta, chosen, { ...msg, check: toHex(check) }, colBytes, 416, 3), 'bad-proof', 3);
    expectProtocolError(() => kosSend(ctx, delta, chosen, { ...msg, u: msg.u.subarray(1) }, colBytes, 416, 3), 'malformed', 3);
  });
});

describe('random vector OLE (DKLs23 Protocol 5.2)', () => {
  for (const name of ['secp256k1', 'p256', 'p384', 'p521'] as EcdsaCurveName[]) {
    it(`gives additive shares of a·b on ${name}`, () => {
      const c = getCurve(name);
      const { rng, delta, keys0, keys1, chosen } = setup(`vole-${name}`);
      expect(8 * colBytesFor(c)).toBe(xiFor(c) + KOS_PAD);
      const bob = rvoleBobStart(c, ctx, keys0, keys1, rng);
      const a: [bigint, bigint] = [randomScalar(c, rng), randomScalar(c, rng)];
      const alice = rvoleAlice(c, ctx, delta, chosen, bob.msg, a, 2, rng);
      const d = rvoleBobFinish(c, ctx, bob.keep, alice.msg, 1);
      for (const k of [0, 1]) expect(c.Fn.add(alice.shares[k]!, d[k]!)).toBe(c.Fn.mul(a[k]!, bob.b));
    });
  }

  it('catches Alice using a different input in one OT, naming her', () => {
    const c = getCurve('secp256k1');
    const { rng, delta, keys0, keys1, chosen } = setup('vole-cheat');
    const bob = rvoleBobStart(c, ctx, keys0, keys1, rng);
    const alice = rvoleAlice(c, ctx, delta, chosen, bob.msg, [5n, 7n], 2, rng);
    // Shift ã_j[0] for the first OT whose β_j = 1, so Bob's output would be off by g_j.
    const { beta } = bob.keep;
    const j = [...Array(416).keys()].find((k) => bit(beta, k) === 1)!;
    const off = j * 3 * 32;
    const atilde = Uint8Array.from(alice.msg.atilde);
    atilde.set(bigIntToBytes(c.Fn.add(bytesToBigInt(atilde.subarray(off, off + 32)), 1n), 32), off);
    expectProtocolError(() => rvoleBobFinish(c, ctx, bob.keep, { ...alice.msg, atilde }, 1), 'bad-proof', 1);
    // A scalar of ã out of range, and a message cut short, are refused as such.
    const high = Uint8Array.from(alice.msg.atilde);
    high.fill(0xff, 0, 32);
    expectProtocolError(() => rvoleBobFinish(c, ctx, bob.keep, { ...alice.msg, atilde: high }, 1), 'scalar-range', 1);
    expectProtocolError(() => rvoleBobFinish(c, ctx, bob.keep, { ...alice.msg, atilde: alice.msg.atilde.subarray(1) }, 1), 'malformed', 1);
    expectProtocolError(() => rvoleBobFinish(c, ctx, bob.keep, { ...alice.msg, eta: 'ff'.repeat(32) }, 1), 'scalar-range', 1);
  });
});
