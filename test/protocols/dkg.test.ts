import { describe, expect, it } from 'vitest';
import { ED25519_TORSION_SUBGROUP, ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ProtocolError, inboxOf, type Message } from '../../signers/protocols/common.js';
import { type PartyId } from '../../contract/bytes.js';
import {
  openKeyShare,
  decodeDkgState,
  decodeKeyShare,
  dkgStart,
  dkgStep,
  encodeDkgState,
  encodeKeyShare,
  lagrangeAt,
  type DkgKeyShare,
  type DkgState,
} from '../../signers/protocols/dkg.js';
import { getGroup, groupNames, type GroupName } from '../../signers/protocols/suites.js';
import { seededRng } from '../helpers/rng.js';
import { expectProtocolError } from '../helpers/protocol.js';

const SESSION = 'dkg-session-1';

function start(suite: GroupName, t: number, ids: PartyId[], seed = 'seed') {
  const states = new Map<PartyId, DkgState>();
  let out: Message[] = [];
  for (const id of ids) {
    const s = dkgStart({ suite, session: SESSION, self: id, participants: ids, threshold: t }, seededRng(`${seed}/${id}`));
    states.set(id, s.state);
    out = out.concat(s.outbound);
  }
  return { states, out };
}

/** Runs every party to the end (optionally letting `tamper` rewrite a recipient's inbound). */
function runDkg(suite: GroupName, t: number, ids: PartyId[], seed = 'seed', tamper?: (round: number, to: PartyId, msgs: Message[]) => Message[]) {
  let { states, out } = start(suite, t, ids, seed);
  const keys = new Map<PartyId, DkgKeyShare>();
  for (let round = 1; round <= 2; round++) {
    const next: Message[] = [];
    for (const id of ids) {
      const inbound = inboxOf(out, id);
      const step = dkgStep(states.get(id)!, tamper ? tamper(round, id, inbound) : inbound);
      states.set(id, step.state);
      next.push(...step.outbound);
      if (step.output) keys.set(id, step.output);
    }
    out = next;
  }
  return keys;
}


/** Test-only reconstruction of the group secret from t shares. */
function reconstruct(keys: DkgKeyShare[]): bigint {
  const g = getGroup(keys[0]!.group);
  const ids = keys.map((k) => k.self);
  return keys.reduce((acc, k) => {
    const s = g.Fn.fromBytes(k.secretShare);
    return g.Fn.add(acc, g.Fn.mul(s, lagrangeAt(g, ids, k.self)));
  }, g.Fn.ZERO);
}

describe('DKG', () => {
  for (const suite of groupNames) {
    for (const [t, ids] of [
      [2, [1, 2, 3]],
      [3, [1, 2, 3, 4, 5]],
      [1, [1]],
      [2, [4, 9]],
    ] as const) {
      it(`${suite} (${t},${ids.length}) with ids ${ids.join(',')} agrees on one key`, () => {
        const keys = runDkg(suite, t, [...ids]);
        expect(keys.size).toBe(ids.length);
        const all = [...keys.values()];
        for (const k of all) {
          expect(k.groupPublicKey).toBe(all[0]!.groupPublicKey);
          expect(k.verifyingShares).toEqual(all[0]!.verifyingShares);
          expect(k.threshold).toBe(t);
          expect(k.participants).toEqual([...ids]);
          expect(() => openKeyShare(k)).not.toThrow();
        }
        // Any t shares reconstruct the same secret, matching the group key.
        const g = getGroup(suite);
        const pk = g.Point.BASE.multiply(reconstruct(all.slice(0, t))).toBytes();
        expect(Buffer.from(pk).toString('hex')).toBe(all[0]!.groupPublicKey);
        expect(reconstruct(all.slice(-t))).toBe(reconstruct(all.slice(0, t)));
        if (t > 1) expect(g.Point.BASE.multiply(reconstruct(all.slice(0, t - 1))).toBytes()).not.toEqual(pk);
      });
    }
  }

  it('key shares survive encode → decode and reject tampering', () => {
    const k = runDkg('secp256k1', 2, [1, 2, 3]).get(2)!;
    expect(decodeKeyShare(encodeKeyShare(k))).toEqual(k);
    const g = getGroup('secp256k1');
    expectProtocolError(() => openKeyShare({ ...k, secretShare: g.Fn.toBytes(5n) }), 'malformed');
    expectProtocolError(() => openKeyShare({ ...k, verifyingShares: { ...k.verifyingShares, 3: k.verifyingShares['1']! } }), 'malformed', 3);
  });

  it('state survives encode → decode between rounds', () => {
    const ids = [1, 2, 3];
    let { states, out } = start('ed25519', 2, ids);
    const keys: DkgKeyShare[] = [];
    for (let round = 1; round <= 2; round++) {
      const next: Message[] = [];
      for (const id of ids) {
        const restored = decodeDkgState(encodeDkgState(states.get(id)!));
        expect(restored).toEqual(states.get(id));
        const step = dkgStep(restored, inboxOf(out, id));
        states.set(id, step.state);
        next.push(...step.outbound);
        if (step.output) keys.push(step.output);
      }
      out = next;
    }
    expect(new Set(keys.map((k) => k.groupPublicKey)).size).toBe(1);
    expectProtocolError(() => dkgStep(states.get(1)!, []), 'bad-parameters');
    expectProtocolError(() => decodeDkgState(new TextEncoder().encode('{"phase":"round1"}')), 'malformed');
  });

  describe('rejects bad parameters', () => {
    const base = { suite: 'p256' as const, session: SESSION, self: 1, participants: [1, 2, 3], threshold: 2 };
    const rng = seededRng('p');
    it('identifier 0', () => expectProtocolError(() => dkgStart({ ...base, participants: [0, 1, 2] }, rng), 'bad-parameters'));
    it('duplicate identifiers', () => expectProtocolError(() => dkgStart({ ...base, participants: [1, 2, 2] }, rng), 'bad-parameters'));
    it('threshold out of range', () => {
      expectProtocolError(() => dkgStart({ ...base, threshold: 4 }, rng), 'bad-parameters');
      expectProtocolError(() => dkgStart({ ...base, threshold: 0 }, rng), 'bad-parameters');
    });
    it('self not a participant', () => expectProtocolError(() => dkgStart({ ...base, self: 7 }, rng), 'bad-parameters'));
  });

  describe('rejects bad round-1 messages', () => {
    const ids = [1, 2, 3];
    const round1 = (suite: GroupName = 'ed25519') => start(suite, 2, ids);
    const edit = (out: Message[], from: PartyId, f: (p: { commitment: string[]; proof: string }) => object): Message[] =>
      inboxOf(out, 1).map((m) => (m.from === from ? { ...m, payload: f(structuredClone(m.payload) as { commitment: string[]; proof: string }) } : m));

    it('wrong session, wrong round, duplicate, unknown sender, missing', () => {
      const { states, out } = round1();
      const inb = inboxOf(out, 1);
      const s = states.get(1)!;
      expectProtocolError(() => dkgStep(s, inb.map((m) => (m.from === 2 ? { ...m, session: 'other' } : m))), 'wrong-session', 2);
      expectProtocolError(() => dkgStep(s, inb.map((m) => (m.from === 3 ? { ...m, round: 2 } : m))), 'wrong-round', 3);
      expectProtocolError(() => dkgStep(s, [...inb, inb[0]!]), 'duplicate', inb[0]!.from);
      expectProtocolError(() => dkgStep(s, [...inb, { ...inb[0]!, from: 4 }]), 'unknown-sender', 4);
      expectProtocolError(() => dkgStep(s, inb.slice(1)), 'missing', inb[0]!.from);
      expectProtocolError(() => dkgStep(s, inb.map((m) => (m.from === 2 ? { ...m, from: 0 } : m))), 'malformed', 0);
      // Order of arrival does not matter.
      expect(dkgStep(s, [...inb].reverse()).state.phase).toBe('round2');
    });

    it('a round-2 message arriving during round 1 (reordering) is rejected', () => {
      const { states, out } = round1();
      const afterRound1 = dkgStep(states.get(2)!, inboxOf(out, 2));
      const early = afterRound1.outbound.find((m) => m.to === 1)!;
      expectProtocolError(() => dkgStep(states.get(1)!, [inboxOf(out, 1).find((m) => m.from === 3)!, early]), 'wrong-round', 2);
    });

    it('commitment vector longer or shorter than t', () => {
      const { states, out } = round1();
      const s = states.get(1)!;
      expectProtocolError(() => dkgStep(s, edit(out, 2, (p) => ({ ...p, commitment: [...p.commitment, p.commitment[0]!] }))), 'malformed', 2);
      expectProtocolError(() => dkgStep(s, edit(out, 3, (p) => ({ ...p, commitment: p.commitment.slice(0, 1) }))), 'malformed', 3);
      expectProtocolError(() => dkgStep(s, edit(out, 3, (p) => ({ ...p, commitment: [] }))), 'malformed', 3);
    });

    it('points not on the curve, identity, small order, non-canonical', () => {
      const { states, out } = round1();
      const s = states.get(1)!;
      const identity = ed25519.Point.ZERO.toHex();
      const smallOrder = ED25519_TORSION_SUBGROUP[1]!;
      const offCurve = '02' + '00'.repeat(31); // y = 2 has no x on Ed25519
      for (const bad of [identity, smallOrder, offCurve]) {
        expectProtocolError(() => dkgStep(s, edit(out, 2, (p) => ({ ...p, commitment: [p.commitment[0]!, bad] }))), 'invalid-point', 2);
      }
      // y = p + 1 is a non-canonical encoding of y = 1 (the identity's y)
      const nonCanonical = 'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f';
      expectProtocolError(() => dkgStep(s, edit(out, 3, (p) => ({ ...p, commitment: [nonCanonical, p.commitment[1]!] }))), 'invalid-point', 3);
      expectProtocolError(() => dkgStep(s, edit(out, 3, (p) => ({ ...p, commitment: ['zz', p.commitment[1]!] }))), 'malformed', 3);
    });

    it('weierstrass: not on the curve, uncompressed encoding', () => {
      const { states, out } = round1('secp256k1');
      const s = states.get(1)!;
      const offCurve = '02' + '00'.repeat(31) + '05'; // x = 5: x³ + 7 = 132 is not a square mod p
      expectProtocolError(() => dkgStep(s, edit(out, 2, (p) => ({ ...p, commitment: [offCurve, p.commitment[1]!] }))), 'invalid-point', 2);
      const uncompressed = secp256k1.Point.BASE.toHex(false);
      expectProtocolError(() => dkgStep(s, edit(out, 2, (p) => ({ ...p, commitment: [uncompressed, p.commitment[1]!] }))), 'malformed', 2);
    });

    it('proof of knowledge: out-of-range scalar, wrong proof, replay from another session', () => {
      const { states, out } = round1('p256');
      const s = states.get(1)!;
      const L = 2 * 33;
      expectProtocolError(() => dkgStep(s, edit(out, 2, (p) => ({ ...p, proof: p.proof.slice(0, L) + 'ff'.repeat(32) }))), 'scalar-range', 2);
      expectProtocolError(() => dkgStep(s, edit(out, 2, (p) => ({ ...p, proof: p.proof.slice(0, L) + '00'.repeat(31) + '01' }))), 'bad-proof', 2);
      // A valid broadcast from another session (same ids, same threshold) does not verify here.
      const other = dkgStart({ suite: 'p256', session: 'another-session', self: 3, participants: ids, threshold: 2 }, seededRng('x'));
      expectProtocolError(() => dkgStep(s, edit(out, 3, () => other.outbound[0]!.payload as object)), 'bad-proof', 3);
      // Swapping in another party's commitment (rogue key attempt) breaks its proof.
      const p2 = inboxOf(out, 1).find((m) => m.from === 2)!.payload as { commitment: string[] };
      expectProtocolError(() => dkgStep(s, edit(out, 3, (p) => ({ ...p, commitment: p2.commitment }))), 'bad-proof', 3);
    });
  });

  describe('rejects bad round-2 messages', () => {
    const ids = [1, 2, 3];
    const toRound2 = (suite: GroupName = 'secp256k1') => {
      const { states, out } = start(suite, 2, ids);
      const r2: Message[] = [];
      const s2 = new Map<PartyId, DkgState>();
      for (const id of ids) {
        const step = dkgStep(states.get(id)!, inboxOf(out, id));
        s2.set(id, step.state);
        r2.push(...step.outbound);
      }
      return { s: s2.get(1)!, inb: inboxOf(r2, 1), all: r2 };
    };
    type P2 = { share: Uint8Array; views: Record<string, string> };
    const edit = (inb: Message[], from: PartyId, f: (p: P2) => P2) =>
      inb.map((m) => (m.from === from ? { ...m, payload: f(structuredClone(m.payload) as P2) } : m));

    it('envelope checks', () => {
      const { s, inb, all } = toRound2();
      expectProtocolError(() => dkgStep(s, edit(inb, 2, (p) => p).map((m) => (m.from === 2 ? { ...m, to: 'all' as const } : m))), 'wrong-recipient', 2);
      expectProtocolError(() => dkgStep(s, [...inb.filter((m) => m.from !== 3), all.find((m) => m.from === 3 && m.to === 2)!]), 'wrong-recipient', 3);
      expectProtocolError(() => dkgStep(s, inb.map((m) => (m.from === 3 ? { ...m, round: 1 } : m))), 'wrong-round', 3);
      expectProtocolError(() => dkgStep(s, inb.map((m) => (m.from === 3 ? { ...m, session: 'old' } : m))), 'wrong-session', 3);
      expectProtocolError(() => dkgStep(s, [...inb, inb[1]!]), 'duplicate', inb[1]!.from);
    });

    it('share inconsistent with commitments, out of range', () => {
      const { s, inb } = toRound2();
      const g = getGroup('secp256k1');
      expectProtocolError(() => dkgStep(s, edit(inb, 2, (p) => ({ ...p, share: g.Fn.toBytes(12345n) }))), 'bad-share', 2);
      expectProtocolError(() => dkgStep(s, edit(inb, 3, (p) => ({ ...p, share: new Uint8Array(32).fill(0xff) }))), 'scalar-range', 3);
      expectProtocolError(() => dkgStep(s, edit(inb, 3, (p) => ({ ...p, share: Uint8Array.of(0xff) }))), 'malformed', 3);
    });

    it('views: missing, extra, and lies about our own broadcast', () => {
      const { s, inb } = toRound2();
      expectProtocolError(() => dkgStep(s, edit(inb, 2, (p) => ({ ...p, views: { 1: p.views['1']!, 2: p.views['2']! } }))), 'malformed', 2);
      expectProtocolError(() => dkgStep(s, edit(inb, 2, (p) => ({ ...p, views: { ...p.views, 4: p.views['1']! } }))), 'malformed', 2);
      expectProtocolError(() => dkgStep(s, edit(inb, 3, (p) => ({ ...p, views: { ...p.views, 1: p.views['2']! } }))), 'inconsistent-view', 3);
    });
  });

  it('catches a party that equivocates its round-1 broadcast', () => {
    const ids = [1, 2, 3];
    // Party 3 runs a second, fully valid round 1 and shows it only to party 2.
    const alt = dkgStart({ suite: 'ed25519', session: SESSION, self: 3, participants: ids, threshold: 2 }, seededRng('equivocate'));
    const tamper = (round: number, to: PartyId, msgs: Message[]) =>
      round === 1 && to === 2 ? msgs.map((m) => (m.from === 3 ? alt.outbound[0]! : m)) : msgs;
    try {
      runDkg('ed25519', 2, ids, 'seed', tamper);
      expect.fail('equivocation not detected');
    } catch (e) {
      expect(e).toBeInstanceOf(ProtocolError);
      expect((e as ProtocolError).code).toBe('inconsistent-view');
      expect((e as ProtocolError).sender).toBe(3);
    }
  });
});
