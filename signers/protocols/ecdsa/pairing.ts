// The pairwise setup DKLs23 signing needs between every two holders of a key: base OTs for both
// directions of the OT extension and a shared zero-sharing seed. Two message rounds between
// each pair, every message point-to-point (encrypted end to end by the transport). The pieces
// here are the per-round payload logic; a host protocol (key generation, resharing) carries
// them inside its own rounds and binds them to its own context.
//
//   round a, i → j:  base-OT sender message A for the pair (i extension receiver, j sender),
//                    i's random contribution to the pair's zero-sharing seed
//   round b, i → j:  base-OT receiver message B for the pair (j extension receiver, i sender),
//                    with i's fresh correlation Δ as choice bits
//   output:          per peer, both directions' base-OT keys and the zero-sharing seed

import { z } from 'zod';
import { ProtocolError, secretBytesSchema, sortIds } from '../common.js';
import { hexSchema, type PartyId, type Rng } from '../../../contract/bytes.js';
import { KAPPA, SEED_BYTES, baseOtReceive, baseOtSenderFinish, baseOtSenderStart } from './baseot.js';
import { tagged } from './curves.js';
import type { EcdsaPair } from './keyshare.js';

const hexBytes = (n: number) => hexSchema.length(2 * n);

/** Binds a pairwise setup to its host: `tag` names the protocol, `context` its session and parameters. */
export interface PairingScope {
  readonly tag: string;
  readonly context: Uint8Array;
  readonly self: PartyId;
}

const otSenderMsgSchema = z.strictObject({ A: hexBytes(33), proof: hexBytes(65) });
/** Round a, one per peer. */
export const pairingRoundASchema = z.strictObject({ ot: otSenderMsgSchema, zero: secretBytesSchema(32) });
export type PairingRoundA = z.infer<typeof pairingRoundASchema>;
/** Round b, one per peer. */
export const pairingRoundBSchema = z.strictObject({ B: z.array(hexBytes(33)).length(KAPPA) });
export type PairingRoundB = z.infer<typeof pairingRoundBSchema>;

const otSenderStateSchema = z.strictObject({ secret: secretBytesSchema(32), msg: otSenderMsgSchema });
/** Secret state after round a: our base-OT sender state and zero-seed contribution, per peer (secrets as bytes). */
export const pairingStateASchema = z.strictObject({ ot: z.record(z.string(), otSenderStateSchema), zero: z.record(z.string(), secretBytesSchema(32)) });
export type PairingStateA = z.infer<typeof pairingStateASchema>;
/** Secret state after round b: our base-OT sender state, extension-sender material and zero seed, per peer. */
export const pairingStateBSchema = z.strictObject({
  ot: z.record(z.string(), otSenderStateSchema),
  alice: z.record(z.string(), z.strictObject({ delta: secretBytesSchema(KAPPA / 8), keys: secretBytesSchema(KAPPA * SEED_BYTES) })),
  zeroSeeds: z.record(z.string(), secretBytesSchema(32)),
});
export type PairingStateB = z.infer<typeof pairingStateBSchema>;

/** Context of the base OTs of the pair whose extension receiver is `bob` and sender `alice`. */
const pairContext = (s: PairingScope, bob: PartyId, alice: PartyId): Uint8Array => tagged(`${s.tag}/pair`, s.context, bob, alice);

/** Round a: a base-OT sender message and a zero-seed contribution for each peer. */
export function pairingStart(s: PairingScope, peers: readonly PartyId[], rng: Rng): { state: PairingStateA; outbound: Map<PartyId, PairingRoundA> } {
  const state: PairingStateA = { ot: {}, zero: {} };
  const outbound = new Map<PartyId, PairingRoundA>();
  for (const j of peers) {
    const ot = baseOtSenderStart(pairContext(s, s.self, j), rng);
    const zero = Uint8Array.from(rng(32));
    state.ot[j] = { secret: ot.secret, msg: ot.msg };
    state.zero[j] = zero;
    outbound.set(j, { ot: ot.msg, zero: Uint8Array.from(zero) }); // its own copy: the relay wipes it once sealed
  }
  return { state, outbound };
}

/** Round b: answers each peer's base OT (checking its proof, naming the peer on failure) and fixes the zero seeds. */
export function pairingRespond(s: PairingScope, state: PairingStateA, got: ReadonlyMap<PartyId, PairingRoundA>, rng: Rng): { state: PairingStateB; outbound: Map<PartyId, PairingRoundB> } {
  const next: PairingStateB = { ot: state.ot, alice: {}, zeroSeeds: {} };
  const outbound = new Map<PartyId, PairingRoundB>();
  for (const j of sortIds([...got.keys()])) {
    const m = got.get(j)!;
    const own = state.zero[String(j)];
    if (own === undefined) throw new ProtocolError('unknown-sender', 'no pairwise setup was started with this party', j);
    // We are the base-OT receiver (extension sender) for the pair where j is the extension receiver.
    const delta = rng(KAPPA / 8);
    const r = baseOtReceive(pairContext(s, j, s.self), m.ot, delta, j, rng);
    next.alice[j] = { delta: Uint8Array.from(delta), keys: r.keys };
    delta.fill(0);
    const [lo, hi] = s.self < j ? [own, m.zero] : [m.zero, own];
    next.zeroSeeds[j] = tagged(`${s.tag}/zero-seed`, s.context, Math.min(s.self, j), Math.max(s.self, j), lo, hi);
    outbound.set(j, { B: r.B });
  }
  return { state: next, outbound };
}

/** Output: finishes our base OTs with each peer's answer (naming the peer on failure). */
export function pairingFinish(s: PairingScope, state: PairingStateB, got: ReadonlyMap<PartyId, PairingRoundB>): Record<string, EcdsaPair> {
  const pairs: Record<string, EcdsaPair> = {};
  for (const [j, m] of got) {
    const ot = state.ot[String(j)];
    const alice = state.alice[String(j)];
    const zeroSeed = state.zeroSeeds[String(j)];
    if (ot === undefined || alice === undefined || zeroSeed === undefined) throw new ProtocolError('unknown-sender', 'no pairwise setup with this party', j);
    const { keys0, keys1 } = baseOtSenderFinish(pairContext(s, s.self, j), ot.secret, ot.msg, m.B, j);
    // Copies: the setup's state is wiped when the step ends.
    pairs[j] = { discarded: false, zeroSeed: Uint8Array.from(zeroSeed), bob: { keys0, keys1 }, alice: { delta: Uint8Array.from(alice.delta), keys: Uint8Array.from(alice.keys) } };
  }
  return pairs;
}
