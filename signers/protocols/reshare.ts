// Resharing a threshold key to a new holder set (Desmedt–Jajodia, with the verifiability of
// Herzberg et al.'s proactive refresh): signers join or leave, the threshold changes, or — with
// the same set — every share is refreshed, while the key and its public key stay the same and
// the secret is never reconstructed.
//
// Old holders Q (at least the old threshold t of them) deal; the new set N' with threshold t'
// receives. Q and N' may overlap or coincide (refresh).
//
//   round 1, dealer i → each k ∈ N':  Feldman commitment C_i to g_i, a random polynomial of
//                                     degree t'−1 with g_i(0) = λ_i^Q·s_i, and g_i(k) (secret);
//                                     for ECDSA, each k ∈ N' also starts the DKLs23 pairwise
//                                     setup with every other member of N' (pairing.ts)
//   round 2, k → each other k' ∈ N':  digests of the commitments k received (views), plus the
//                                     second pairwise-setup message for ECDSA
//   output at k ∈ N':                 s'_k = Σ_i g_i(k), verifying shares from Σ_i C_i, the same
//                                     public key, in the scheme's usual key-share format
//
// A new holder checks every evaluation against its commitment, and C_i0 = λ_i·Y_i with Y_i the
// dealer's old verifying share: a dealer cannot inject another secret, so Σ_i C_i0 is the old
// public key. The views catch a dealer showing different commitments to different holders. All
// messages are point-to-point and travel encrypted end to end; every message carries a digest of
// the parameters, so parties told different sets, thresholds or old packages stop at once.
//
// A holder new to the key cannot check `old` itself, and need not: an honest dealer (Q has one
// when fewer than t old holders are corrupt) checks `old` against its own key share, so a new
// holder given another package sees that dealer's parameter digest differ.
//
// New shares lie on a fresh polynomial: an old share is useless with new ones — but t old shares
// still interpolate the key, so every old holder must delete its old share once the change is
// adopted. Driving it (signers/node, gateway): every party calls reshareStart with the same
// parameters (the approved change; `old` from the key's record; dealers pass their old key
// share). New holders get round-1 messages, call reshareStep, exchange round-2 messages, and the
// second reshareStep outputs the new key share. Each new holder keeps it pending and reports its
// public package; only when all of N' reported the same one is the new share adopted and every
// old share (removed holders' included) deleted. An abort changes nothing: old shares stay valid.

import { z } from 'zod';
import { sha256 } from '@noble/hashes/sha2.js';
import type { CurvePointCons } from '@noble/curves/abstract/curve.js';
import type { IField } from '@noble/curves/abstract/modular.js';
import {
  ProtocolError,
  checkParticipants,
  checkViews,
  collectRound,
  decodeState,
  encodeState,
  secretBytesSchema,
  messageSchema,
  sortIds,
  wipeSecrets,
  type Message,
  type Step,
} from './common.js';
import {
  fromHex,
  hexSchema,
  partyIdSchema,
  toHex,
  type PartyId,
  type Rng,
} from '../../contract/bytes.js';
import { checkPublicPackage, evalSecretPoly, openKeyShare, publicPackage, publicPackageSchema, secretMatches, sumSecrets, type DkgKeyShare, type PublicPackage } from './dkg.js';
import * as ec from './ecdsa/curves.js';
import { checkEcdsaPublicPackage, ecdsaPublicPackage, ecdsaPublicSchema, openEcdsaKeyShare, type EcdsaKeyShare, type EcdsaPublicPackage } from './ecdsa/keyshare.js';
import { pairingFinish, pairingRespond, pairingRoundASchema, pairingRoundBSchema, pairingStart, pairingStateASchema, pairingStateBSchema, type PairingScope } from './ecdsa/pairing.js';
import { evalCommitment, lagrangeAt, sumCommitments, type ShamirPoint } from './shamir.js';
import * as fr from './suites.js';
import { nobleSecret, type SecretScalars } from './secret-scalars.js';

const sessionSchema = messageSchema.shape.session;
const hexBytes = (n: number) => hexSchema.length(2 * n);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The public package of the key being reshared: FROST's (dkg.ts) or threshold ECDSA's (keyshare.ts). */
export const resharePackageSchema = z.union([publicPackageSchema, ecdsaPublicSchema]);
export type ResharePackage = PublicPackage | EcdsaPublicPackage;
/** An old holder's key share, and what a new holder gets: the scheme's usual key share. */
export type ReshareKeyShare = DkgKeyShare | EcdsaKeyShare;

const isEcdsa = (p: ResharePackage): p is EcdsaPublicPackage => 'protocol' in p;

/** A key share's public package: what a new holder reports, and the next resharing's `old`. */
export const resharePublicPackage = (k: ReshareKeyShare): ResharePackage => ('protocol' in k ? ecdsaPublicPackage(k) : publicPackage(k));

// ---------------------------------------------------------------------------------------------
// The group a key lives in, with its encodings: suites.ts's for FROST, ecdsa/curves.ts's for ECDSA.

interface ShareGroup {
  readonly Point: CurvePointCons<ShamirPoint>;
  readonly Fn: IField<bigint>;
  readonly pointLength: number;
  readonly scalarLength: number;
  decodePoint(hex: string, sender?: PartyId): ShamirPoint;
  encodePoint(P: ShamirPoint): string;
  /**
   * Secret scalars as bytes (secret-scalars.ts): libsodium's for Ed25519 and ristretto255, noble's for
   * the ECDSA curves (a bigint within each operation).
   */
  readonly secret: SecretScalars;
}

function groupOf(pkg: ResharePackage): ShareGroup {
  if (isEcdsa(pkg)) {
    const c = ec.getCurve(pkg.curve);
    return {
      Point: c.Point,
      Fn: c.Fn,
      pointLength: c.pointLength,
      scalarLength: c.scalarLength,
      decodePoint: (h, s) => ec.decodePoint(c, h, s),
      encodePoint: ec.encodePoint,
      secret: nobleSecret(c.Point, (m, dst) => ec.hashToScalar(c, 'mpchsm/reshare/scalar', dst, m)),
    };
  }
  const g = fr.getGroup(pkg.group);
  return {
    Point: g.Point,
    Fn: g.Fn,
    pointLength: g.pointLength,
    scalarLength: g.scalarLength,
    decodePoint: (h, s) => fr.decodePoint(g, h, s),
    encodePoint: fr.encodePoint,
    secret: g.secret,
  };
}

/** The old package, checked coherent; its public key and verifying shares. */
function checkOld(pkg: ResharePackage): { pk: ShamirPoint; shares: ReadonlyMap<PartyId, ShamirPoint> } {
  return isEcdsa(pkg) ? checkEcdsaPublicPackage(pkg) : checkPublicPackage(pkg);
}

/** An old holder's key share, checked (its secret matches its verifying share); the secret is the share's own bytes. */
const openOld = (key: ReshareKeyShare, ecdsa: boolean): { key: ReshareKeyShare; secret: Uint8Array } => {
  const o = ecdsa ? openEcdsaKeyShare(key) : openKeyShare(key);
  return { key: o.key, secret: o.key.secretShare };
};

/** An unambiguous encoding of a package, independent of key and id order: what parties compare and hash. */
function canonical(p: ResharePackage): string {
  const ids = sortIds(p.participants);
  const shares = ids.map((id) => p.verifyingShares[String(id)]);
  return JSON.stringify(isEcdsa(p) ? [p.protocol, p.curve, p.threshold, ids, p.publicKey, shares] : ['frost', p.group, p.threshold, ids, p.groupPublicKey, shares]);
}

// ---------------------------------------------------------------------------------------------
// Parameters, messages and state.

export const reshareParamsSchema = z.strictObject({
  session: sessionSchema,
  self: partyIdSchema,
  /** The key's public package before the change. Every party must be given the same one. */
  old: resharePackageSchema,
  /** The old holders that deal (Q): old participants, at least the old threshold of them. */
  dealers: z.array(partyIdSchema).min(1),
  /** The new holder set N' and its threshold t'. */
  participants: z.array(partyIdSchema).min(1),
  threshold: z.number().int().min(1),
});
export type ReshareParams = z.infer<typeof reshareParamsSchema>;

const dealingSchema = z.strictObject({ commitment: z.array(hexSchema).min(1), share: secretBytesSchema() });

const round1Payload = (G: ShareGroup) =>
  z.strictObject({
    /** Digest of the parameters the sender runs with. */
    context: hexBytes(32),
    /** From a dealer: its Feldman commitment (length checked against t' to name the sender) and g_i(k). Secret. */
    deal: z.strictObject({ commitment: z.array(hexBytes(G.pointLength)).min(1).max(0xffff), share: secretBytesSchema(G.scalarLength) }).optional(),
    /** ECDSA, from a new holder: round a of the pairwise setup. */
    pair: pairingRoundASchema.optional(),
  });

const round2Payload = z.strictObject({
  context: hexBytes(32),
  /** Digest of each dealer's commitment as the sender received it, keyed by dealer id. */
  views: z.record(z.string(), hexBytes(32)),
  /** ECDSA: round b of the pairwise setup. */
  pair: pairingRoundBSchema.optional(),
});

export const reshareStateSchema = z.discriminatedUnion('phase', [
  reshareParamsSchema.extend({
    phase: z.literal('round1'),
    /** Our own dealing when we also deal: the commitment and our own evaluation g_self(self) (secret). */
    own: dealingSchema.optional(),
    /** ECDSA: the pairwise setup after round a (secret). */
    pairing: pairingStateASchema.optional(),
  }),
  reshareParamsSchema.extend({
    phase: z.literal('round2'),
    /** The new share s'_self (secret, scalar bytes), not released before every view has been compared. */
    secretShare: secretBytesSchema(),
    verifyingShares: z.record(z.string(), hexSchema),
    views: z.record(z.string(), hexSchema),
    pairing: pairingStateBSchema.optional(),
  }),
  /** Finished: a dealer outside the new set after dealing, or a new holder after its output. */
  reshareParamsSchema.extend({ phase: z.literal('done') }),
]);
export type ReshareState = z.infer<typeof reshareStateSchema>;

export const encodeReshareState = (s: ReshareState): Uint8Array => encodeState(s);
export const decodeReshareState = (b: Uint8Array): ReshareState => decodeState(b, reshareStateSchema);

const paramsOf = (s: ReshareState): ReshareParams => ({
  session: s.session,
  self: s.self,
  old: s.old,
  dealers: s.dealers,
  participants: s.participants,
  threshold: s.threshold,
});

/** Binds every message, view and pairwise setup to this session and all of its parameters. */
const contextOf = (p: ReshareParams): string =>
  toHex(sha256(utf8(JSON.stringify(['mpchsm/reshare/v1', p.session, canonical(p.old), p.dealers, p.participants, p.threshold]))));

const viewDigest = (context: string, dealer: PartyId, commitment: readonly string[]): string =>
  toHex(sha256(utf8(JSON.stringify(['mpchsm/reshare/view', context, dealer, commitment]))));

const pairingScope = (p: ReshareParams): PairingScope => ({ tag: 'mpchsm/ecdsa/reshare', context: fromHex(contextOf(p)), self: p.self });

const checkContext = (got: ReadonlyMap<PartyId, { context: string }>, context: string): void => {
  for (const [j, m] of got) if (m.context !== context) throw new ProtocolError('inconsistent-view', 'runs this resharing with other parameters (session, old key, dealers, new set or threshold)', j);
};

/** Parses and checks parameters; returns them with sorted id lists. */
function checkParams(params: ReshareParams): ReshareParams {
  const parsed = reshareParamsSchema.safeParse(params);
  if (!parsed.success) throw new ProtocolError('bad-parameters', `resharing parameters: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  const p = { ...parsed.data, dealers: sortIds(parsed.data.dealers), participants: sortIds(parsed.data.participants) };
  checkOld(p.old);
  if (p.dealers.length < p.old.threshold) throw new ProtocolError('bad-parameters', `${p.dealers.length} dealers, fewer than the old threshold ${p.old.threshold}`);
  checkParticipants(p.dealers, p.dealers.length);
  for (const i of p.dealers) if (!p.old.participants.includes(i)) throw new ProtocolError('bad-parameters', `dealer ${i} holds no share of the old key`);
  checkParticipants(p.participants, p.threshold);
  if (!p.dealers.includes(p.self) && !p.participants.includes(p.self)) throw new ProtocolError('bad-parameters', `self ${p.self} neither deals nor receives`);
  return p;
}

// ---------------------------------------------------------------------------------------------
// The protocol.

/**
 * Round 1. A dealer (self ∈ dealers) passes its old key share; others may pass theirs to have
 * `old` checked against it. A dealer outside the new set is finished after this step (phase
 * 'done'); its messages carry its dealing.
 */
export function reshareStart(params: ReshareParams, oldKey: ReshareKeyShare | undefined, rng: Rng): Step<ReshareState> {
  const p = checkParams(params);
  const { session, self, old, dealers, participants } = p;
  const ecdsa = isEcdsa(old);
  const G = groupOf(old);
  const context = contextOf(p);
  const deals = dealers.includes(self);
  let secret: Uint8Array | undefined;
  if (oldKey !== undefined) {
    const o = openOld(oldKey, ecdsa);
    if (o.key.self !== self) throw new ProtocolError('bad-parameters', `the old key share is party ${o.key.self}'s`);
    if (canonical(resharePublicPackage(o.key)) !== canonical(old)) throw new ProtocolError('bad-parameters', 'the old package differs from the old key share’s');
    secret = o.secret;
  } else if (deals) throw new ProtocolError('bad-parameters', 'a dealer needs its old key share');

  const payloads = new Map<PartyId, z.infer<ReturnType<typeof round1Payload>>>(participants.filter((k) => k !== self).map((k) => [k, { context }]));
  let own: z.infer<typeof dealingSchema> | undefined;
  if (deals) {
    // g(0) = λ_self·s_self: the dealers' constant terms sum to the secret; the rest is fresh randomness.
    const coeffs = [G.secret.combine(new Uint8Array(G.scalarLength), [[secret!, lagrangeAt(G.Fn, dealers, self)]]), ...Array.from({ length: p.threshold - 1 }, () => G.secret.random(rng))];
    try {
      if (!coeffs.every((a) => G.secret.valid(a))) throw new ProtocolError('bad-parameters', 'a coefficient is zero: broken rng');
      const commitment = coeffs.map((a) => G.encodePoint(G.Point.fromBytes(G.secret.mulBase(a))));
      // Each evaluation its own buffer: the relay wipes what it seals, the state keeps its own.
      for (const [k, m] of payloads) m.deal = { commitment, share: evalSecretPoly(G, coeffs, BigInt(k)) };
      if (participants.includes(self)) own = { commitment, share: evalSecretPoly(G, coeffs, BigInt(self)) };
    } finally {
      wipeSecrets(coeffs);
    }
  }
  let pairing: z.infer<typeof pairingStateASchema> | undefined;
  if (ecdsa && participants.includes(self)) {
    const a = pairingStart(pairingScope(p), [...payloads.keys()], rng);
    for (const [k, m] of a.outbound) payloads.get(k)!.pair = m;
    pairing = a.state;
  }
  const outbound: Message[] = [...payloads]
    .filter(([, m]) => m.deal !== undefined || m.pair !== undefined)
    .map(([k, payload]) => ({ session, round: 1, from: self, to: k, payload }));
  if (!participants.includes(self)) return { state: { ...p, phase: 'done' }, outbound };
  return { state: { ...p, phase: 'round1', ...(own && { own }), ...(pairing && { pairing }) }, outbound };
}

/** A dealer's dealing as received: checked against its commitment and its old verifying share. */
function checkDealing(G: ShareGroup, p: ReshareParams, oldShares: ReadonlyMap<PartyId, ShamirPoint>, dealer: PartyId, d: z.infer<typeof dealingSchema>): { C: ShamirPoint[]; share: Uint8Array } {
  if (d.commitment.length !== p.threshold) throw new ProtocolError('malformed', `commitment has ${d.commitment.length} points, expected ${p.threshold}`, dealer);
  const C = d.commitment.map((h) => G.decodePoint(h, dealer));
  // g_i(k) is secret: multiplied in constant time (zero, which an honest dealer all but never sends, is refused).
  const share = d.share;
  if (!G.secret.valid(share)) throw new ProtocolError('scalar-range', 'share is not a non-zero scalar', dealer);
  if (!secretMatches(G, share, evalCommitment(C, BigInt(p.self))))
    throw new ProtocolError('bad-share', 'share is inconsistent with the dealer’s commitment', dealer);
  if (!C[0]!.equals(oldShares.get(dealer)!.multiplyUnsafe(lagrangeAt(G.Fn, p.dealers, dealer))))
    throw new ProtocolError('bad-share', 'the dealing does not reshare the dealer’s old share', dealer);
  return { C, share };
}

/**
 * Advances a new holder by one round given all of the round's inbound messages (own excluded,
 * any order). Every message is point-to-point and must be encrypted to its recipient by the
 * transport. The final step outputs the new key share — same public key, the new set and
 * threshold, `session` the resharing's.
 */
export function reshareStep(state: ReshareState, inbound: readonly Message[], rng: Rng): Step<ReshareState, ReshareKeyShare> {
  const p = paramsOf(state);
  const { session, self, old, dealers, participants } = p;
  const ecdsa = isEcdsa(old);
  const G = groupOf(old);
  const context = contextOf(p);
  const peers = participants.filter((k) => k !== self);
  switch (state.phase) {
    case 'round1': {
      if (dealers.includes(self) !== (state.own !== undefined) || ecdsa !== (state.pairing !== undefined)) throw new ProtocolError('malformed', 'state does not match its parameters');
      const senders = ecdsa ? [...new Set([...dealers, ...participants])] : dealers;
      const got = collectRound(inbound, { session, round: 1, self, senders, broadcast: false, payload: round1Payload(G) });
      checkContext(got, context);
      for (const [j, m] of got) {
        if ((m.deal !== undefined) !== dealers.includes(j)) throw new ProtocolError('malformed', dealers.includes(j) ? 'no dealing from a dealer' : 'a dealing from a non-dealer', j);
        if ((m.pair !== undefined) !== (ecdsa && participants.includes(j))) throw new ProtocolError('malformed', 'pairwise setup message missing or unexpected', j);
      }
      const { pk, shares: oldShares } = checkOld(old);
      const dealings = dealers.map((i) => checkDealing(G, p, oldShares, i, i === self ? state.own! : got.get(i)!.deal!));
      const groupC = sumCommitments(dealings.map((d) => d.C), G.Point.ZERO);
      // Implied by the constant-term checks on a coherent old package; kept as the invariant that matters.
      if (!groupC[0]!.equals(pk)) throw new ProtocolError('bad-share', 'the dealings do not share the public key');
      const secret = sumSecrets(G, dealings.map((d) => d.share));
      if (!G.secret.valid(secret)) throw new ProtocolError('bad-share', 'new share is zero');
      const verifyingShares: Record<string, string> = {};
      for (const k of participants) verifyingShares[k] = G.encodePoint(evalCommitment(groupC, BigInt(k)));
      const views: Record<string, string> = {};
      dealers.forEach((i, n) => (views[i] = viewDigest(context, i, dealings[n]!.C.map(G.encodePoint))));
      const b = ecdsa ? pairingRespond(pairingScope(p), state.pairing!, new Map([...got].filter(([, m]) => m.pair).map(([j, m]) => [j, m.pair!])), rng) : undefined;
      const outbound: Message[] = peers.map((k) => ({ session, round: 2, from: self, to: k, payload: { context, views, ...(b && { pair: b.outbound.get(k)! }) } }));
      return { state: { ...p, phase: 'round2', secretShare: secret, verifyingShares, views, ...(b && { pairing: b.state }) }, outbound };
    }
    case 'round2': {
      const got = collectRound(inbound, { session, round: 2, self, senders: participants, broadcast: false, payload: round2Payload });
      if (ecdsa !== (state.pairing !== undefined)) throw new ProtocolError('malformed', 'state does not match its parameters');
      checkContext(got, context);
      // Every new holder must have seen the same commitments before any new share is accepted.
      checkViews(got, state.views, dealers, self);
      for (const [j, m] of got) if ((m.pair !== undefined) !== ecdsa) throw new ProtocolError('malformed', 'pairwise setup message missing or unexpected', j);
      const shamir = { threshold: p.threshold, participants, verifyingShares: state.verifyingShares, session, self, secretShare: state.secretShare };
      const output: ReshareKeyShare = isEcdsa(old)
        ? { protocol: 'dkls23', curve: old.curve, publicKey: old.publicKey, ...shamir, pairs: pairingFinish(pairingScope(p), state.pairing!, new Map([...got].map(([j, m]) => [j, m.pair!]))) }
        : { group: old.group, groupPublicKey: old.groupPublicKey, ...shamir };
      return { state: { ...p, phase: 'done' }, outbound: [], output };
    }
    case 'done':
      throw new ProtocolError('bad-parameters', 'resharing already finished for this party');
  }
}
