// Threshold ECDSA (DKLs23): key generation, signing across curves, thresholds and signer subsets,
// verification by independent implementations, and the aborts the protocol must raise.
import { decodeSecretful, encodeSecretful } from '../../signers/protocols/common.js';
import { createHash, createPublicKey, getCurves, verify as nodeVerify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ProtocolError, inboxOf, runLocally, type Message, type Step } from '../../signers/protocols/common.js';
import { fromHex, toHex, type PartyId } from '../../contract/bytes.js';
import {
  checkEcdsaKeyShare,
  decodeEcdsaKeyShare,
  decodeEcdsaKeygenState,
  decodeEcdsaSignState,
  ecdsaAfterAbort,
  ecdsaCombine,
  ecdsaDerToRaw,
  ecdsaKeygenStart,
  ecdsaKeygenStep,
  ecdsaRawToDer,
  ecdsaSignStart,
  ecdsaSignStep,
  ecdsaVerify,
  encodeEcdsaKeyShare,
  encodeEcdsaKeygenState,
  encodeEcdsaSignState,
  type EcdsaCurveName,
  type EcdsaKeyShare,
  type EcdsaKeygenState,
  type EcdsaSignState,
} from '../../signers/protocols/ecdsa/index.js';
import { p256, p521 } from '@noble/curves/nist.js';
import { getCurve } from '../../signers/protocols/ecdsa/curves.js';
import { digestToScalar } from '../../signers/protocols/ecdsa/signature.js';
import { seededRng } from '../helpers/rng.js';
import { expectProtocolError } from '../helpers/protocol.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
/** Round-trips a value through its encoding, as persisting a state between rounds does (secrets as bytes). */
const persist = <T>(v: T): T => decodeSecretful(encodeSecretful(v)) as T;

function keygen(curve: EcdsaCurveName, n: number, t: number, seed = 'kg'): EcdsaKeyShare[] {
  const ids = range(n);
  const rng = new Map(ids.map((id) => [id, seededRng(`${seed}/${curve}/${n}/${t}/${id}`)]));
  const first: Step<EcdsaKeygenState, EcdsaKeyShare>[] = ids.map((id) => ecdsaKeygenStart({ curve, session: `keygen-${seed}`, self: id, participants: ids, threshold: t }, rng.get(id)!));
  // Persist every state between rounds, as a signer does.
  const shares = runLocally(ids, first, (id, s, inbox) => ecdsaKeygenStep(decodeEcdsaKeygenState(encodeEcdsaKeygenState(s)), inbox, rng.get(id)!));
  return shares.map((s) => decodeEcdsaKeyShare(encodeEcdsaKeyShare(s)));
}

interface SignRun {
  sigs: Uint8Array[];
  round3: Message[];
}

function sign(shares: readonly EcdsaKeyShare[], signers: PartyId[], digest: Uint8Array, session = 'sign-1', lowS = false): SignRun {
  const byId = new Map(shares.map((s) => [s.self, s]));
  const rng = new Map(signers.map((id) => [id, seededRng(`${session}/${id}`)]));
  let steps: Step<EcdsaSignState, Uint8Array>[] = signers.map((id) => ecdsaSignStart(byId.get(id)!, { session, signers, digest, lowS }, rng.get(id)!));
  let round3: Message[] = [];
  for (;;) {
    const all = steps.flatMap((s) => s.outbound);
    if (all.some((m) => m.round === 3)) round3 = all;
    steps = signers.map((id, k) => ecdsaSignStep(decodeEcdsaSignState(encodeEcdsaSignState(steps[k]!.state)), inboxOf(all, id), rng.get(id)!));
    if (steps.every((s) => s.output)) return { sigs: steps.map((s) => s.output!), round3 };
  }
}

const nodeCurve: Record<EcdsaCurveName, string> = { p256: 'P-256', p384: 'P-384', p521: 'P-521', secp256k1: 'secp256k1' };
const hashFor: Record<EcdsaCurveName, string> = { p256: 'sha256', p384: 'sha384', p521: 'sha512', secp256k1: 'sha256' };

/** Verifies with node:crypto (OpenSSL) over the message itself, from the DER encoding. */
function opensslVerifies(curve: EcdsaCurveName, publicKey: string, message: Uint8Array, raw: Uint8Array): boolean {
  const c = getCurve(curve);
  const P = c.Point.fromBytes(fromHex(publicKey)).toAffine();
  const b64 = (v: bigint) => Buffer.from(v.toString(16).padStart(2 * c.scalarLength, '0'), 'hex').toString('base64url');
  const key = createPublicKey({ key: { kty: 'EC', crv: nodeCurve[curve], x: b64(P.x), y: b64(P.y) }, format: 'jwk' });
  return nodeVerify(hashFor[curve], message, key, Buffer.from(ecdsaRawToDer(curve, raw)));
}

/** OpenSSL builds may lack secp256k1; P-256, P-384 and P-521 are always there. */
const opensslHas = (curve: EcdsaCurveName) => curve !== 'secp256k1' || getCurves().includes('secp256k1');

const nobleVerifies = (curve: EcdsaCurveName, publicKey: string, digest: Uint8Array, raw: Uint8Array, lowS = false) =>
  getCurve(curve).ecdsa.verify(raw, digest, fromHex(publicKey), { prehash: false, lowS });

const message = new TextEncoder().encode('mpchsm threshold ECDSA test message');
const digestOf = (curve: EcdsaCurveName, m = message) => new Uint8Array(createHash(hashFor[curve]).update(m).digest());


describe('DKLs23 threshold ECDSA', () => {
  for (const curve of ['secp256k1', 'p256', 'p384', 'p521'] as EcdsaCurveName[]) {
    it(`2-of-3 on ${curve}: every signer pair signs, verified by OpenSSL and noble`, () => {
      const shares = keygen(curve, 3, 2);
      const pk = shares[0]!.publicKey;
      expect(shares.every((s) => s.publicKey === pk)).toBe(true);
      const digest = digestOf(curve);
      for (const signers of [[1, 2], [2, 3], [3, 1]]) {
        const { sigs, round3 } = sign(shares, signers, digest, `s-${signers.join('')}`);
        for (const sig of sigs) expect(toHex(sig)).toBe(toHex(sigs[0]!));
        const sig = sigs[0]!;
        expect(nobleVerifies(curve, pk, digest, sig)).toBe(true);
        if (opensslHas(curve)) expect(opensslVerifies(curve, pk, message, sig)).toBe(true);
        expect(nobleVerifies(curve, pk, digestOf(curve, new Uint8Array([1])), sig)).toBe(false);
        // The coordinator's combine gives the same signature from the round-3 broadcasts.
        const combined = ecdsaCombine({ curve, publicKey: fromHex(pk), session: `s-${signers.join('')}`, signers, digest }, round3);
        expect(toHex(combined)).toBe(toHex(sig));
        expect(toHex(ecdsaDerToRaw(curve, ecdsaRawToDer(curve, sig)))).toBe(toHex(sig));
      }
    });
  }

  it('secp256k1 2-of-2: high-s and, on request, low-s signatures', () => {
    const shares = keygen('secp256k1', 2, 2);
    const pk = shares[0]!.publicKey;
    let sawHigh = false;
    for (let k = 0; k < 4; k++) {
      const digest = digestOf('secp256k1', new Uint8Array([k]));
      const high = sign(shares, [1, 2], digest, `hs-${k}`).sigs[0]!;
      const low = sign(shares, [1, 2], digest, `ls-${k}`, true).sigs[0]!;
      const n = getCurve('secp256k1').n;
      expect(BigInt('0x' + toHex(low.subarray(32)))).toBeLessThanOrEqual(n >> 1n);
      sawHigh ||= BigInt('0x' + toHex(high.subarray(32))) > n >> 1n;
      expect(nobleVerifies('secp256k1', pk, digest, low, true)).toBe(true);
      expect(nobleVerifies('secp256k1', pk, digest, high, false)).toBe(true);
      if (opensslHas('secp256k1')) expect(opensslVerifies('secp256k1', pk, new Uint8Array([k]), high)).toBe(true);
    }
    expect(sawHigh).toBe(true);
  });

  it('3-of-5 on P-256 with threshold and larger signer sets', () => {
    const shares = keygen('p256', 5, 3);
    const pk = shares[0]!.publicKey;
    const digest = digestOf('p256');
    for (const signers of [[1, 3, 5], [2, 3, 4, 5]]) {
      const sig = sign(shares, signers, digest, `s35-${signers.join('')}`).sigs[0]!;
      expect(opensslVerifies('p256', pk, message, sig)).toBe(true);
    }
    expectProtocolError(() => ecdsaSignStart(shares[0]!, { session: 'x', signers: [1, 2], digest }, seededRng('x')), 'bad-parameters');
  });

  it('1-of-1 and 2-of-2', () => {
    const one = keygen('secp256k1', 1, 1);
    const d = digestOf('secp256k1');
    expect(nobleVerifies('secp256k1', one[0]!.publicKey, d, sign(one, [1], d).sigs[0]!)).toBe(true);
    const two = keygen('p384', 2, 2);
    expect(opensslVerifies('p384', two[0]!.publicKey, message, sign(two, [1, 2], digestOf('p384')).sigs[0]!)).toBe(true);
  });
});

describe('DKLs23 on P-521 (66-byte scalars, a 521-bit order)', () => {
  const shares = keygen('p521', 3, 2, 'p521');
  const pk = shares[0]!.publicKey;
  const jwkXY = (hex: string) => {
    const P = p521.Point.fromBytes(fromHex(hex)).toAffine();
    const b64 = (v: bigint) => Buffer.from(v.toString(16).padStart(132, '0'), 'hex').toString('base64url');
    return { x: b64(P.x), y: b64(P.y) };
  };
  /** @noble/curves' own P-521, not through curves.ts: an independent verifier of the raw r‖s. */
  const nobleP521 = (digest: Uint8Array, sig: Uint8Array) => p521.verify(sig, digest, fromHex(pk), { prehash: false, lowS: false });

  it('signs SHA-512, shorter and longer digests as ECDSA specifies (bits2int), checked by noble and OpenSSL', () => {
    const c = getCurve('p521');
    expect([c.scalarLength, c.pointLength, c.orderBits]).toEqual([66, 67, 521]);
    const sha512 = digestOf('p521');
    // 512 bits < 521: bits2int keeps the whole SHA-512 digest, no truncation.
    expect(digestToScalar(c, sha512)).toBe(BigInt('0x' + toHex(sha512)));
    // A longer input keeps its leftmost 521 bits (the protocol itself takes digests of at most 64 bytes).
    expect(digestToScalar(c, new Uint8Array(66).fill(0xff))).toBe(((1n << 521n) - 1n) % c.n);
    expectProtocolError(() => ecdsaSignStart(shares[0]!, { session: 'p521-long', signers: [1, 2], digest: new Uint8Array(65) }, seededRng('x')), 'bad-parameters');
    const sha256 = new Uint8Array(createHash('sha256').update(message).digest());
    // SHA-256 zero-padded to 64 bytes is the same integer: what CKM_ECDSA hands the cluster.
    const padded = new Uint8Array([...new Uint8Array(32), ...sha256]);
    for (const [name, digest] of [['sha512', sha512], ['sha256', sha256], ['padded', padded]] as const) {
      const { sigs } = sign(shares, [1, 3], digest, `p521-${name}`);
      const sig = sigs[0]!;
      expect(sig.length).toBe(132);
      expect(nobleP521(digest, sig)).toBe(true);
      expect(nobleP521(digest.map((b, i) => (i === digest.length - 1 ? b ^ 1 : b)), sig)).toBe(false);
      // OpenSSL, over the message: SHA-512, or SHA-256 whether padded or not.
      expect(opensslVerifies('p521', pk, message, sig)).toBe(name === 'sha512');
      if (name !== 'sha512') expect(nodeVerify('sha256', message, createPublicKey({ key: { kty: 'EC', crv: 'P-521', ...jwkXY(pk) }, format: 'jwk' }), Buffer.from(ecdsaRawToDer('p521', sig)))).toBe(true);
      expect(toHex(ecdsaDerToRaw('p521', ecdsaRawToDer('p521', sig)))).toBe(toHex(sig));
    }
    expect(new Set(shares.map((s) => s.publicKey)).size).toBe(1);
  });

  it('rejects out-of-range 66-byte scalars and a short multiplication message, naming the sender', () => {
    const signers = [1, 2];
    const digest = digestOf('p521');
    const s1 = ecdsaSignStart(shares[0]!, { session: 'p521-neg', signers, digest }, seededRng('p521-neg/1'));
    const s2 = ecdsaSignStart(shares[1]!, { session: 'p521-neg', signers, digest }, seededRng('p521-neg/2'));
    const a = ecdsaSignStep(s1.state, s2.outbound, seededRng('a'));
    const b = ecdsaSignStep(s2.state, s1.outbound, seededRng('b'));
    const m = b.outbound[0]!;
    const with_ = (patch: Record<string, unknown>): Message => ({ ...m, payload: { ...(m.payload as Record<string, unknown>), ...patch } });
    const mul = (m.payload as { mul: Record<string, string> }).mul;
    // 2^528 − 1 fits the 66 bytes but not the field; so does n itself.
    expectProtocolError(() => ecdsaSignStep(persist(a.state), [with_({ psi: 'ff'.repeat(66) })], seededRng('c')), 'scalar-range', 2);
    expectProtocolError(() => ecdsaSignStep(persist(a.state), [with_({ mul: { ...mul, eta: getCurve('p521').n.toString(16).padStart(132, '0') } })], seededRng('c')), 'scalar-range', 2);
    expectProtocolError(() => ecdsaSignStep(persist(a.state), [with_({ psi: 'ff'.repeat(48) })], seededRng('c')), 'malformed', 2);
    expectProtocolError(() => ecdsaSignStep(persist(a.state), [with_({ mul: { ...mul, atilde: mul.atilde!.slice(132) } })], seededRng('c')), 'malformed', 2);
    // Untampered, the same round completes.
    expect(ecdsaSignStep(a.state, [m], seededRng('c')).outbound[0]!.round).toBe(3);
  });
});

describe('DKLs23 aborts', () => {
  const shares = keygen('secp256k1', 3, 2, 'neg');
  const digest = digestOf('secp256k1');
  const signers = [1, 2];

  /** Runs round 1 for signers 1 and 2 and returns their states and messages. */
  function round1(session: string) {
    const s1 = ecdsaSignStart(shares[0]!, { session, signers, digest }, seededRng(`${session}/1`));
    const s2 = ecdsaSignStart(shares[1]!, { session, signers, digest }, seededRng(`${session}/2`));
    return { s1, s2 };
  }
  const tamper = (m: Message, f: (p: Record<string, unknown>) => void): Message => {
    const p = persist(m.payload) as Record<string, unknown>;
    f(p);
    return { ...m, payload: p };
  };

  it('an inconsistent OT-extension message fails the KOS check, names the sender, and discards the pair', () => {
    const { s1, s2 } = round1('neg-kos');
    const bad = tamper(s2.outbound[0]!, (p) => {
      (p.ot as { u: Uint8Array }).u[100]! ^= 4;
    });
    const err = expectProtocolError(() => ecdsaSignStep(s1.state, [bad], seededRng('r')), 'bad-proof', 2);
    expect(err.message).toMatch(/OT extension consistency/);
    // The state was consumed by the failed step: abort is final.
    expectProtocolError(() => ecdsaSignStep(s1.state, [s2.outbound[0]!], seededRng('r')), 'consumed');
    const after = ecdsaAfterAbort(shares[0]!, err);
    expect(after.pairs['2']).toEqual({ discarded: true });
    expect(checkEcdsaKeyShare(persist(after)).pairs['3']!.discarded).toBe(false);
    expectProtocolError(() => ecdsaSignStart(after, { session: 'again', signers, digest }, seededRng('a')), 'bad-parameters', 2);
    // Signing with the other peer still works.
    expect(sign([after, shares[2]!], [1, 3], digest, 'after-abort').sigs[0]!.length).toBe(64);
    // Delivery faults do not discard anything.
    expect(ecdsaAfterAbort(shares[0]!, new ProtocolError('missing', 'late', 2))).toBe(shares[0]);
  });

  it('a wrong commitment opening aborts naming the sender', () => {
    const { s1, s2 } = round1('neg-commit');
    const a = ecdsaSignStep(s1.state, s2.outbound, seededRng('a'));
    const b = ecdsaSignStep(s2.state, s1.outbound, seededRng('b'));
    const other = ecdsaSignStart(shares[1]!, { session: 'neg-commit', signers, digest }, seededRng('other'));
    const otherR = ecdsaSignStep(other.state, s1.outbound, seededRng('c')).outbound[0]!;
    // Party 2 opens with an R (and salt) other than the one it committed to.
    const bad = tamper(b.outbound[0]!, (p) => {
      p.R = (otherR.payload as { R: string }).R;
      p.salt = (otherR.payload as { salt: string }).salt;
    });
    const err = expectProtocolError(() => ecdsaSignStep(a.state, [bad], seededRng('d')), 'bad-proof', 2);
    expect(err.message).toMatch(/commitment/);
    expect(ecdsaAfterAbort(shares[0]!, err).pairs['2']!.discarded).toBe(true);
  });

  it('an invalid point, a bad multiplication answer, a wrong Γ or a diverging view abort naming the sender', () => {
    const { s1, s2 } = round1('neg-point');
    const a = ecdsaSignStep(s1.state, s2.outbound, seededRng('a'));
    const b = ecdsaSignStep(s2.state, s1.outbound, seededRng('b'));
    const cases: [(p: Record<string, unknown>) => void, string][] = [
      [(p) => void (p.pk = '04' + '11'.repeat(64)), 'invalid-point'],
      [(p) => void (p.R = '04' + '00'.repeat(64)), 'invalid-point'],
      [(p) => void (p.gammaU = p.gammaV), 'bad-proof'],
      // A pk_j other than the sk_j party 2 fed into the multiplication fails the Γ^v check.
      [(p) => void (p.pk = p.R), 'bad-proof'],
      [(p) => void ((p.mul as { mu: string }).mu = '00'.repeat(32)), 'bad-proof'],
      [(p) => void (p.view = '00'.repeat(32)), 'inconsistent-view'],
    ];
    for (const [f, code] of cases) {
      const state = persist(a.state) as EcdsaSignState;
      expectProtocolError(() => ecdsaSignStep(state, [tamper(b.outbound[0]!, f)], seededRng('c')), code, 2);
    }
  });

  it('signers told different digests or signer sets stop in round 1, without discarding a pair', () => {
    const { s1 } = round1('neg-agree');
    const otherDigest = ecdsaSignStart(shares[1]!, { session: 'neg-agree', signers, digest: digestOf('secp256k1', new Uint8Array([9])) }, seededRng('o'));
    const err = expectProtocolError(() => ecdsaSignStep(persist(s1.state), otherDigest.outbound, seededRng('e')), 'inconsistent-view', 2);
    expect(ecdsaAfterAbort(shares[0]!, err)).toBe(shares[0]);
    const otherSet = ecdsaSignStart(shares[1]!, { session: 'neg-agree', signers: [1, 2, 3], digest }, seededRng('o'));
    const toOne = otherSet.outbound.filter((m) => m.to === 1);
    expectProtocolError(() => ecdsaSignStep(persist(s1.state), toOne, seededRng('e')), 'inconsistent-view', 2);
  });

  it('replayed, foreign-session and missing messages are rejected by name without consuming the state', () => {
    const { s1, s2 } = round1('neg-replay');
    const old = round1('neg-old');
    expectProtocolError(() => ecdsaSignStep(s1.state, old.s2.outbound, seededRng('a')), 'wrong-session', 2);
    expectProtocolError(() => ecdsaSignStep(s1.state, [...s2.outbound, ...s2.outbound], seededRng('a')), 'duplicate', 2);
    expectProtocolError(() => ecdsaSignStep(s1.state, [], seededRng('a')), 'missing', 2);
    const a = ecdsaSignStep(s1.state, s2.outbound, seededRng('a'));
    // Replaying round 1 into round 2.
    expectProtocolError(() => ecdsaSignStep(a.state, s2.outbound, seededRng('a')), 'wrong-round', 2);
  });

  it('a signing state cannot be used twice, and t−1 parties cannot sign', () => {
    const { s1, s2 } = round1('neg-reuse');
    const copy = persist(s1.state);
    ecdsaSignStep(s1.state, s2.outbound, seededRng('a'));
    expect(s1.state.phase).toBe('consumed');
    expect(JSON.stringify(s1.state)).not.toMatch(/"r"|"phi"|"sk"/);
    expectProtocolError(() => ecdsaSignStep(s1.state, s2.outbound, seededRng('a')), 'consumed');
    expectProtocolError(() => ecdsaSignStep(decodeEcdsaSignState(encodeEcdsaSignState(s1.state)), s2.outbound, seededRng('a')), 'consumed');
    expect(copy.phase).toBe('round1');
    // Fewer than t signers are refused; and a key share claiming a lower threshold is rejected.
    expectProtocolError(() => ecdsaSignStart(shares[0]!, { session: 's', signers: [1], digest }, seededRng('x')), 'bad-parameters');
    expectProtocolError(() => checkEcdsaKeyShare({ ...shares[0]!, threshold: 1 }), 'malformed');
  });

  it('t−1 signers cannot sign even with key shares edited to a lower threshold', () => {
    const big = keygen('p256', 4, 3, 'tminus1');
    const forged = big.slice(0, 2).map((k) => ({ ...k, threshold: 2 }));
    const d = digestOf('p256');
    // The edited shares fail the full key-share check...
    expectProtocolError(() => checkEcdsaKeyShare(forged[0]), 'malformed');
    // ...and a run with them aborts before round 3: the additive shares do not sum to the key.
    expectProtocolError(() => sign(forged, [1, 2], d, 'tminus1'), 'bad-share');
  });

  it('the coordinator rejects a bad partial or a diverging R', () => {
    const { round3 } = sign(shares, signers, digest, 'neg-combine');
    const req = { curve: 'secp256k1' as const, publicKey: fromHex(shares[0]!.publicKey), session: 'neg-combine', signers, digest };
    expect(ecdsaCombine(req, round3).length).toBe(64);
    const badW = round3.map((m) => (m.from === 2 ? tamper(m, (p) => void (p.w = '00'.repeat(31) + '05')) : m));
    expectProtocolError(() => ecdsaCombine(req, badW), 'bad-partial');
    const other = sign(shares, signers, digest, 'neg-combine-2').round3.find((m) => m.from === 2)!;
    const badR = round3.map((m) => (m.from === 2 ? tamper(m, (p) => void (p.R = (other.payload as { R: string }).R)) : m));
    expectProtocolError(() => ecdsaCombine(req, badR), 'inconsistent-view', 2);
    expectProtocolError(() => ecdsaCombine({ ...req, digest: digestOf('secp256k1', new Uint8Array([1])) }, round3), 'bad-partial');
  });

  it('key generation names a party whose share or proof is bad', () => {
    const ids = [1, 2, 3];
    const rngs = ids.map((id) => seededRng(`kgneg/${id}`));
    const starts = ids.map((id, k) => ecdsaKeygenStart({ curve: 'p256', session: 'kg-neg', self: id, participants: ids, threshold: 2 }, rngs[k]!));
    const all1 = starts.flatMap((s) => s.outbound);
    const forged = all1.map((m) => (m.from === 3 && m.to === 1 ? tamper(m, (p) => void (p.proof = (p.proof as string).slice(0, -2) + '00')) : m));
    expectProtocolError(() => ecdsaKeygenStep(persist(starts[0]!.state), inboxOf(forged, 1), rngs[0]!), 'bad-proof', 3);
    const badOt = all1.map((m) => (m.from === 2 && m.to === 1 ? tamper(m, (p) => void ((p.ot as { A: string }).A = '03' + 'ff'.repeat(32))) : m));
    expectProtocolError(() => ecdsaKeygenStep(persist(starts[0]!.state), inboxOf(badOt, 1), rngs[0]!), 'invalid-point', 2);
    const r2 = ids.map((id, k) => ecdsaKeygenStep(starts[k]!.state, inboxOf(all1, id), rngs[k]!));
    const all2 = r2.flatMap((s) => s.outbound).map((m) => (m.from === 2 && m.to === 1 ? tamper(m, (p) => void (p.share = Uint8Array.of(...new Uint8Array(31), 1))) : m));
    expectProtocolError(() => ecdsaKeygenStep(r2[0]!.state, inboxOf(all2, 1), rngs[0]!), 'bad-share', 2);
  });
});

describe('ECDSA verification, remembered by its exact inputs', () => {
  it('a signature verified true is true again; a changed byte, another digest or the low-s rule still fail', () => {
    const secret = p256.utils.randomSecretKey();
    const publicKey = p256.getPublicKey(secret, true);
    const digest = createHash('sha256').update('remembered').digest();
    // A high-s signature: valid, but not under the low-s rule.
    let sig = p256.sign(digest, secret, { prehash: false, lowS: false });
    const n = getCurve('p256').n;
    const s = BigInt(`0x${toHex(sig.subarray(32))}`);
    if (s <= n >> 1n) sig = Uint8Array.from([...sig.subarray(0, 32), ...fromHex((n - s).toString(16).padStart(64, '0'))]);
    expect(ecdsaVerify('p256', publicKey, digest, sig)).toBe(true);
    expect(ecdsaVerify('p256', publicKey, digest, sig)).toBe(true);
    expect(ecdsaVerify('p256', publicKey, digest, sig, true)).toBe(false);
    const flipped = sig.slice();
    flipped[40]! ^= 1;
    expect(ecdsaVerify('p256', publicKey, digest, flipped)).toBe(false);
    expect(ecdsaVerify('p256', publicKey, createHash('sha256').update('other').digest(), sig)).toBe(false);
    expect(ecdsaVerify('p256', p256.getPublicKey(p256.utils.randomSecretKey(), true), digest, sig)).toBe(false);
  });
});
