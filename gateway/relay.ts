// Drives a multi-round signer protocol from the gateway: it starts every participant, then
// hands each one the envelopes addressed to it (or broadcast by the others) round after round.
// The gateway only routes: the envelopes are signed, and encrypted where they carry secrets.
import type { Relayed } from '../contract/signer-rpc/relayed.js';
import { inboxOf } from '../signers/protocols/common.js';
import type { SignerClient } from './signer-client.js';

export interface RelayAnswer {
  outbound: Relayed[];
}

/** Starts the protocol at every client, relays `rounds` more rounds, returns the last answers. */
export async function relayRounds<T extends RelayAnswer>(
  clients: readonly SignerClient[],
  paths: { start: string; step: string },
  start: Record<string, unknown> & { session: string },
  rounds: number,
): Promise<T[]> {
  let answers: RelayAnswer[] = await Promise.all(clients.map((c) => c.call<RelayAnswer>(paths.start, start)));
  for (let r = 0; r < rounds; r++) {
    const messages = answers.flatMap((a) => a.outbound);
    answers = await Promise.all(
      clients.map((c) => c.call<RelayAnswer>(paths.step, { session: start.session, inbound: inboxOf(messages, c.id) })),
    );
  }
  return answers as T[];
}
