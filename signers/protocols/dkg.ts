// Distributed key generation: Pedersen DKG with Feldman VSS and Schnorr proofs of possession
// (the FROST paper's KeyGen, as frost-rs and RFC 9591 implementations run it), plus an echo
// of every party's view of the round-1 broadcasts so equivocation is caught.
//
//   round 1, broadcast:  commitments C_i = [a_i0·G .. a_i(t-1)·G] and a proof of knowledge of a_i0
//                        bound to this session (stops rogue-key and cross-session replay)
//   round 2, to each k:  f_i(k) — MUST travel encrypted end to end (signers/node does that) —
//                        plus a digest per sender of the round-1 broadcasts i received
//   output:              s_i = Σ_j f_j(i), group key Σ_j C_j0, every party's verifying share
//
// No party ever holds the group secret: each sees only its own polynomial and one evaluation of
// everyone else's. noble's FROST DKG is not used because it requires t ≥ 2, cannot bind a
// session, and throws errors that do not say which party misbehaved.

import { z } from 'zod';
import {
  ProtocolError,
  checkParticipants,
  checkViews,
  collectRound,
  decodeState,
  encodeState,
  messageSchema,
  secretBytesSchema,
  sortIds,
  wipeSecrets,
  type Message,
  type Step,
} from './common.js';
import { memoized } from '../../contract/memo.js';
import {
  hexSchema,
  partyIdSchema,
  toHex,
  type PartyId,
  type Rng,
} from '../../contract/bytes.js';
import {
  decodePoint,
  decodeScalar,
  encodePoint,
  getGroup,
  getSuite,
  groupNames,
  idScalar,
  type Group,
  type GroupPoint,
} from './suites.js';
import { evalCommitment, interpolateAt, lagrangeAt as shamirLagrangeAt, sumCommitments } from './shamir.js';

const sessionSchema = messageSchema.shape.session;
const hexBytes = (n: number) => hexSchema.length(2 * n);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

// ---------------------------------------------------------------------------------------------
// Output: a party's key share, and the public package anyone (the coordinator) may hold.

export const publicPackageSchema = z.strictObject({
  group: z.enum(groupNames),
  threshold: z.number().int().min(1),
  participants: z.array(partyIdSchema).min(1),
  groupPublicKey: hexSchema,
  /** Verifying share s_k·G of every participant, keyed by party id. */
  verifyingShares: z.record(z.string(), hexSchema),
});
export type PublicPackage = z.infer<typeof publicPackageSchema>;

export const keyShareSchema = publicPackageSchema.extend({
  /** The DKG session that produced this key. */
  session: sessionSchema,
  self: partyIdSchema,
  /** This party's secret share s_self: the scalar's bytes (Fn.toBytes). Secret: store sealed, never log, wipe after use. */
  secretShare: secretBytesSchema(32),
});
export type DkgKeyShare = z.infer<typeof keyShareSchema>;

export const publicPackage = (k: DkgKeyShare): PublicPackage => ({
  group: k.group,
  threshold: k.threshold,
  participants: [...k.participants],
  groupPublicKey: k.groupPublicKey,
  verifyingShares: { ...k.verifyingShares },
});

/**
 * Parses a public package and checks it is coherent: valid points, one verifying share per
 * participant, and all of them (and the group key) on one polynomial of degree t−1 — so a
 * package tampered with in storage or transit cannot be used to blame an honest signer. Checked
 * once per process per package (memoized).
 */
export const checkPublicPackage = memoized(function checkPublicPackage(raw: unknown): { pub: PublicPackage; group: Group; pk: GroupPoint; shares: Map<PartyId, GroupPoint> } {
  const parsed = publicPackageSchema.safeParse(raw);
  if (!parsed.success) throw new ProtocolError('malformed', `public package: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  const pub = parsed.data;
  checkParticipants(pub.participants, pub.threshold);
  const g = getGroup(pub.group);
  const keys = Object.keys(pub.verifyingShares);
  if (keys.length !== pub.participants.length || pub.participants.some((id) => !(String(id) in pub.verifyingShares)))
    throw new ProtocolError('malformed', 'verifying shares do not match the participants');
  const shares = new Map<PartyId, GroupPoint>();
  for (const id of sortIds(pub.participants)) shares.set(id, decodePoint(g, pub.verifyingShares[String(id)]!, id));
  const pk = decodePoint(g, pub.groupPublicKey);
  // Interpolate from the first t shares in the exponent; every other share and the key must agree.
  const base = new Map([...shares].slice(0, pub.threshold));
  const at = (x: bigint) => interpolateAt(g.Fn, base, g.Point.ZERO, x);
  if (!at(0n).equals(pk)) throw new ProtocolError('malformed', 'verifying shares do not interpolate to the group key');
  for (const [id, Y] of shares)
    if (!at(idScalar(id)).equals(Y)) throw new ProtocolError('malformed', 'verifying shares are not of degree t−1', id);
  return { pub, group: g, pk, shares };
});

/**
 * Parses a key share for use by its owner: parameters sane, its public package coherent
 * (checkPublicPackage, decoded once per process rather than on every signature) and the secret
 * share matching the party's own verifying share.
 */
export function openKeyShare(raw: unknown): { key: DkgKeyShare; group: Group; secret: Uint8Array; pk: GroupPoint } {
  const parsed = keyShareSchema.safeParse(raw);
  if (!parsed.success) throw new ProtocolError('malformed', `key share: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  const key = parsed.data;
  checkParticipants(key.participants, key.threshold, key.self);
  const { group: g, pk } = checkPublicPackage(publicPackage(key));
  const secret = key.secretShare;
  if (!g.secret.valid(secret)) throw new ProtocolError('scalar-range', 'secret share is not a non-zero scalar');
  if (toHex(g.secret.mulBase(secret)) !== key.verifyingShares[String(key.self)]) throw new ProtocolError('malformed', 'secret share does not match its verifying share');
  return { key, group: g, secret, pk };
}

export const encodeKeyShare = (k: DkgKeyShare): Uint8Array => encodeState(k);
export const decodeKeyShare = (b: Uint8Array): DkgKeyShare => openKeyShare(decodeState(b, keyShareSchema)).key;

// ---------------------------------------------------------------------------------------------
// Polynomial helpers over the scalar field (shamir.ts, bound to a group).

/** Lagrange coefficient of `i` within `ids`, evaluated at x (x = 0 gives the RFC 9591 λ_i). */
export function lagrangeAt(g: Group, ids: readonly PartyId[], i: PartyId, x = 0n): bigint {
  return shamirLagrangeAt(g.Fn, ids, i, x);
}

/** A scalar field with its secret-scalar operations: a Group, or the group an ECDSA key's resharing lives in. */
export type SecretField = Pick<Group, 'Fn' | 'secret'>;

/**
 * Σ_m a_m · x^m for secret coefficients held as bytes, at a public x: one SecretScalars.combine
 * (libsodium on buffers for Ed25519 and ristretto255, noble's bigints within the call otherwise).
 */
export function evalSecretPoly(g: SecretField, coeffs: readonly Uint8Array[], x: bigint): Uint8Array {
  let power = g.Fn.ONE;
  return g.secret.combine(coeffs[0]!, coeffs.slice(1).map((a) => [a, (power = g.Fn.mul(power, x))] as const));
}

/** The sum of secret scalars (at least one), as bytes. */
export const sumSecrets = (g: SecretField, [first, ...rest]: readonly Uint8Array[]): Uint8Array => g.secret.combine(first!, rest.map((k) => [k, 1n] as const));

/** Whether k·G for a secret k (constant time) is the point P. */
export const secretMatches = (g: SecretField, k: Uint8Array, P: { toBytes(): Uint8Array }): boolean => Buffer.from(g.secret.mulBase(k)).equals(P.toBytes());

// ---------------------------------------------------------------------------------------------
// Protocol messages and state.

const round1Payload = (g: Group) =>
  z.strictObject({
    // Length is checked against t in checkBroadcast, for a precise error naming the sender.
    commitment: z.array(hexBytes(g.pointLength)).min(1).max(0xffff),
    /** Proof of knowledge of a_i0: R || μ. */
    proof: hexBytes(g.pointLength + g.scalarLength),
  });
export type DkgRound1Payload = z.infer<ReturnType<typeof round1Payload>>;

const round2Payload = (g: Group) =>
  z.strictObject({
    /** f_sender(recipient): secret, raw bytes inside the encryption (signers/node/relay.ts). */
    share: secretBytesSchema(g.scalarLength),
    /** Digest of each party's round-1 broadcast as the sender received it, keyed by party id. */
    views: z.record(z.string(), hexBytes(g.hash(new Uint8Array(0)).length)),
  });
export type DkgRound2Payload = z.infer<ReturnType<typeof round2Payload>>;

export const dkgParamsSchema = z.strictObject({
  suite: z.enum(groupNames),
  session: sessionSchema,
  self: partyIdSchema,
  participants: z.array(partyIdSchema).min(1),
  threshold: z.number().int().min(1),
});
export type DkgParams = z.infer<typeof dkgParamsSchema>;

const broadcastSchema = z.strictObject({ commitment: z.array(hexSchema).min(1), proof: hexSchema });
export const dkgStateSchema = z.discriminatedUnion('phase', [
  dkgParamsSchema.extend({
    phase: z.literal('round1'),
    /** Secret polynomial coefficients a_0..a_{t-1}, scalar bytes. */
    coefficients: z.array(secretBytesSchema()).min(1),
    broadcast: broadcastSchema,
  }),
  dkgParamsSchema.extend({
    phase: z.literal('round2'),
    coefficients: z.array(secretBytesSchema()).min(1),
    /** Every party's round-1 broadcast (own included), keyed by party id. */
    broadcasts: z.record(z.string(), broadcastSchema),
    views: z.record(z.string(), hexSchema),
  }),
  dkgParamsSchema.extend({ phase: z.literal('done'), groupPublicKey: hexSchema }),
]);
export type DkgState = z.infer<typeof dkgStateSchema>;

export const encodeDkgState = (s: DkgState): Uint8Array => encodeState(s);
export const decodeDkgState = (b: Uint8Array): DkgState => decodeState(b, dkgStateSchema);

/** Binds proofs of knowledge to this session, its threshold and its participant set. */
const dkgContext = (g: Group, p: DkgParams): Uint8Array =>
  g.hash(utf8(JSON.stringify({ suite: p.suite, session: p.session, threshold: p.threshold, participants: sortIds(p.participants) })));

function pokChallenge(g: Group, p: DkgParams, id: PartyId, C0: GroupPoint, R: GroupPoint): bigint {
  const m = new Uint8Array([...dkgContext(g, p), ...g.Fn.toBytes(idScalar(id)), ...C0.toBytes(), ...R.toBytes()]);
  return g.hashToScalar(m, utf8(getSuite(g.name).contextString + 'dkg'));
}

const viewDigest = (g: Group, session: string, from: PartyId, b: DkgRound1Payload): string =>
  toHex(g.hash(utf8(JSON.stringify({ session, from, commitment: b.commitment, proof: b.proof }))));

const paramsOf = (s: DkgState): DkgParams => ({
  suite: s.suite,
  session: s.session,
  self: s.self,
  participants: s.participants,
  threshold: s.threshold,
});

/** Round 1: sample a degree t−1 polynomial, commit to it and prove knowledge of its constant. */
export function dkgStart(params: DkgParams, rng: Rng): Step<DkgState> {
  const parsed = dkgParamsSchema.safeParse(params);
  if (!parsed.success) throw new ProtocolError('bad-parameters', `DKG parameters: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  const p = { ...parsed.data, participants: sortIds(parsed.data.participants) };
  checkParticipants(p.participants, p.threshold, p.self);
  const g = getGroup(p.suite);
  const scalar = (): Uint8Array => {
    const a = g.secret.random(rng);
    if (!g.secret.valid(a)) throw new ProtocolError('bad-parameters', 'random scalar is zero: broken rng');
    return a;
  };
  const coeffs = Array.from({ length: p.threshold }, scalar);
  const C = coeffs.map((a) => g.Point.fromBytes(g.secret.mulBase(a)));
  const k = scalar();
  try {
    const R = g.Point.fromBytes(g.secret.mulBase(k));
    const mu = g.secret.combine(k, [[coeffs[0]!, pokChallenge(g, p, p.self, C[0]!, R)]]);
    const broadcast: DkgRound1Payload = { commitment: C.map(encodePoint), proof: encodePoint(R) + toHex(mu) };
    return {
      state: { ...p, phase: 'round1', coefficients: coeffs, broadcast },
      outbound: [{ session: p.session, round: 1, from: p.self, to: 'all', payload: broadcast }],
    };
  } finally {
    k.fill(0);
  }
}

/** Validates one party's round-1 broadcast: points, commitment length, proof of knowledge. */
function checkBroadcast(g: Group, p: DkgParams, from: PartyId, b: DkgRound1Payload): GroupPoint[] {
  if (b.commitment.length !== p.threshold) throw new ProtocolError('malformed', `commitment has ${b.commitment.length} points, expected ${p.threshold}`, from);
  const C = b.commitment.map((h) => decodePoint(g, h, from));
  const R = decodePoint(g, b.proof.slice(0, 2 * g.pointLength), from);
  const mu = decodeScalar(g, b.proof.slice(2 * g.pointLength), from);
  const c = pokChallenge(g, p, from, C[0]!, R);
  if (!g.Point.BASE.multiplyUnsafe(mu).equals(R.add(C[0]!.multiplyUnsafe(c))))
    throw new ProtocolError('bad-proof', 'proof of knowledge of the secret coefficient does not verify', from);
  return C;
}

/**
 * Advances a party by one round given all of the round's inbound messages (in any order; the
 * party's own messages excluded). Round 2 point-to-point messages carry secret shares and must be
 * encrypted to their recipient by the transport. The final step outputs the key share.
 */
export function dkgStep(state: DkgState, inbound: readonly Message[]): Step<DkgState, DkgKeyShare> {
  const g = getGroup(state.suite);
  const p = paramsOf(state);
  const { session, self, participants } = p;
  switch (state.phase) {
    case 'round1': {
      const got = collectRound(inbound, { session, round: 1, self, senders: participants, broadcast: true, payload: round1Payload(g) });
      for (const [from, b] of got) checkBroadcast(g, p, from, b);
      got.set(self, state.broadcast);
      const broadcasts: Record<string, DkgRound1Payload> = {};
      const views: Record<string, string> = {};
      for (const id of participants) {
        broadcasts[id] = got.get(id)!;
        views[id] = viewDigest(g, session, id, got.get(id)!);
      }
      // Each share is its own buffer: the relay wipes it once sealed.
      const outbound: Message[] = participants
        .filter((k) => k !== self)
        .map((k) => ({ session, round: 2, from: self, to: k, payload: { share: evalSecretPoly(g, state.coefficients, idScalar(k)), views } satisfies DkgRound2Payload }));
      return { state: { ...p, phase: 'round2', coefficients: state.coefficients, broadcasts, views }, outbound };
    }
    case 'round2': {
      const got = collectRound(inbound, { session, round: 2, self, senders: participants, broadcast: false, payload: round2Payload(g) });
      // Everyone must have seen the same round-1 broadcasts before any share is trusted.
      checkViews(got, state.views, participants, self);
      const commitments = new Map<PartyId, GroupPoint[]>();
      for (const id of participants) commitments.set(id, state.broadcasts[String(id)]!.commitment.map((h) => decodePoint(g, h, id)));
      const x = idScalar(self);
      for (const [k, m] of got) {
        // Zero, which an honest sender all but never sends, is refused with the non-canonical.
        if (!g.secret.valid(m.share)) throw new ProtocolError('scalar-range', 'share is not a non-zero scalar', k);
        if (!secretMatches(g, m.share, evalCommitment(commitments.get(k)!, x))) throw new ProtocolError('bad-share', 'share is inconsistent with the sender’s commitments', k);
      }
      const own = evalSecretPoly(g, state.coefficients, x);
      const secret = sumSecrets(g, [own, ...[...got.values()].map((m) => m.share)]);
      own.fill(0);
      // Group commitment: the coefficient-wise sum of everyone's commitments.
      const groupC = sumCommitments([...commitments.values()], g.Point.ZERO);
      const verifyingShares: Record<string, string> = {};
      for (const id of participants) verifyingShares[id] = encodePoint(evalCommitment(groupC, idScalar(id)));
      if (!g.secret.valid(secret) || !secretMatches(g, secret, evalCommitment(groupC, x))) {
        secret.fill(0);
        throw new ProtocolError('bad-share', 'combined share does not match the group commitment');
      }
      // The polynomial's use ends here (the caller wipes the inbound shares).
      wipeSecrets(state.coefficients);
      const groupPublicKey = encodePoint(groupC[0]!);
      const output: DkgKeyShare = { group: p.suite, threshold: p.threshold, participants, groupPublicKey, verifyingShares, session, self, secretShare: secret };
      return { state: { ...p, phase: 'done', groupPublicKey }, outbound: [], output };
    }
    case 'done':
      throw new ProtocolError('bad-parameters', 'DKG already finished');
  }
}
