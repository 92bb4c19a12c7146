import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ed25519, ed25519_FROST, ed25519ph } from '@noble/curves/ed25519.js';
import { p256, p256_FROST } from '@noble/curves/nist.js';
import { secp256k1_FROST } from '@noble/curves/secp256k1.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { ProtocolError, type Message } from '../../signers/protocols/common.js';
import { fromHex, toHex, type PartyId, type Rng } from '../../contract/bytes.js';
import { publicPackage, type DkgKeyShare } from '../../signers/protocols/dkg.js';
import {
  decodeFrostSignerState,
  encodeFrostSignerState,
  frostAggregate,
  frostCommit,
  frostSign,
  frostSigningContext,
  frostSigningPackage,
  frostVerify,
  type FrostSignerState,
  type SigningPackage,
} from '../../signers/protocols/frost.js';
import { encodePoint, encodeScalar, getGroup, getSuite, type GroupName, type SuiteName } from '../../signers/protocols/suites.js';
import { seededRng } from '../helpers/rng.js';
import { expectProtocolError, runDkg } from '../helpers/protocol.js';


const enc = (s: string) => new TextEncoder().encode(s);

/** One signing session: commit, build the package, sign. Returns what the coordinator holds. */
function prepare(keys: Map<PartyId, DkgKeyShare>, signers: PartyId[], suite: SuiteName, message: Uint8Array, session = 'sign-1') {
  const states = new Map<PartyId, FrostSignerState>();
  const commitments: Message[] = [];
  for (const id of signers) {
    const c = frostCommit(keys.get(id)!, session, seededRng(`${session}/${id}`));
    states.set(id, c.state);
    commitments.push(...c.outbound);
  }
  const pub = publicPackage(keys.get(signers[0]!)!);
  const pkg = frostSigningPackage(pub, { session, suite, message }, signers, commitments);
  const shares = signers.flatMap((id) => frostSign(states.get(id)!, pkg).outbound);
  return { pub, pkg, shares, states, commitments };
}

describe('FROST: RFC 9591 test vectors', () => {
  const files: Array<[string, GroupName]> = [
    ['frost-ed25519-sha512.json', 'ed25519'],
    ['frost-p256-sha256.json', 'p256'],
    ['frost-secp256k1-sha256.json', 'secp256k1'],
  ];
  for (const [file, group] of files) {
    it(file, () => {
      const v = JSON.parse(readFileSync(resolve(process.cwd(), '../shared/vectors/frost', file), 'utf8'));
      const g = getGroup(group);
      const suite = getSuite(group);
      const ids: PartyId[] = v.inputs.participant_shares.map((p: { identifier: number }) => p.identifier);
      const verifyingShares: Record<string, string> = {};
      for (const p of v.inputs.participant_shares) verifyingShares[p.identifier] = encodePoint(g.Point.BASE.multiply(g.Fn.fromBytes(fromHex(p.participant_share))));
      const key = (self: PartyId): DkgKeyShare => ({
        group,
        threshold: Number(v.config.MIN_PARTICIPANTS),
        participants: ids,
        groupPublicKey: v.inputs.group_public_key,
        verifyingShares,
        session: 'rfc9591',
        self,
        secretShare: fromHex(v.inputs.participant_shares.find((p: { identifier: number }) => p.identifier === self).participant_share),
      });
      const message = fromHex(v.inputs.message);
      const signers: PartyId[] = v.inputs.participant_list;
      const states = new Map<PartyId, FrostSignerState>();
      const commitments: Message[] = [];
      for (const r1 of v.round_one_outputs.outputs) {
        const chunks = [fromHex(r1.hiding_nonce_randomness), fromHex(r1.binding_nonce_randomness)];
        const rng: Rng = (n) => {
          const c = chunks.shift()!;
          expect(c.length).toBe(n);
          return c;
        };
        const { state, outbound } = frostCommit(key(r1.identifier), 'vectors', rng);
        if (state.consumed) throw new Error('fresh state is consumed');
        expect(state.nonces).toEqual({ hiding: fromHex(r1.hiding_nonce), binding: fromHex(r1.binding_nonce) });
        expect(outbound[0]!.payload).toEqual({ hiding: r1.hiding_nonce_commitment, binding: r1.binding_nonce_commitment });
        states.set(r1.identifier, state);
        commitments.push(...outbound);
      }
      const pub = publicPackage(key(signers[0]!));
      const pkg = frostSigningPackage(pub, { session: 'vectors', suite: group, message }, signers, commitments);
      const ctx = frostSigningContext(
        suite,
        fromHex(v.inputs.group_public_key),
        pkg.commitments.map((c) => ({ id: c.id, D: fromHex(c.hiding), E: fromHex(c.binding) })),
        message,
      );
      for (const r1 of v.round_one_outputs.outputs) expect(encodeScalar(g, ctx.bindingFactors.get(r1.identifier)!)).toBe(r1.binding_factor);
      const shares = signers.flatMap((id) => frostSign(states.get(id)!, pkg).outbound);
      for (const r2 of v.round_two_outputs.outputs)
        expect(shares.find((m) => m.from === r2.identifier)!.payload).toEqual({ share: r2.sig_share });
      const sig = frostAggregate(pub, pkg, shares);
      expect(toHex(sig)).toBe(v.final_output.sig);
      expect(frostVerify(group, fromHex(v.inputs.group_public_key), message, sig)).toBe(true);
    });
  }
});

/** Independent verifiers: noble (FROST and RFC 8032) and, where it can, node:crypto. */
function verifyElsewhere(suite: SuiteName, pk: Uint8Array, message: Uint8Array, sig: Uint8Array, original?: Uint8Array): void {
  switch (suite) {
    case 'ed25519': {
      expect(ed25519.verify(sig, message, pk, { zip215: false })).toBe(true);
      expect(ed25519_FROST.verify(sig, message, pk)).toBe(true);
      const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(pk).toString('base64url') }, format: 'jwk' });
      expect(nodeVerify(null, message, key, sig)).toBe(true);
      expect(nodeVerify(null, enc('other'), key, sig)).toBe(false);
      break;
    }
    case 'ed25519ph':
      expect(ed25519ph.verify(sig, original!, pk)).toBe(true);
      expect(ed25519.verify(sig, message, pk)).toBe(false);
      break;
    case 'p256': {
      expect(p256_FROST.verify(sig, message, pk)).toBe(true);
      // node:crypto has no Schnorr-over-P-256 verifier; it does confirm the group key is a valid P-256 key.
      const { x, y } = p256.Point.fromBytes(pk).toAffine();
      const b64 = (n: bigint) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex').toString('base64url');
      expect(createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64(x), y: b64(y) }, format: 'jwk' }).asymmetricKeyType).toBe('ec');
      break;
    }
    case 'secp256k1':
      expect(secp256k1_FROST.verify(sig, message, pk)).toBe(true);
      break;
  }
  expect(frostVerify(suite, pk, message, sig)).toBe(true);
  const bad = sig.slice();
  bad[bad.length - 1]! ^= 1;
  expect(frostVerify(suite, pk, message, bad)).toBe(false);
}

describe('FROST: DKG → signing end to end', () => {
  const configs: Array<[number, PartyId[], PartyId[][]]> = [
    [2, [1, 2, 3], [[1, 2], [2, 3], [1, 3], [1, 2, 3]]],
    [3, [1, 2, 3, 4, 5], [[1, 2, 3], [2, 4, 5], [1, 3, 4, 5]]],
    [1, [1], [[1]]],
    [1, [1, 2], [[2]]],
  ];
  const suites: SuiteName[] = ['ed25519', 'ed25519ph', 'secp256k1', 'p256'];
  for (const suite of suites) {
    const group = getSuite(suite).group.name;
    // Ed25519ph differs from Ed25519 only in its challenge: fewer configurations suffice.
    for (const [t, ids, subsets] of suite === 'ed25519ph' ? configs.slice(0, 3).map(([t, ids, s]) => [t, ids, s.slice(0, 2)] as const) : configs) {
      it(`${suite} (${t},${ids.length})`, () => {
        const keys = runDkg(group, t, ids, 'e2e');
        const pk = fromHex(keys.get(ids[0]!)!.groupPublicKey);
        for (const signers of subsets) {
          const original = enc(`pay ${signers.join('+')} 10 coins`);
          const message = suite === 'ed25519ph' ? sha512(original) : original;
          const { pub, pkg, shares } = prepare(keys, signers, suite, message, `s/${signers.join('')}`);
          const sig = frostAggregate(pub, pkg, shares);
          verifyElsewhere(suite, pk, message, sig, original);
        }
      });
    }
  }
});

describe('FROST: agrees with noble', () => {
  it('noble verifies each share and aggregates the same signature (secp256k1, 3-of-5)', () => {
    const keys = runDkg('secp256k1', 3, [1, 2, 3, 4, 5], 'e2e');
    const message = enc('cross-check');
    const { pub, pkg, shares } = prepare(keys, [1, 4, 5], 'secp256k1', message, 'noble');
    const nid = (id: PartyId) => secp256k1_FROST.Identifier.fromNumber(id);
    const noblePub = {
      signers: { min: pub.threshold, max: pub.participants.length },
      commitments: [fromHex(pub.groupPublicKey)],
      verifyingShares: Object.fromEntries(pub.participants.map((id) => [nid(id), fromHex(pub.verifyingShares[id]!)])),
    };
    const list = pkg.commitments.map((c) => ({ identifier: nid(c.id), hiding: fromHex(c.hiding), binding: fromHex(c.binding) }));
    const sigShares = Object.fromEntries(shares.map((m) => [nid(m.from), fromHex((m.payload as { share: string }).share)]));
    for (const m of shares) expect(secp256k1_FROST.verifyShare(noblePub, list, message, nid(m.from), sigShares[nid(m.from)]!)).toBe(true);
    expect(toHex(secp256k1_FROST.aggregate(noblePub, list, message, sigShares))).toBe(toHex(frostAggregate(pub, pkg, shares)));
  });
});

describe('FROST: rejects', () => {
  const keys = runDkg('ed25519', 3, [1, 2, 3, 4, 5], 'e2e');
  const pub = publicPackage(keys.get(1)!);
  const message = enc('transfer');
  const g = getGroup('ed25519');

  it('fewer than t signers, and t−1 shares do not make a signature', () => {
    const { pkg, shares, commitments } = prepare(keys, [1, 2, 3], 'ed25519', message);
    expectProtocolError(() => frostSigningPackage(pub, { session: 'sign-1', suite: 'ed25519', message }, [1, 2], commitments.slice(0, 2)), 'bad-parameters');
    // A coordinator that hands out a (t−1)-signer package gets no shares.
    const fresh = frostCommit(keys.get(1)!, 'short', seededRng('short'));
    const short: SigningPackage = { ...pkg, session: 'short', commitments: [{ id: 1, ...(fresh.outbound[0]!.payload as { hiding: string; binding: string }) }, pkg.commitments[1]!] };
    expectProtocolError(() => frostSign(fresh.state, short), 'bad-parameters');
    // Summing only t−1 of the shares yields something no verifier accepts.
    const ctxR = fromHex(toHex(frostAggregate(pub, pkg, shares)).slice(0, 64));
    const z = shares.slice(0, 2).reduce((acc, m) => g.Fn.add(acc, g.Fn.fromBytes(fromHex((m.payload as { share: string }).share))), 0n);
    const partial = new Uint8Array([...ctxR, ...g.Fn.toBytes(z)]);
    const pk = fromHex(pub.groupPublicKey);
    expect(ed25519.verify(partial, message, pk)).toBe(false);
    expect(frostVerify('ed25519', pk, message, partial)).toBe(false);
    expectProtocolError(() => frostAggregate(pub, pkg, shares.slice(0, 2)), 'missing', 3);
  });

  it('a corrupted signature share, naming its sender', () => {
    const { pkg, shares } = prepare(keys, [2, 4, 5], 'ed25519', message);
    const bump = (m: Message) => ({ ...m, payload: { share: encodeScalar(g, g.Fn.add(g.Fn.fromBytes(fromHex((m.payload as { share: string }).share)), 1n)) } });
    expectProtocolError(() => frostAggregate(pub, pkg, shares.map((m) => (m.from === 4 ? bump(m) : m))), 'bad-partial', 4);
    // A share computed for another message is equally caught.
    const other = prepare(keys, [2, 4, 5], 'ed25519', enc('other'));
    expectProtocolError(() => frostAggregate(pub, pkg, shares.map((m, i) => (m.from === 5 ? other.shares[i]! : m))), 'bad-partial', 5);
    expectProtocolError(() => frostAggregate(pub, pkg, shares.map((m) => (m.from === 2 ? { ...m, payload: { share: 'ff'.repeat(32) } } : m))), 'scalar-range', 2);
    expectProtocolError(() => frostAggregate(pub, pkg, shares.map((m) => (m.from === 2 ? { ...m, payload: { share: '00' } } : m))), 'malformed', 2);
  });

  it('replayed, reordered, duplicated and unknown messages', () => {
    const { pkg, shares, commitments } = prepare(keys, [1, 3, 5], 'ed25519', message, 'sign-A');
    const old = prepare(keys, [1, 3, 5], 'ed25519', message, 'sign-B');
    expectProtocolError(() => frostAggregate(pub, pkg, shares.map((m) => (m.from === 3 ? old.shares[1]! : m))), 'wrong-session', 3);
    expectProtocolError(() => frostAggregate(pub, pkg, [...shares.slice(0, 2), commitments[2]!]), 'wrong-round', 5);
    expectProtocolError(() => frostAggregate(pub, pkg, [...shares, shares[0]!]), 'duplicate', 1);
    expectProtocolError(() => frostAggregate(pub, pkg, [...shares, { ...shares[0]!, from: 2 }]), 'unknown-sender', 2);
    expectProtocolError(() => frostAggregate(pub, pkg, shares.map((m) => (m.from === 5 ? { ...m, to: 3 } : m))), 'wrong-recipient', 5);
    expect(toHex(frostAggregate(pub, pkg, [...shares].reverse()))).toBe(toHex(frostAggregate(pub, pkg, shares)));
    const req = { session: 'sign-A', suite: 'ed25519' as const, message };
    expectProtocolError(() => frostSigningPackage(pub, req, [1, 3, 5], [...commitments.slice(0, 2), shares[2]!]), 'wrong-round', 5);
    expectProtocolError(() => frostSigningPackage(pub, req, [1, 3, 5], [...commitments.slice(0, 2), old.commitments[2]!]), 'wrong-session', 5);
    expectProtocolError(() => frostSigningPackage(pub, req, [1, 3, 7], commitments), 'unknown-sender', 7);
    expectProtocolError(() => frostSigningPackage(pub, req, [1, 3, 3], commitments), 'bad-parameters');
    expectProtocolError(() => frostSigningPackage(pub, req, [0, 1, 3], commitments), 'bad-parameters');
  });

  it('invalid points in commitments', () => {
    const signers = [1, 2, 3];
    const commitments = signers.flatMap((id) => frostCommit(keys.get(id)!, 'pts', seededRng(`pts/${id}`)).outbound);
    const req = { session: 'pts', suite: 'ed25519' as const, message };
    const withPoint = (from: PartyId, hex: string) =>
      commitments.map((m) => (m.from === from ? { ...m, payload: { ...(m.payload as object), binding: hex } } : m));
    expectProtocolError(() => frostSigningPackage(pub, req, signers, withPoint(2, g.Point.ZERO.toHex())), 'invalid-point', 2);
    expectProtocolError(() => frostSigningPackage(pub, req, signers, withPoint(3, '02' + '00'.repeat(31))), 'invalid-point', 3);
    expectProtocolError(() => frostSigningPackage(pub, req, signers, withPoint(3, 'ab')), 'malformed', 3);
  });

  it('bad signing packages at the participant', () => {
    const signers = [1, 2, 3];
    const { pkg, states } = prepare(keys, signers, 'ed25519', message, 'pk-1');
    // prepare() consumed the states; commit afresh for these checks.
    expect(states.get(1)!.consumed).toBe(true);
    const live = () => frostCommit(keys.get(1)!, 'pk-2', seededRng('pk-2'));
    const base = (c = live()): SigningPackage => ({
      ...pkg,
      session: 'pk-2',
      commitments: [{ id: 1, ...(c.outbound[0]!.payload as { hiding: string; binding: string }) }, ...pkg.commitments.slice(1)],
    });
    const c1 = live();
    expectProtocolError(() => frostSign(c1.state, { ...base(c1), session: 'pk-1' }), 'wrong-session');
    expectProtocolError(() => frostSign(c1.state, { ...base(c1), commitments: pkg.commitments }), 'bad-parameters'); // own commitment altered
    expectProtocolError(() => frostSign(c1.state, { ...base(c1), commitments: [2, 3, 4].map((id, i) => ({ ...pkg.commitments[i]!, id })) }), 'bad-parameters'); // not a signer
    expectProtocolError(() => frostSign(c1.state, { ...base(c1), commitments: [...base(c1).commitments, { ...pkg.commitments[1]! }] }), 'bad-parameters'); // duplicate id
    expectProtocolError(() => frostSign(c1.state, { ...base(c1), commitments: [...base(c1).commitments, { ...pkg.commitments[1]!, id: 0 }] }), 'malformed'); // id 0
    expectProtocolError(() => frostSign(c1.state, { ...base(c1), commitments: [...base(c1).commitments, { ...pkg.commitments[1]!, id: 9 }] }), 'unknown-sender', 9);
    expectProtocolError(() => frostSign(c1.state, { ...base(c1), commitments: base(c1).commitments.map((c) => (c.id === 2 ? { ...c, hiding: g.Point.ZERO.toHex() } : c)) }), 'invalid-point', 2);
    expectProtocolError(() => frostSign(c1.state, { ...base(c1), suite: 'p256' }), 'bad-parameters');
    expectProtocolError(() => frostSign(c1.state, { ...base(c1), suite: 'ed25519ph' }), 'bad-parameters'); // not a 64-byte digest
    expectProtocolError(() => frostSign(c1.state, { ...base(c1), message: 'XYZ' }), 'malformed');
    // None of the rejections above used the nonces, so the state still signs once, then never again.
    const ok = frostSign(c1.state, base(c1));
    expect(ok.state.consumed).toBe(true);
    expect(c1.state.consumed).toBe(true);
    expect('nonces' in c1.state).toBe(false);
    expectProtocolError(() => frostSign(c1.state, base(c1)), 'consumed');
    expectProtocolError(() => frostSign(decodeFrostSignerState(encodeFrostSignerState(ok.state)), base(c1)), 'consumed');
  });

  it('signer state survives encode → decode between rounds', () => {
    const signers = [2, 3, 4];
    const commits = signers.map((id) => frostCommit(keys.get(id)!, 'persist', seededRng(`persist/${id}`)));
    const pkg = frostSigningPackage(pub, { session: 'persist', suite: 'ed25519', message }, signers, commits.flatMap((c) => c.outbound));
    const restored = commits.map((c) => decodeFrostSignerState(encodeFrostSignerState(c.state)));
    expect(restored).toEqual(commits.map((c) => c.state));
    const shares = restored.flatMap((s) => frostSign(s, pkg).outbound);
    expect(ed25519.verify(frostAggregate(pub, pkg, shares), message, fromHex(pub.groupPublicKey))).toBe(true);
    expectProtocolError(() => decodeFrostSignerState(enc('{"consumed":false}')), 'malformed');
    expectProtocolError(() => decodeFrostSignerState(enc('not json')), 'malformed');
  });

  it('a tampered public package or key share', () => {
    const { pkg, shares } = prepare(keys, [1, 2, 3], 'ed25519', message, 'tamper');
    const swapped = { ...pub, verifyingShares: { ...pub.verifyingShares, 2: pub.verifyingShares['3']!, 3: pub.verifyingShares['2']! } };
    expect(() => frostAggregate(swapped, pkg, shares)).toThrow(ProtocolError);
    expectProtocolError(() => frostAggregate({ ...pub, groupPublicKey: pub.verifyingShares['1']! }, pkg, shares), 'malformed');
    expectProtocolError(() => frostCommit({ ...keys.get(1)!, secretShare: g.Fn.toBytes(7n) }, 'x', seededRng('x')), 'malformed');
    expectProtocolError(() => frostCommit(keys.get(1)!, '', seededRng('x')), 'bad-parameters');
  });
});
