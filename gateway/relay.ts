// Drives a multi-round signer protocol from the gateway: it starts every participant, then
// hands each one the envelopes addressed to it (or broadcast by the others) round after round.
// The gateway only routes: the envelopes are signed, and encrypted where they carry secrets.
import type { z } from 'zod';
import type { Relayed } from '../contract/signer-rpc/relayed.js';
import type { roundAnswer, Route, stepRequest } from '../contract/signer-rpc/route.js';
import { inboxOf } from '../signers/protocols/common.js';
import type { SignerClient } from './signer-client.js';

/** A protocol's start and step routes (contract/signer-rpc/: dkg, ecdsa.keygen, ecdsa.sign, reshare). */
export interface Rounds<Q extends z.ZodType<unknown, { session: string }>, A extends z.ZodType<{ outbound: Relayed[] }>> {
  start: Route<Q, typeof roundAnswer>;
  step: Route<typeof stepRequest, A>;
}

/**
 * Starts the protocol at every client, relays `rounds` more rounds (at least one), returns the
 * last answers. `startTimeoutMs` bounds the start alone (a planner with a spare signer fails over sooner).
 */
export async function relayRounds<Q extends z.ZodType<unknown, { session: string }>, A extends z.ZodType<{ outbound: Relayed[] }>>(
  clients: readonly SignerClient[],
  routes: Rounds<Q, A>,
  start: z.input<Q>,
  rounds: number,
  startTimeoutMs?: number,
): Promise<z.output<A>[]> {
  let messages = (await Promise.all(clients.map((c) => c.call(routes.start, start, { timeoutMs: startTimeoutMs })))).flatMap((a) => a.outbound);
  let answers: z.output<A>[] = [];
  for (let r = 0; r < rounds; r++) {
    answers = await Promise.all(clients.map((c) => c.call(routes.step, { session: start.session, inbound: inboxOf(messages, c.id) })));
    messages = answers.flatMap((a) => a.outbound);
  }
  return answers;
}
