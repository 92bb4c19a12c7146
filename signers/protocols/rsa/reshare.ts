// Resharing a Shoup threshold RSA key to a new holder set (removal, addition, or a refresh of the
// same set) without reconstructing d: integer resharing with Feldman-style commitments in the
// squares mod n, in one round. n, e and v stay; the shares, verification keys, threshold and
// holder set change.
//
// m = φ(n)/4 is unknown to every holder, so shares cannot be reduced modulo it: dealers share
// integers, hidden statistically by wide random coefficients, and every resharing widens the
// shares (shareBits) and multiplies what they interpolate to (multiplier, key.ts).
//
//   dealer j ∈ D, old share s_j:  c_j = λ_j·s_j with λ_j = Δ_old·Π_{j'∈D∖j} j'/(j'−j) ∈ Z
//                                 a_0 = Δ'·c_j, a_1..a_{t'−1} ← [0, 2^A)
//                                 → each k ∈ N':  σ_{j,k} = Σ_l a_l·k^l,  C_l = v^{a_l} (l ≥ 1)
//   holder k:                     C_{j,0} = v_j^{Δ'·λ_j} (binds j to its old share), checks
//                                 v^{σ_{j,k}} = Π_l C_{j,l}^{k^l}; s'_k = Σ_j σ_{j,k};
//                                 v'_{k'} = Π_j Π_l C_{j,l}^{k'^l} for every k' ∈ N'
//
// The old shares interpolate to M·d, so Σ_j c_j ≡ Δ_old·M·d and the new polynomial Σ_j g_j has
// constant term Δ'·Δ_old·M·d: the new multiplier is M' = M·Δ_old·Δ' (combine.ts inverts 4Δ'²M'
// against e). Scaling a_0 by Δ' and drawing the other coefficients κ bits wider than Δ'²·|c_j|
// hides a_0 statistically from any t'−1 evaluations (integer Shamir, Δ' clearing the Lagrange
// denominators).
//
// There is no echo round: a dealer showing different commitments to different holders gives them
// different verification keys. The caller (signers/node, gateway) must therefore adopt the new
// shares only once every new holder reported the same public parameters, and then every old
// share must be deleted (t old shares still interpolate the key). An abort changes nothing.

import { sha256 } from '@noble/hashes/sha2.js';
import { z } from 'zod';
import { checkParticipants, messageSchema, ProtocolError, secretBytesSchema, sortIds, type Message } from '../common.js';
import { fromHex, hexSchema, partyIdSchema, toHex, type PartyId, type Rng } from '../../../contract/bytes.js';
import { bigIntToMinBytes, bitLength, gcd, randomBits } from './arith.js';
import { bytesToBigInt } from '../integers.js';
import { lagrangeAtZero, powSigned } from './combine.js';
import { checkPublicParams, delta, elementHex, encodePublicParams, modulusBytes, RSA_MAX_PARTY_ID, RSA_MAX_SHARE_BITS, type RsaKeyShare, type RsaPublicParams } from './key.js';
import { modPow } from './modpow.js';

export const RSA_RESHARE_ROUND = 1;

/** Statistical hiding margin of the dealers' coefficients. */
const KAPPA = 128;

export interface RsaReshareParams {
  session: string;
  self: PartyId;
  /** The key's current public params. */
  old: RsaPublicParams;
  /** Old holders that deal: ⊆ old.participants, at least old.threshold of them. */
  dealers: readonly PartyId[];
  /** The new holders (may overlap or equal old.participants). */
  participants: readonly PartyId[];
  /** The new threshold. */
  threshold: number;
}

const payloadSchema = z.strictObject({
  /** Digest of the parameters the dealer runs with. */
  context: hexSchema.length(64),
  /** σ_{j,k}, secret: big-endian bytes, raw inside the encryption (signers/node/relay.ts). */
  sigma: secretBytesSchema(undefined, RSA_MAX_SHARE_BITS / 8),
  /** C_1..C_{t'−1} (count checked against t' to name the sender). */
  commitments: z.array(hexSchema).max(RSA_MAX_PARTY_ID),
});
type Payload = z.infer<typeof payloadSchema>;

/** What every party derives alike from the parameters: sorted sets, Δs, bounds, context. */
interface Plan {
  session: string;
  self: PartyId;
  old: RsaPublicParams;
  dealers: PartyId[];
  participants: PartyId[];
  threshold: number;
  deltaOld: bigint;
  deltaNew: bigint;
  /** A: width of the random coefficients a_1..a_{t'−1}. */
  coeffBits: number;
  /** Every σ_{j,k} is below 2^sigmaBits. */
  sigmaBits: number;
  /** The new shareBits: every s'_k = Σ_j σ_{j,k} is below 2^shareBits. */
  shareBits: number;
  multiplier: bigint;
  context: string;
}

const bad = (msg: string): never => {
  throw new ProtocolError('bad-parameters', msg);
};

/** Checks the parameters and derives the plan; throws 'bad-parameters'. */
function plan(p: RsaReshareParams): Plan {
  if (!messageSchema.shape.session.safeParse(p.session).success) bad('session must be 1..128 characters');
  if (!partyIdSchema.safeParse(p.self).success) bad(`self ${p.self} is not a party identifier`);
  const { old } = p;
  checkPublicParams(old);
  const dealers = sortIds(p.dealers);
  const participants = sortIds(p.participants);
  checkParticipants(dealers, dealers.length);
  for (const j of dealers) if (!old.participants.includes(j)) bad(`dealer ${j} holds no share of the old key`);
  if (dealers.length < old.threshold) bad(`${dealers.length} dealers, fewer than the old threshold ${old.threshold}`);
  checkParticipants(participants, p.threshold);
  const maxNew = Math.max(...participants);
  if (maxNew > RSA_MAX_PARTY_ID) bad(`party identifiers must be at most ${RSA_MAX_PARTY_ID}`);
  // With t' = 1 the dealing is its constant term alone: λ_j < 0 for some dealer of two or more
  // would make σ negative, and one dealer (λ = Δ_old > 0) suffices as the old threshold is then 1.
  if (p.threshold === 1 && dealers.length !== 1) bad('a threshold-1 resharing takes exactly one dealer');

  const deltaOld = delta(old);
  const deltaNew = delta({ participants });
  const multiplier = old.multiplier * deltaOld * deltaNew;
  // e is already prime to 4, Δ_old and M (checkPublicParams): Δ' is what is new.
  if (gcd(old.e, deltaNew) !== 1n) bad('public exponent has a prime factor up to the highest new party identifier');
  const { coeffBits, sigmaBits, shareBits } = widths(old, dealers, participants, p.threshold);
  if (shareBits > RSA_MAX_SHARE_BITS) bad(`reshared shares would be ${shareBits} bits, over ${RSA_MAX_SHARE_BITS}: deal the key afresh`);

  const { session, self, threshold } = p;
  // Independent of id order, so parties given the same sets in another order agree.
  const oldJson = encodePublicParams({ ...old, participants: sortIds(old.participants) });
  const context = toHex(sha256(new TextEncoder().encode(JSON.stringify(['mpchsm/rsa-reshare/v1', session, oldJson, dealers, participants, threshold]))));
  return { session, self, old, dealers, participants, threshold, deltaOld, deltaNew, coeffBits, sigmaBits, shareBits, multiplier, context };
}

/** The public bounds of a resharing: coefficient, σ and new share widths, in bits. */
function widths(old: RsaPublicParams, dealers: readonly PartyId[], participants: readonly PartyId[], threshold: number) {
  // |λ_j| ≤ Δ_old·L_old^{|D|−1}: a public bound on |c_j|, whatever the share.
  const cBits = old.shareBits + bitLength(delta(old)) + (dealers.length - 1) * bitLength(BigInt(Math.max(...old.participants)));
  const coeffBits = cBits + 2 * bitLength(delta({ participants })) + KAPPA;
  // Σ_{l<t'} k^l ≤ 2·L'^{t'−1} for L' ≥ 2 (and σ = a_0 when L' = 1), with |a_0| < 2^A.
  const sigmaBits = coeffBits + (threshold - 1) * bitLength(BigInt(Math.max(...participants))) + 1;
  return { coeffBits, sigmaBits, shareBits: sigmaBits + bitLength(BigInt(dealers.length)) };
}

/**
 * Why refreshing `old` among its own holders would leave it without resharing headroom, if it
 * would: the shares after it, reshared once more among the same signers, would be wider than
 * RSA_MAX_SHARE_BITS. Shares grow with every resharing, so a refresh — which nothing forces —
 * must not spend the resharing a signer's removal or admission needs.
 */
export function refreshHeadroomProblem(old: RsaPublicParams): string | undefined {
  const holders = sortIds(old.participants);
  const dealers = old.threshold === 1 ? holders.slice(0, 1) : holders;
  const after = widths(old, dealers, holders, old.threshold).shareBits;
  const next = widths({ ...old, shareBits: after }, dealers, holders, old.threshold).shareBits;
  if (next <= RSA_MAX_SHARE_BITS) return undefined;
  return `refreshing would leave its RSA shares ${after} bits wide, and the resharing after that (a signer's removal or admission) would need ${next} bits, over ${RSA_MAX_SHARE_BITS} (shares grow with each resharing): deal the key afresh`;
}

/** Σ_l a_l·k^l over the integers (Horner). */
const evalInt = (coeffs: readonly bigint[], k: PartyId): bigint => coeffs.reduceRight((acc, a) => acc * BigInt(k) + a, 0n);

/** Π_l C_l^{k^l} mod n (Horner in the exponent; public values). */
const evalInExponent = (C: readonly bigint[], k: PartyId, n: bigint): bigint => C.reduceRight((acc, c) => (modPow(acc, BigInt(k), n) * c) % n, 1n);

/** C_{j,0} = v_j^{Δ'·λ_j}: what dealer j's constant term must commit to. */
const constantCommitment = (pl: Plan, j: PartyId): bigint =>
  powSigned(pl.old.verificationKeys.get(j)!, pl.deltaNew * lagrangeAtZero(pl.dealers, j, pl.deltaOld), pl.old.n);

/** Dealer (self ∈ dealers): one message to each new participant (itself included if it is one). */
export function rsaReshareDeal(p: RsaReshareParams, share: RsaKeyShare, rng: Rng): Message[] {
  const pl = plan(p);
  const { old, self } = pl;
  if (!pl.dealers.includes(self)) bad(`party ${self} is not a dealer`);
  if (share.id !== self) bad(`the key share is party ${share.id}'s`);
  // A share that does not match v_self would get this honest dealer blamed by every holder.
  if (share.s < 0n || bitLength(share.s) > old.shareBits || modPow(old.v, share.s, old.n) !== old.verificationKeys.get(self))
    bad('the key share does not match its old verification key');

  const coeffs = [pl.deltaNew * lagrangeAtZero(pl.dealers, self, pl.deltaOld) * share.s];
  for (let l = 1; l < pl.threshold; l++) coeffs.push(randomBits(rng, pl.coeffBits));
  const k = modulusBytes(old);
  const commitments = coeffs.slice(1).map((a) => elementHex(modPow(old.v, a, old.n), k));
  // σ ≥ 0 but with probability about 2^-κ (t' ≥ 2: a_1·k outweighs a_0; t' = 1: a_0 = Δ'·Δ_old·s_j).
  const out = pl.participants.map(
    (to): Message<Payload> => ({ session: pl.session, round: RSA_RESHARE_ROUND, from: self, to, payload: { context: pl.context, sigma: bigIntToMinBytes(evalInt(coeffs, to)), commitments } }),
  );
  coeffs.fill(0n); // drops the references; BigInt values themselves cannot be overwritten
  return out;
}

/** Exactly one valid message from every dealer, keyed by dealer; throws naming the culprit. */
function collect(pl: Plan, inbound: readonly Message[]): Map<PartyId, Payload> {
  const got = new Map<PartyId, Payload>();
  for (const raw of inbound) {
    const env = messageSchema.safeParse(raw);
    if (!env.success) {
      const from = (raw as { from?: unknown } | null)?.from;
      throw new ProtocolError('malformed', 'malformed resharing envelope', typeof from === 'number' ? from : undefined);
    }
    const m = env.data;
    if (m.session !== pl.session) throw new ProtocolError('wrong-session', `message for session ${m.session}`, m.from);
    if (m.round !== RSA_RESHARE_ROUND) throw new ProtocolError('wrong-round', `message for round ${m.round}`, m.from);
    if (!pl.dealers.includes(m.from)) throw new ProtocolError('unknown-sender', 'sender is not a dealer of this resharing', m.from);
    if (m.to !== pl.self) throw new ProtocolError('wrong-recipient', `message addressed to ${m.to}`, m.from);
    if (got.has(m.from)) throw new ProtocolError('duplicate', 'second dealing', m.from);
    const body = payloadSchema.safeParse(m.payload);
    if (!body.success) throw new ProtocolError('malformed', `dealing: ${body.error.issues[0]?.path.join('.')} ${body.error.issues[0]?.message}`, m.from);
    if (body.data.context !== pl.context)
      throw new ProtocolError('inconsistent-view', 'runs this resharing with other parameters (session, old key, dealers, new set or threshold)', m.from);
    got.set(m.from, body.data);
  }
  for (const j of pl.dealers) if (!got.has(j)) throw new ProtocolError('missing', 'no dealing', j);
  return got;
}

/** Dealer j's commitments C_{j,0..t'−1}, each a unit mod n. */
function commitmentsOf(pl: Plan, j: PartyId, d: Payload): bigint[] {
  const { n } = pl.old;
  if (d.commitments.length !== pl.threshold - 1) throw new ProtocolError('malformed', `${d.commitments.length} commitments, expected ${pl.threshold - 1}`, j);
  const k = modulusBytes(pl.old);
  const C = d.commitments.map((h) => {
    const c = bytesToBigInt(fromHex(h));
    if (h.length !== 2 * k || c <= 1n || c >= n || gcd(c, n) !== 1n) throw new ProtocolError('invalid-point', 'commitment is not a unit mod n', j);
    return c;
  });
  return [constantCommitment(pl, j), ...C];
}

/**
 * New participant (self ∈ participants): from exactly one message of every dealer, its new share
 * and the new public params (the same for every honest participant). Throws ProtocolError naming
 * the dealer of a message that fails a check.
 */
export function rsaReshareReceive(p: RsaReshareParams, inbound: readonly Message[]): { params: RsaPublicParams; share: RsaKeyShare } {
  const pl = plan(p);
  const { n, e, v } = pl.old;
  if (!pl.participants.includes(pl.self)) bad(`party ${pl.self} is not a new participant`);
  const got = collect(pl, inbound);
  const joint = Array.from({ length: pl.threshold }, () => 1n); // Π_j C_{j,l}
  let s = 0n;
  for (const j of pl.dealers) {
    const d = got.get(j)!;
    const C = commitmentsOf(pl, j, d);
    const sigma = bytesToBigInt(d.sigma);
    if (bitLength(sigma) > pl.sigmaBits) throw new ProtocolError('scalar-range', `σ wider than ${pl.sigmaBits} bits`, j);
    if (modPow(v, sigma, n) !== evalInExponent(C, pl.self, n)) throw new ProtocolError('bad-share', 'σ is inconsistent with the dealer’s commitments and old share', j);
    s += sigma;
    C.forEach((c, l) => (joint[l] = (joint[l]! * c) % n));
  }
  // Implied by the σ bounds; guards the bound arithmetic that every later proof relies on.
  if (bitLength(s) > pl.shareBits) throw new ProtocolError('bad-share', `new share wider than ${pl.shareBits} bits`);
  const params: RsaPublicParams = {
    n,
    e,
    v,
    threshold: pl.threshold,
    participants: pl.participants,
    verificationKeys: new Map(pl.participants.map((k) => [k, evalInExponent(joint, k, n)])),
    multiplier: pl.multiplier,
    shareBits: pl.shareBits,
  };
  checkPublicParams(params);
  return { params, share: { id: pl.self, s } };
}
