// Threshold ECDSA key generation for DKLs23: a Pedersen/Feldman DKG (as dkg.ts runs it, here for
// the ECDSA curves including P-384) merged with the pairwise setup DKLs23 signing needs
// (pairing.ts, which resharing reuses), in two rounds, all point-to-point (p2p messages travel
// encrypted end to end; the broadcast parts are echoed so equivocation is caught, as in dkg.ts).
//
//   round 1, to each j:  Feldman commitment C_i + proof of knowledge of a_i0 (same for every j);
//                        base-OT sender message A for the pair (i extension receiver, j sender);
//                        a random contribution to the pair's zero-sharing seed
//   round 2, to each j:  f_i(j) (secret); digests of the round-1 broadcast parts i received;
//                        base-OT receiver message B for the pair (j extension receiver, i sender),
//                        with i's fresh correlation Δ as choice bits
//   output:              Shamir share s_i, public key, verifying shares, and per peer both
//                        directions' base-OT keys and the zero-sharing seed

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
} from '../common.js';
import {
  hexSchema,
  partyIdSchema,
  toHex,
  type PartyId,
  type Rng,
} from '../../../contract/bytes.js';
import { evalCommitment, evalPoly, sumCommitments } from '../shamir.js';
import { decodePoint, decodeScalar, ecdsaCurveNames, encodePoint, encodeScalar, getCurve, hashToScalar, mulBase, randomScalar, scalarBytes, secretScalar, tagged, type EcPoint, type EcdsaCurve } from './curves.js';
import { bytesToBigInt } from '../integers.js';
import type { EcdsaKeyShare } from './keyshare.js';
import { pairingFinish, pairingRespond, pairingRoundASchema, pairingRoundBSchema, pairingStart, pairingStateASchema, pairingStateBSchema, type PairingScope } from './pairing.js';

const sessionSchema = messageSchema.shape.session;
const hexBytes = (n: number) => hexSchema.length(2 * n);

export const ecdsaKeygenParamsSchema = z.strictObject({
  curve: z.enum(ecdsaCurveNames),
  session: sessionSchema,
  self: partyIdSchema,
  participants: z.array(partyIdSchema).min(1),
  threshold: z.number().int().min(1),
});
export type EcdsaKeygenParams = z.infer<typeof ecdsaKeygenParamsSchema>;

const round1Payload = (c: EcdsaCurve) =>
  pairingRoundASchema.extend({
    commitment: z.array(hexBytes(c.pointLength)).min(1).max(0xffff),
    /** Proof of knowledge of a_i0: R ‖ μ. */
    proof: hexBytes(c.pointLength + c.scalarLength),
  });
type Round1Payload = z.infer<ReturnType<typeof round1Payload>>;

const round2Payload = (c: EcdsaCurve) =>
  z.strictObject({
    /** f_sender(recipient): secret, raw bytes inside the encryption (signers/node/relay.ts). */
    share: secretBytesSchema(c.scalarLength),
    views: z.record(z.string(), hexBytes(32)),
    ot: pairingRoundBSchema,
  });

const broadcastSchema = z.strictObject({ commitment: z.array(hexSchema).min(1), proof: hexSchema });

export const ecdsaKeygenStateSchema = z.discriminatedUnion('phase', [
  ecdsaKeygenParamsSchema.extend({
    phase: z.literal('round1'),
    /** Secret polynomial coefficients a_0..a_{t-1}, scalar bytes. */
    coefficients: z.array(secretBytesSchema()).min(1),
    broadcast: broadcastSchema,
    /** Pairwise setup with each peer after its round a (secret). */
    ...pairingStateASchema.shape,
  }),
  ecdsaKeygenParamsSchema.extend({
    phase: z.literal('round2'),
    coefficients: z.array(secretBytesSchema()).min(1),
    broadcasts: z.record(z.string(), broadcastSchema),
    views: z.record(z.string(), hexSchema),
    /** Pairwise setup with each peer after its round b (secret). */
    ...pairingStateBSchema.shape,
  }),
  ecdsaKeygenParamsSchema.extend({ phase: z.literal('done'), publicKey: hexSchema }),
]);
export type EcdsaKeygenState = z.infer<typeof ecdsaKeygenStateSchema>;

export const encodeEcdsaKeygenState = (s: EcdsaKeygenState): Uint8Array => encodeState(s);
export const decodeEcdsaKeygenState = (b: Uint8Array): EcdsaKeygenState => decodeState(b, ecdsaKeygenStateSchema);

const paramsOf = (s: EcdsaKeygenState): EcdsaKeygenParams => ({ curve: s.curve, session: s.session, self: s.self, participants: s.participants, threshold: s.threshold });

const keygenContext = (p: EcdsaKeygenParams): Uint8Array =>
  tagged('mpchsm/ecdsa/keygen', p.curve, p.session, String(p.threshold), sortIds(p.participants).join(','));

const pairingScope = (p: EcdsaKeygenParams): PairingScope => ({ tag: 'mpchsm/ecdsa/keygen', context: keygenContext(p), self: p.self });

const pokChallenge = (c: EcdsaCurve, p: EcdsaKeygenParams, id: PartyId, C0: EcPoint, R: EcPoint): bigint =>
  hashToScalar(c, 'mpchsm/ecdsa/keygen/pok', keygenContext(p), id, C0.toBytes(), R.toBytes());

const viewDigest = (p: EcdsaKeygenParams, from: PartyId, b: { commitment: string[]; proof: string }): string =>
  toHex(tagged('mpchsm/ecdsa/keygen/view', keygenContext(p), from, b.commitment.join(','), b.proof));

/** Round 1: polynomial, commitment and proof; a base-OT sender message and zero-seed share per peer. */
export function ecdsaKeygenStart(params: EcdsaKeygenParams, rng: Rng): Step<EcdsaKeygenState> {
  const parsed = ecdsaKeygenParamsSchema.safeParse(params);
  if (!parsed.success) throw new ProtocolError('bad-parameters', `keygen parameters: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  const p = { ...parsed.data, participants: sortIds(parsed.data.participants) };
  checkParticipants(p.participants, p.threshold, p.self);
  const c = getCurve(p.curve);
  const coeffs = Array.from({ length: p.threshold }, () => randomScalar(c, rng));
  const C = coeffs.map((a) => mulBase(c, a));
  const k = randomScalar(c, rng);
  const R = mulBase(c, k);
  const mu = c.Fn.add(k, c.Fn.mul(coeffs[0]!, pokChallenge(c, p, p.self, C[0]!, R)));
  const broadcast = { commitment: C.map(encodePoint), proof: encodePoint(R) + encodeScalar(c, mu) };
  const pairing = pairingStart(pairingScope(p), p.participants.filter((j) => j !== p.self), rng);
  const outbound: Message[] = [...pairing.outbound].map(([j, a]) => ({ session: p.session, round: 1, from: p.self, to: j, payload: { ...broadcast, ...a } satisfies Round1Payload }));
  return { state: { ...p, phase: 'round1', coefficients: coeffs.map((a) => scalarBytes(c, a)), broadcast, ...pairing.state }, outbound };
}

function checkBroadcast(c: EcdsaCurve, p: EcdsaKeygenParams, from: PartyId, b: { commitment: string[]; proof: string }): EcPoint[] {
  if (b.commitment.length !== p.threshold) throw new ProtocolError('malformed', `commitment has ${b.commitment.length} points, expected ${p.threshold}`, from);
  const C = b.commitment.map((h) => decodePoint(c, h, from));
  const R = decodePoint(c, b.proof.slice(0, 2 * c.pointLength), from);
  const mu = decodeScalar(c, b.proof.slice(2 * c.pointLength), from);
  if (!c.Point.BASE.multiplyUnsafe(mu).equals(R.add(C[0]!.multiplyUnsafe(pokChallenge(c, p, from, C[0]!, R)))))
    throw new ProtocolError('bad-proof', 'proof of knowledge of the secret coefficient does not verify', from);
  return C;
}

/**
 * Advances a party by one round given all of the round's inbound messages (own excluded, any
 * order). Every message is point-to-point and must be encrypted to its recipient by the transport
 * (round 2 carries Shamir shares). The final step outputs the key share.
 */
export function ecdsaKeygenStep(state: EcdsaKeygenState, inbound: readonly Message[], rng: Rng): Step<EcdsaKeygenState, EcdsaKeyShare> {
  const p = paramsOf(state);
  const c = getCurve(p.curve);
  const { session, self, participants } = p;
  const peers = participants.filter((j) => j !== self);
  switch (state.phase) {
    case 'round1': {
      const got = collectRound(inbound, { session, round: 1, self, senders: participants, broadcast: false, payload: round1Payload(c) });
      for (const [from, m] of got) checkBroadcast(c, p, from, m);
      const broadcasts: Record<string, { commitment: string[]; proof: string }> = { [self]: state.broadcast };
      const views: Record<string, string> = {};
      for (const [from, m] of got) broadcasts[from] = { commitment: m.commitment, proof: m.proof };
      for (const id of participants) views[id] = viewDigest(p, id, broadcasts[id]!);
      // The curves' arithmetic is noble's: the polynomial is a bigint for this step only.
      const coeffs = state.coefficients.map((b) => bytesToBigInt(b));
      const pairing = pairingRespond(pairingScope(p), { ot: state.ot, zero: state.zero }, got, rng);
      const outbound: Message[] = peers.map((j) => ({
        session,
        round: 2,
        from: self,
        to: j,
        payload: { share: scalarBytes(c, evalPoly(c.Fn, coeffs, BigInt(j))), views, ot: pairing.outbound.get(j)! },
      }));
      return { state: { ...p, phase: 'round2', coefficients: state.coefficients, broadcasts, views, ...pairing.state }, outbound };
    }
    case 'round2': {
      const got = collectRound(inbound, { session, round: 2, self, senders: participants, broadcast: false, payload: round2Payload(c) });
      checkViews(got, state.views, participants, self);
      const commitments = new Map<PartyId, EcPoint[]>();
      for (const id of participants) commitments.set(id, state.broadcasts[String(id)]!.commitment.map((h) => decodePoint(c, h, id)));
      const x = BigInt(self);
      let secret = evalPoly(c.Fn, state.coefficients.map((b) => bytesToBigInt(b)), x);
      for (const [k, m] of got) {
        // Zero, which an honest sender all but never sends, is refused with the out of range.
        const share = secretScalar(c, m.share, k);
        if (!c.Point.BASE.multiplyUnsafe(share).equals(evalCommitment(commitments.get(k)!, x)))
          throw new ProtocolError('bad-share', 'share is inconsistent with the sender’s commitments', k);
        secret = c.Fn.add(secret, share);
      }
      const groupC = sumCommitments([...commitments.values()], c.Point.ZERO);
      if (c.Fn.is0(secret) || !mulBase(c, secret).equals(evalCommitment(groupC, x))) throw new ProtocolError('bad-share', 'combined share does not match the group commitment');
      const verifyingShares: Record<string, string> = {};
      for (const id of participants) verifyingShares[id] = encodePoint(evalCommitment(groupC, BigInt(id)));
      wipeSecrets(state.coefficients); // the polynomial's use ends here (the caller wipes the rest)
      const pairs = pairingFinish(pairingScope(p), { ot: state.ot, alice: state.alice, zeroSeeds: state.zeroSeeds }, new Map([...got].map(([j, m]) => [j, m.ot])));
      const publicKey = encodePoint(groupC[0]!);
      const output: EcdsaKeyShare = {
        protocol: 'dkls23',
        curve: p.curve,
        threshold: p.threshold,
        participants,
        publicKey,
        verifyingShares,
        session,
        self,
        secretShare: scalarBytes(c, secret),
        pairs,
      };
      return { state: { ...p, phase: 'done', publicKey }, outbound: [], output };
    }
    case 'done':
      throw new ProtocolError('bad-parameters', 'key generation already finished');
  }
}

