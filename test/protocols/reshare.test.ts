// Resharing (signers/protocols/reshare.ts): adding and removing holders, changing the threshold
// and refreshing shares, for FROST and threshold ECDSA keys; the new set signs under the unchanged
// public key, old shares are useless with new ones, and every misbehaviour aborts naming its author.
import { decodeSecretful, encodeSecretful } from '../../signers/protocols/common.js';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ed25519 } from '@noble/curves/ed25519.js';
import { inboxOf, runLocally, type Message, type Step } from '../../signers/protocols/common.js';
import { fromHex, type PartyId } from '../../contract/bytes.js';
import { openKeyShare, dkgStart, dkgStep, publicPackage, type DkgKeyShare, type DkgState } from '../../signers/protocols/dkg.js';
import {
  checkEcdsaKeyShare,
  ecdsaCombine,
  ecdsaKeygenStart,
  ecdsaKeygenStep,
  ecdsaSignStart,
  ecdsaSignStep,
  type EcdsaCurveName,
  type EcdsaKeyShare,
  type EcdsaKeygenState,
  type EcdsaSignState,
} from '../../signers/protocols/ecdsa/index.js';
import { getCurve } from '../../signers/protocols/ecdsa/curves.js';
import { frostAggregate, frostCommit, frostSign, frostSigningPackage, frostVerify } from '../../signers/protocols/frost.js';
import {
  decodeReshareState,
  encodeReshareState,
  resharePublicPackage,
  reshareStart,
  reshareStep,
  type ReshareKeyShare,
  type ResharePackage,
  type ReshareParams,
  type ReshareState,
} from '../../signers/protocols/reshare.js';
import { evalPoly, lagrangeAt } from '../../signers/protocols/shamir.js';
import { encodePoint, getGroup, type GroupName } from '../../signers/protocols/suites.js';
import { seededRng } from '../helpers/rng.js';
import { expectProtocolError } from '../helpers/protocol.js';

const range = (n: number): PartyId[] => Array.from({ length: n }, (_, i) => i + 1);
const clone = <T>(v: T): T => decodeSecretful(encodeSecretful(v)) as T;
const tamper = (m: Message, f: (p: Record<string, unknown>) => void): Message => {
  const c = clone(m);
  f(c.payload as Record<string, unknown>);
  return c;
};
const message = new TextEncoder().encode('mpchsm resharing test message');

// ---------------------------------------------------------------------------------------------
// The two schemes, as the tests need them: key generation, signing, and test-only arithmetic.

interface Scheme {
  name: string;
  keygen(n: number, t: number, seed?: string): Map<PartyId, ReshareKeyShare>;
  /** Signs with `signers`' shares and returns whether the signature verifies under `pk`. */
  signs(keys: ReadonlyMap<PartyId, ReshareKeyShare>, signers: PartyId[], session: string): boolean;
  /** Whether the shares (id → secret share) interpolate to the secret key of `pk`. */
  opens(pk: string, shares: ReadonlyMap<PartyId, Uint8Array>): boolean;
  publicKey(k: ReshareKeyShare): string;
  check(k: ReshareKeyShare): void;
}

function frost(group: GroupName): Scheme {
  const g = getGroup(group);
  return {
    name: `FROST ${group}`,
    keygen(n, t, seed = 'dkg') {
      const ids = range(n);
      const first: Step<DkgState, DkgKeyShare>[] = ids.map((self) => dkgStart({ suite: group, session: `dkg-${n}-${t}`, self, participants: ids, threshold: t }, seededRng(`${seed}/${group}/${self}`)));
      return new Map(runLocally(ids, first, (_, s, inbox) => dkgStep(s, inbox)).map((k) => [k.self, k]));
    },
    signs(keys, signers, session) {
      const own = signers.map((id) => keys.get(id) as DkgKeyShare);
      const commits = own.map((k) => frostCommit(k, session, seededRng(`${session}/${k.self}`)));
      const pub = publicPackage(own[0]!);
      const pkg = frostSigningPackage(pub, { session, suite: group, message }, signers, commits.flatMap((c) => c.outbound));
      const sig = frostAggregate(pub, pkg, commits.flatMap((c) => frostSign(c.state, pkg).outbound));
      const pk = fromHex(pub.groupPublicKey);
      return frostVerify(group, pk, message, sig) && (group !== 'ed25519' || ed25519.verify(sig, message, pk));
    },
    opens(pk, shares) {
      const ids = [...shares.keys()];
      const s = ids.reduce((acc, id) => g.Fn.add(acc, g.Fn.mul(lagrangeAt(g.Fn, ids, id), g.Fn.fromBytes(shares.get(id)!))), g.Fn.ZERO);
      return !g.Fn.is0(s) && encodePoint(g.Point.BASE.multiply(s)) === pk;
    },
    publicKey: (k) => (k as DkgKeyShare).groupPublicKey,
    check: (k) => void openKeyShare(k),
  };
}

const hashFor: Record<EcdsaCurveName, string> = { p256: 'sha256', p384: 'sha384', p521: 'sha512', secp256k1: 'sha256' };

function ecdsa(curve: EcdsaCurveName): Scheme {
  const c = getCurve(curve);
  const digest = new Uint8Array(createHash(hashFor[curve]).update(message).digest());
  return {
    name: `ECDSA ${curve}`,
    keygen(n, t) {
      const ids = range(n);
      const rngs = ids.map((id) => seededRng(`kg/${curve}/${n}/${t}/${id}`));
      const first: Step<EcdsaKeygenState, EcdsaKeyShare>[] = ids.map((self, k) => ecdsaKeygenStart({ curve, session: `keygen-${n}-${t}`, self, participants: ids, threshold: t }, rngs[k]!));
      return new Map(runLocally(ids, first, (id, s, inbox) => ecdsaKeygenStep(s, inbox, rngs[id - 1]!)).map((k) => [k.self, k]));
    },
    // As the cluster signs: signers run rounds 1 and 2, the coordinator combines the round-3 broadcasts.
    signs(keys, signers, session) {
      const rngs = signers.map((id) => seededRng(`${session}/${id}`));
      let steps: Step<EcdsaSignState, Uint8Array>[] = signers.map((id, k) => ecdsaSignStart(keys.get(id) as EcdsaKeyShare, { session, signers, digest }, rngs[k]!));
      let all = steps.flatMap((s) => s.outbound);
      while (!all.some((m) => m.round === 3)) {
        steps = signers.map((id, k) => ecdsaSignStep(steps[k]!.state, inboxOf(all, id), rngs[k]!));
        all = steps.flatMap((s) => s.outbound);
      }
      const pk = (keys.get(signers[0]!) as EcdsaKeyShare).publicKey;
      const sig = ecdsaCombine({ curve, publicKey: fromHex(pk), session, signers, digest }, all);
      return c.ecdsa.verify(sig, digest, fromHex(pk), { prehash: false, lowS: false });
    },
    opens(pk, shares) {
      const ids = [...shares.keys()];
      const s = ids.reduce((acc, id) => c.Fn.add(acc, c.Fn.mul(lagrangeAt(c.Fn, ids, id), c.Fn.fromBytes(shares.get(id)!))), 0n);
      return s !== 0n && c.Point.BASE.multiply(s).equals(c.Point.fromBytes(fromHex(pk)));
    },
    publicKey: (k) => (k as EcdsaKeyShare).publicKey,
    check: (k) => void checkEcdsaKeyShare(k),
  };
}

// ---------------------------------------------------------------------------------------------
// Driving a resharing.

interface Run {
  old: ResharePackage;
  keys: ReadonlyMap<PartyId, ReshareKeyShare>;
  dealers: PartyId[];
  participants: PartyId[];
  threshold: number;
  session?: string;
}

const paramsOf = (r: Run, self: PartyId): ReshareParams => ({ session: r.session ?? 'reshare-1', self, old: r.old, dealers: r.dealers, participants: r.participants, threshold: r.threshold });

/** Round 1 of every party (dealers and new holders): each old holder passes its old key share. */
function start(r: Run, seed = 'rs') {
  const parties = [...new Set([...r.dealers, ...r.participants])];
  const rngs = new Map(parties.map((id) => [id, seededRng(`${seed}/${id}`)]));
  const steps = new Map(parties.map((id) => [id, reshareStart(paramsOf(r, id), r.keys.get(id), rngs.get(id)!)]));
  return { rngs, steps, out: [...steps.values()].flatMap((s) => s.outbound) };
}

/**
 * Runs a resharing to the end, persisting every state between rounds as a signer does; `edit`
 * may rewrite what a new holder receives in a round. Returns the new key shares.
 */
function reshare(r: Run, edit?: (round: number, to: PartyId, inbox: Message[]) => Message[], seed = 'rs'): Map<PartyId, ReshareKeyShare> {
  const { rngs, steps, out: first } = start(r, seed);
  for (const [id, s] of steps) expect(s.state.phase).toBe(r.participants.includes(id) ? 'round1' : 'done');
  let states = new Map(r.participants.map((id) => [id, steps.get(id)!.state]));
  let out = first;
  const keys = new Map<PartyId, ReshareKeyShare>();
  for (let round = 1; round <= 2; round++) {
    const next: Message[] = [];
    const after = new Map<PartyId, ReshareState>();
    for (const id of r.participants) {
      const inbox = inboxOf(out, id);
      const step = reshareStep(decodeReshareState(encodeReshareState(states.get(id)!)), edit ? edit(round, id, inbox) : inbox, rngs.get(id)!);
      after.set(id, step.state);
      next.push(...step.outbound);
      if (step.output) keys.set(id, step.output);
    }
    states = after;
    out = next;
  }
  expect([...keys.keys()].sort()).toEqual(r.participants);
  return keys;
}

const secrets = (keys: ReadonlyMap<PartyId, ReshareKeyShare>, ids: PartyId[]) => new Map(ids.map((id) => [id, keys.get(id)!.secretShare]));

// ---------------------------------------------------------------------------------------------

const SCHEMES = [frost('ed25519'), ecdsa('secp256k1'), ecdsa('p256')];

describe.each(SCHEMES)('resharing $name', (S) => {
  const old23 = S.keygen(3, 2);
  const pub23 = resharePublicPackage(old23.get(1)!);
  const pk = S.publicKey(old23.get(1)!);

  /** The new key shares are well-formed, carry the unchanged key and the new set, and every t'-subset signs. */
  function expectWorking(keys: Map<PartyId, ReshareKeyShare>, participants: PartyId[], threshold: number, signerSets: PartyId[][]) {
    // Every new holder reports the same public package (what the caller compares before adopting the change).
    expect(new Set([...keys.values()].map((k) => JSON.stringify(resharePublicPackage(k)))).size).toBe(1);
    for (const k of keys.values()) {
      S.check(k);
      expect(S.publicKey(k)).toBe(pk);
      expect(k.participants).toEqual(participants);
      expect(k.threshold).toBe(threshold);
    }
    for (const [n, signers] of signerSets.entries()) expect(S.signs(keys, signers, `sign-after-${n}-${signers.join('')}`)).toBe(true);
  }

  it('2-of-3 → 2-of-4: a new holder joins and signs with old and new holders', () => {
    const keys = reshare({ old: pub23, keys: old23, dealers: [1, 2], participants: [1, 2, 3, 4], threshold: 2 });
    expectWorking(keys, [1, 2, 3, 4], 2, [[3, 4], [1, 4]]);
    // The old shares are on another polynomial: an old share with a new one opens nothing.
    expect(S.opens(pk, secrets(keys, [1, 2]))).toBe(true);
    expect(S.opens(pk, new Map([[3, old23.get(3)!.secretShare], [4, keys.get(4)!.secretShare]]))).toBe(false);
  });

  it('2-of-3 → 2-of-2: a removed holder deals, and its old share is useless with the new ones', () => {
    const keys = reshare({ old: pub23, keys: old23, dealers: [2, 3], participants: [1, 2], threshold: 2 });
    expectWorking(keys, [1, 2], 2, [[1, 2]]);
    for (const id of [1, 2]) expect(S.opens(pk, new Map([[id, keys.get(id)!.secretShare], [3, old23.get(3)!.secretShare]]))).toBe(false);
    // The new key knows nothing of party 3.
    expect(() => S.signs(new Map([...keys, [3, old23.get(3)!]]), [1, 3], 'sign-with-removed')).toThrow();
  });

  it('3-of-3 → 2-of-3: one holder removed, one added, threshold lowered', () => {
    const old33 = S.keygen(3, 3);
    const pub33 = resharePublicPackage(old33.get(1)!);
    const keys = reshare({ old: pub33, keys: old33, dealers: [1, 2, 3], participants: [1, 2, 4], threshold: 2 });
    const pk33 = S.publicKey(old33.get(1)!);
    for (const k of keys.values()) expect(S.publicKey(k)).toBe(pk33);
    expect(S.signs(keys, [2, 4], 'sign-33-24')).toBe(true);
    expect(S.signs(keys, [1, 4], 'sign-33-14')).toBe(true);
    expect(S.opens(pk33, secrets(keys, [1, 4]))).toBe(true);
    expect(S.opens(pk33, new Map([[3, old33.get(3)!.secretShare], [1, keys.get(1)!.secretShare]]))).toBe(false);
  });

  it('refresh: same set, same threshold, every share new', () => {
    const keys = reshare({ old: pub23, keys: old23, dealers: [1, 3], participants: [1, 2, 3], threshold: 2, session: 'refresh-1' });
    expectWorking(keys, [1, 2, 3], 2, [[1, 2], [2, 3]]);
    for (const id of [1, 2, 3]) {
      expect(keys.get(id)!.secretShare).not.toEqual(old23.get(id)!.secretShare);
      expect(keys.get(id)!.verifyingShares[id]).not.toBe(old23.get(id)!.verifyingShares[id]);
    }
    expect(S.opens(pk, new Map([[1, old23.get(1)!.secretShare], [2, keys.get(2)!.secretShare]]))).toBe(false);
    // The refreshed key reshares again (it is an ordinary key share).
    const again = reshare({ old: resharePublicPackage(keys.get(1)!), keys, dealers: [2, 3], participants: [1, 2, 3], threshold: 2, session: 'refresh-2' });
    expect(S.signs(again, [1, 3], 'sign-refresh-2')).toBe(true);
  });
});

describe('resharing on the other groups', () => {
  it.each([frost('secp256k1'), frost('p256'), ecdsa('p384'), ecdsa('p521')])('$name: 2-of-3 → 3-of-4, then signs', (S) => {
    const old = S.keygen(3, 2);
    const keys = reshare({ old: resharePublicPackage(old.get(1)!), keys: old, dealers: [1, 2, 3], participants: [1, 2, 3, 4], threshold: 3 });
    for (const k of keys.values()) S.check(k);
    expect(S.signs(keys, [2, 3, 4], 'sign-other')).toBe(true);
    expect(S.opens(S.publicKey(old.get(1)!), secrets(keys, [1, 4]))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------

describe('resharing aborts', () => {
  const S = frost('ed25519');
  const old = S.keygen(3, 2);
  const pub = resharePublicPackage(old.get(1)!);
  const add: Run = { old: pub, keys: old, dealers: [1, 2], participants: [1, 2, 3, 4], threshold: 2 };

  /** A dealing from `dealer` that is consistent in itself but shares `secret` instead of λ·s. */
  function forgedDealing(dealer: PartyId, to: PartyId, secret: bigint): Record<string, unknown> {
    const g = getGroup('ed25519');
    const coeffs = [secret, 12345n];
    return { commitment: coeffs.map((a) => encodePoint(g.Point.BASE.multiply(a))), share: g.Fn.toBytes(evalPoly(g.Fn, coeffs, BigInt(to))) };
  }

  it('a dealer resharing another secret (wrong constant term) is named by every new holder', () => {
    const { steps, out } = start(add);
    const forged = out.map((m) => (m.from === 2 ? tamper(m, (p) => void (p.deal = forgedDealing(2, m.to as PartyId, 7n))) : m));
    for (const id of [1, 3, 4]) {
      const e = expectProtocolError(() => reshareStep(steps.get(id)!.state, inboxOf(forged, id), seededRng('x')), 'bad-share', 2);
      expect(e.message).toContain('old share');
    }
  });

  it('a bad evaluation to one holder is named by that holder; the others go on', () => {
    const { steps, out } = start(add);
    const g = getGroup('ed25519');
    const bad = out.map((m) => (m.from === 1 && m.to === 3 ? tamper(m, (p) => void ((p.deal as { share: Uint8Array }).share = g.Fn.toBytes(5n))) : m));
    const e = expectProtocolError(() => reshareStep(steps.get(3)!.state, inboxOf(bad, 3), seededRng('x')), 'bad-share', 1);
    expect(e.message).toContain('commitment');
    for (const id of [2, 4]) expect(reshareStep(steps.get(id)!.state, inboxOf(bad, id), seededRng('x')).state.phase).toBe('round2');
  });

  it('a dealer showing different commitments to different holders is caught by the view check', () => {
    const { steps, out } = start(add);
    // Dealer 1 deals twice (both valid) and sends holder 3 the second dealing.
    const other = reshareStart(paramsOf(add, 1), old.get(1), seededRng('equivocate')).outbound;
    const split = out.map((m) => (m.from === 1 && m.to === 3 ? other.find((o) => o.to === 3)! : m));
    const r1 = new Map([1, 2, 3, 4].map((id) => [id, reshareStep(steps.get(id)!.state, inboxOf(split, id), seededRng(`r1/${id}`))]));
    const all = [...r1.values()].flatMap((s) => s.outbound);
    expectProtocolError(() => reshareStep(r1.get(2)!.state, inboxOf(all, 2), seededRng('x')), 'inconsistent-view', 1);
    expectProtocolError(() => reshareStep(r1.get(3)!.state, inboxOf(all, 3), seededRng('x')), 'inconsistent-view', 1);
    // The dealer itself knows what it sent: holder 3's differing view of it names holder 3.
    expectProtocolError(() => reshareStep(r1.get(1)!.state, inboxOf(all, 1), seededRng('x')), 'inconsistent-view', 3);
  });

  it('fewer dealers than the old threshold, dealers outside the old set, and a dealer without its share are refused', () => {
    expectProtocolError(() => reshareStart({ ...paramsOf(add, 1), dealers: [1] }, old.get(1), seededRng('x')), 'bad-parameters');
    expectProtocolError(() => reshareStart({ ...paramsOf(add, 1), dealers: [1, 4] }, old.get(1), seededRng('x')), 'bad-parameters');
    expectProtocolError(() => reshareStart({ ...paramsOf(add, 1), dealers: [1, 1] }, old.get(1), seededRng('x')), 'bad-parameters');
    expectProtocolError(() => reshareStart(paramsOf(add, 2), undefined, seededRng('x')), 'bad-parameters');
    expectProtocolError(() => reshareStart(paramsOf(add, 5), undefined, seededRng('x')), 'bad-parameters');
    expectProtocolError(() => reshareStart({ ...paramsOf(add, 1), threshold: 5 }, old.get(1), seededRng('x')), 'bad-parameters');
    // Another party's key share, or an old package that is not the key share's.
    expectProtocolError(() => reshareStart(paramsOf(add, 1), old.get(2), seededRng('x')), 'bad-parameters');
    const other = resharePublicPackage(frost('ed25519').keygen(3, 3).get(1)!);
    expectProtocolError(() => reshareStart({ ...paramsOf(add, 1), old: other, dealers: [1, 2, 3] }, old.get(1), seededRng('x')), 'bad-parameters');
  });

  it('a holder told other parameters stops at the first message, naming the sender', () => {
    const { steps, out } = start(add);
    const lied = reshareStart({ ...paramsOf(add, 4), threshold: 3 }, undefined, seededRng('lied')).state;
    expectProtocolError(() => reshareStep(lied, inboxOf(out, 4), seededRng('x')), 'inconsistent-view', 1);
    // A holder new to the key given another key's package (it cannot check it itself): the dealers' digests differ.
    const fake = resharePublicPackage(S.keygen(3, 2, 'other').get(1)!);
    expect(fake).not.toEqual(pub);
    expect(fake.participants).toEqual(pub.participants);
    const fooled = reshareStart({ ...paramsOf(add, 4), old: fake }, undefined, seededRng('fooled')).state;
    expectProtocolError(() => reshareStep(fooled, inboxOf(out, 4), seededRng('x')), 'inconsistent-view', 1);
    // A dealer leaving its dealing out.
    const extra = out.map((m) => (m.from === 1 && m.to === 4 ? tamper(m, (p) => void delete p.deal) : m));
    expectProtocolError(() => reshareStep(steps.get(4)!.state, inboxOf(extra, 4), seededRng('x')), 'malformed', 1);
  });

  it('replayed, duplicated, foreign-session and missing messages are refused by name', () => {
    const { steps, out } = start(add);
    const inbox = inboxOf(out, 3);
    const s3 = steps.get(3)!.state;
    expectProtocolError(() => reshareStep(s3, [...inbox, inbox[0]!], seededRng('x')), 'duplicate', inbox[0]!.from);
    expectProtocolError(() => reshareStep(s3, inbox.slice(1), seededRng('x')), 'missing', inbox[0]!.from);
    expectProtocolError(() => reshareStep(s3, inbox.map((m) => (m.from === 2 ? { ...m, session: 'reshare-other' } : m)), seededRng('x')), 'wrong-session', 2);
    expectProtocolError(() => reshareStep(s3, inbox.map((m) => (m.from === 2 ? { ...m, to: 4 } : m)), seededRng('x')), 'wrong-recipient', 2);
    // Round 1's messages replayed into round 2.
    const r1 = new Map([1, 2, 3, 4].map((id) => [id, reshareStep(steps.get(id)!.state, inboxOf(out, id), seededRng(`r1/${id}`))]));
    const all = [...r1.values()].flatMap((s) => s.outbound);
    expectProtocolError(() => reshareStep(r1.get(3)!.state, [...inboxOf(all, 3).filter((m) => m.from !== 1), inbox.find((m) => m.from === 1)!], seededRng('x')), 'wrong-round', 1);
    // A finished state is consumed.
    const done = reshareStep(r1.get(3)!.state, inboxOf(all, 3), seededRng('x'));
    expect(done.output).toBeDefined();
    expectProtocolError(() => reshareStep(done.state, [], seededRng('x')), 'bad-parameters');
  });

  it('ECDSA: a wrong constant term and a bad pairwise-setup message are named', () => {
    const E = ecdsa('p256');
    const eold = E.keygen(3, 2);
    const run: Run = { old: resharePublicPackage(eold.get(1)!), keys: eold, dealers: [1, 3], participants: [1, 2, 3], threshold: 2 };
    const { steps, out } = start(run);
    const c = getCurve('p256');
    const coeffs = [9n, 10n];
    const forged = out.map((m) =>
      m.from === 3
        ? tamper(m, (p) => void (p.deal = { commitment: coeffs.map((a) => c.Point.BASE.multiply(a).toHex()), share: c.Fn.toBytes(evalPoly(c.Fn, coeffs, BigInt(m.to as number))) }))
        : m,
    );
    expect(expectProtocolError(() => reshareStep(steps.get(2)!.state, inboxOf(forged, 2), seededRng('x')), 'bad-share', 3).message).toContain('old share');
    const badOt = out.map((m) => (m.from === 2 && m.to === 1 ? tamper(m, (p) => void ((p.pair as { ot: { A: string } }).ot.A = '03' + 'ff'.repeat(32))) : m));
    expectProtocolError(() => reshareStep(steps.get(1)!.state, inboxOf(badOt, 1), seededRng('x')), 'invalid-point', 2);
    const noPair = out.map((m) => (m.from === 2 && m.to === 3 ? tamper(m, (p) => void delete p.pair) : m));
    expectProtocolError(() => reshareStep(steps.get(3)!.state, inboxOf(noPair, 3), seededRng('x')), 'malformed', 2);
  });
});
