// DKLs23 presigning: rounds 1 and 2 of signing (sign-rounds.ts), which do not depend on the
// message, run ahead of requests for a batch of instances at once, and the one round left for
// a request: each signer's share, computed from a presignature and the digest.
//
//   round 1, to each j (p2p):  the agreement (key, session, signers, batch size), and per instance
//                              the commitment to R_i and the OT-extension message as Bob
//   round 2, to each j (p2p):  the view (agreement and every instance's round-1 commitments), and
//                              per instance R_i's opening, pk_i, ψ_ij, Γ^u, Γ^v and the Alice message
//   output:                    per instance a presignature {id, R, u_i, v_i, φ_i}, with every check
//                              of three-round signing passed (KOS, multiplication consistency,
//                              commitment opening, Σ pk_j = PK)
//
// Signing with a presignature (ecdsaPresignedShare) rerandomises it with the message (Groth and
// Shoup, "On the security of ECDSA with additive key derivation and presignatures", Eurocrypt
// 2022): δ = H(key, presignature id, R, digest, signers), R' = R + δ·G, u'_i = u_i + δ·φ_i
// (so Σu' = φ·(k + δ)), w_i = H(m)·φ_i + x(R')·v_i, and s = Σw / Σu' (combine.ts, unchanged).
// Without δ, whoever learns R before the digest is fixed (the gateway) could ask for one digest
// and obtain a signature on another: with R* = 2R, a signature on e₁ = e*·x(R)/x(R*) yields one
// on e* with s* = s₁·x(R*)/(2·x(R)) — which a policy approving digests one by one never saw.
//
// A presignature must be used at most once (two signatures with the same R and different digests
// give the key away); the signer's table of them (signers/node/preprocessed.ts) holds them in
// memory only and hands each out once. Aborts are as in sign.ts: a state drives one step, and an
// abort naming a peer requires ecdsaAfterAbort.

import { z } from 'zod';
import { ProtocolError, collectRound, secretBytesSchema, type Message, type Step } from '../common.js';
import { fromHex, hexSchema, partyIdSchema, toHex, type PartyId, type Rng } from '../../../contract/bytes.js';
import { decodeWire, ecdsaCurveNames, encodeScalar, encodeWire, getCurve, scalarBytes, hashToScalar, mulBase, tagged, type EcdsaCurve } from './curves.js';
import { bytesToBigInt } from '../integers.js';
import { parseEcdsaKeyShare, type EcdsaKeyShare } from './keyshare.js';
import { digestToScalar } from './signature.js';
import { checkSigners, instanceFinish, instanceRespond, instanceStart } from './sign-rounds.js';
import { checkDigest, consume, keep1Schema, keep2Schema, round1Item, round2Item, sessionFields, sessionSchema, type Ctx } from './sign-state.js';

/** The most presignatures one presigning session makes. */
export const MAX_PRESIGN_BATCH = 64;

export interface EcdsaPresignRequest {
  session: string;
  /** The signers every presignature of the batch is for: at least t participants, self included. */
  signers: readonly PartyId[];
  /** How many presignatures to make (1 to MAX_PRESIGN_BATCH). */
  count: number;
}

const common = {
  ...sessionFields,
  count: z.number().int().min(1).max(MAX_PRESIGN_BATCH),
};

export const ecdsaPresignStateSchema = z.discriminatedUnion('phase', [
  z.strictObject({ ...common, phase: z.literal('round1'), items: z.array(keep1Schema) }),
  z.strictObject({ ...common, phase: z.literal('round2'), view: hexSchema, items: z.array(keep2Schema) }),
  z.strictObject({ phase: z.literal('consumed'), session: sessionSchema, self: partyIdSchema }),
]);
export type EcdsaPresignState = z.infer<typeof ecdsaPresignStateSchema>;

/** One signer's part of a presignature: secrets (u_i, v_i, φ_i) beside the public R. */
export const ecdsaPresignatureSchema = z.strictObject({
  /** `<session>-<index>`: unique per presignature, bound into δ. */
  id: z.string().regex(/^[a-z0-9-]{8,140}$/),
  curve: z.enum(ecdsaCurveNames),
  keySession: sessionSchema,
  publicKey: hexSchema,
  signers: z.array(partyIdSchema).min(1),
  self: partyIdSchema,
  R: hexSchema,
  /** Secret scalars (big-endian bytes), wiped with the presignature when it is used or dropped. */
  u: secretBytesSchema(),
  v: secretBytesSchema(),
  phi: secretBytesSchema(),
});
export type EcdsaPresignature = z.infer<typeof ecdsaPresignatureSchema>;

type Base = { curve: EcdsaPresignature['curve']; session: string; signers: readonly PartyId[]; keySession: string; publicKey: string; count: number };

/** The batch's context: key, session, signers and batch size. */
const batchContext = (s: Base): Ctx => ({
  c: getCurve(s.curve),
  session: tagged('mpchsm/ecdsa/presign/session', s.curve, s.keySession, s.publicKey, s.session, s.signers.join(','), s.count),
});
/** Instance k's context: distinct from every other instance's and from any sign session's. */
const itemContext = (b: Ctx, k: number): Ctx => ({ c: b.c, session: tagged('mpchsm/ecdsa/presign/item', b.session, k) });
const agreementOf = (b: Ctx): string => toHex(tagged('mpchsm/ecdsa/presign/agree', b.session));
const viewOf = (b: Ctx, signers: readonly PartyId[], commitments: ReadonlyMap<PartyId, readonly string[]>): string =>
  toHex(tagged('mpchsm/ecdsa/presign/view', b.session, signers.map((id) => `${id}:${commitments.get(id)!.join('.')}`).join(',')));

const round1 = (c: EcdsaCurve, count: number) => z.strictObject({ agreement: hexSchema.length(64), items: z.array(round1Item(c)).length(count) });
const round2 = (c: EcdsaCurve, count: number) => z.strictObject({ view: hexSchema.length(64), items: z.array(round2Item(c)).length(count) });

/** Round 1: start `count` instances, each committing to its R_i and starting a VOLE as Bob with every peer. */
export function ecdsaPresignStart(keyShare: EcdsaKeyShare, request: EcdsaPresignRequest, rng: Rng): Step<EcdsaPresignState> {
  const { key, secret } = parseEcdsaKeyShare(keyShare);
  if (!sessionSchema.safeParse(request.session).success) throw new ProtocolError('bad-parameters', 'invalid session id');
  if (!Number.isInteger(request.count) || request.count < 1 || request.count > MAX_PRESIGN_BATCH) throw new ProtocolError('bad-parameters', `a batch is 1 to ${MAX_PRESIGN_BATCH} presignatures`);
  const { signers, pairs } = checkSigners(key, request.signers);
  const base = { curve: key.curve, session: request.session, self: key.self, signers, keySession: key.session, publicKey: key.publicKey, count: request.count };
  const b = batchContext(base);
  const started = Array.from({ length: request.count }, (_, k) => instanceStart(itemContext(b, k), key, secret, signers, pairs, rng));
  const agreement = agreementOf(b);
  const outbound: Message[] = [...pairs.keys()].map((j) => ({ session: request.session, round: 1, from: key.self, to: j, payload: { agreement, items: started.map((s) => s.items.get(j)!) } }));
  return { state: { ...base, phase: 'round1', items: started.map((s) => s.keep) }, outbound };
}

/**
 * Advances a signer by one round given the round's inbound messages. The state passed in is
 * consumed. After round 2 the output is this signer's part of every presignature of the batch.
 */
export function ecdsaPresignStep(state: EcdsaPresignState, inbound: readonly Message[], rng: Rng): Step<EcdsaPresignState, EcdsaPresignature[]> {
  if (state.phase === 'consumed') throw new ProtocolError('consumed', 'this presigning state was already used');
  const b = batchContext(state);
  const { c } = b;
  const { session, self, signers, count } = state;
  const base = { curve: state.curve, session, self, signers, keySession: state.keySession, publicKey: state.publicKey, count };
  const perItem = <T>(got: ReadonlyMap<PartyId, { items: T[] }>, k: number) => new Map([...got].map(([j, m]) => [j, m.items[k]!] as const));
  switch (state.phase) {
    case 'round1': {
      const got = collectRound(inbound, { session, round: 1, self, senders: signers, broadcast: false, payload: round1(c, count) });
      const agreement = agreementOf(b);
      for (const [j, m] of got) if (m.agreement !== agreement) throw new ProtocolError('inconsistent-view', 'presigns with other signers, key or batch', j);
      const s = { ...state };
      consume(state);
      const commitments = new Map<PartyId, string[]>([[self, s.items.map((k) => k.commitment)]]);
      for (const [j, m] of got) commitments.set(j, m.items.map((i) => i.commitment));
      const view = viewOf(b, signers, commitments);
      const answered = s.items.map((keep, k) => instanceRespond(itemContext(b, k), self, keep, perItem(got, k), rng));
      const outbound: Message[] = [...got.keys()].map((j) => ({ session, round: 2, from: self, to: j, payload: { view, items: answered.map((a) => a.items.get(j)!) } }));
      return { state: { ...base, phase: 'round2', view, items: answered.map((a) => a.keep) }, outbound };
    }
    case 'round2': {
      const got = collectRound(inbound, { session, round: 2, self, senders: signers, broadcast: false, payload: round2(c, count) });
      const s = { ...state };
      consume(state);
      for (const [j, m] of got) if (m.view !== s.view) throw new ProtocolError('inconsistent-view', 'saw other round-1 commitments', j);
      const output = s.items.map((keep, k): EcdsaPresignature => {
        const r = instanceFinish(itemContext(b, k), self, s.publicKey, keep, perItem(got, k), rng);
        return { id: `${session}-${k}`, curve: s.curve, keySession: s.keySession, publicKey: s.publicKey, signers: [...signers], self, R: encodeWire(r.R), u: scalarBytes(c, r.u), v: scalarBytes(c, r.v), phi: scalarBytes(c, r.phi) };
      });
      return { state: { phase: 'consumed', session, self }, outbound: [], output };
    }
  }
}

/** δ: public, fixed by the presignature and the digest together (nobody can pick R' after the digest). */
export function presignDelta(p: Pick<EcdsaPresignature, 'id' | 'curve' | 'keySession' | 'publicKey' | 'signers' | 'R'>, digest: Uint8Array): bigint {
  return hashToScalar(getCurve(p.curve), 'mpchsm/ecdsa/presign/delta', p.curve, p.keySession, p.publicKey, p.id, fromHex(p.R), digest, p.signers.join(','));
}

/**
 * This signer's share of the signature on `digest` with a presignature: the round-3 broadcast of
 * sign.ts, {u'_i, w_i, R'}, which ecdsaCombine sums. The caller must have taken the presignature
 * out of its table first: it must never be used again, whatever happens here.
 */
export function ecdsaPresignedShare(p: EcdsaPresignature, request: { session: string; digest: Uint8Array }): Message {
  checkDigest(request.digest);
  const c = getCurve(p.curve);
  const delta = presignDelta(p, request.digest);
  const Rp = decodeWire(c, p.R).add(mulBase(c, delta));
  if (Rp.is0()) throw new ProtocolError('invalid-point', 'R′ is the identity');
  const rx = c.Fn.create(Rp.toAffine().x);
  if (rx === 0n) throw new ProtocolError('invalid-point', 'x(R′) is zero mod n');
  const phi = bytesToBigInt(p.phi);
  const u = c.Fn.add(bytesToBigInt(p.u), c.Fn.mul(delta, phi));
  const w = c.Fn.add(c.Fn.mul(digestToScalar(c, request.digest), phi), c.Fn.mul(rx, bytesToBigInt(p.v)));
  return { session: request.session, round: 3, from: p.self, to: 'all', payload: { u: encodeScalar(c, u), w: encodeScalar(c, w), R: encodeWire(Rp) } };
}
