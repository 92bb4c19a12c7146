// GenerateRandom at the gateway: t signers each contribute fresh random bytes for the client's own
// signed request (each checks it itself: signers/node/guard/random.ts), and the output is
// HKDF-SHA256 over the contributions, in signer-id order, salted with the session id. One
// honest signer's contribution makes the output unpredictable: neither the gateway nor any
// other signer chooses it.
import { hkdfSync, randomUUID } from 'node:crypto';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import { gatherTraced, type Trace } from './cluster-outcome.js';
import type { Attempt } from './planner.js';
import type { CallOptions, SignerClient } from './signer-client.js';

const INFO = 'mpchsm/GenerateRandom/v1';

export interface RandomRequest {
  numberOfBytes: number;
  trace: Trace;
  /** The client's signed GenerateRandom request. */
  evidence: unknown;
}

/** The output: HKDF-SHA256(ikm = contributions in signer-id order, salt = session) expanded to `length` bytes. */
export function combineContributions(session: string, contributions: readonly { id: number; contribution: Uint8Array }[], length: number): Uint8Array {
  const ikm = Buffer.concat([...contributions].sort((a, b) => a.id - b.id).map((c) => c.contribution));
  return new Uint8Array(hkdfSync('sha256', ikm, session, `${INFO}:${length}`, length));
}

/** One attempt: the first t contributions of a fresh session, combined. */
export async function gatherRandom(plan: Attempt, req: RandomRequest): Promise<Uint8Array> {
  const session = randomUUID();
  const ask = (c: SignerClient, opts: CallOptions) => c.call(signerRoutes.random.contribute, { session, numberOfBytes: req.numberOfBytes, evidence: req.evidence }, opts);
  // Every signer asked may contribute, so each is named, used or not.
  const { signers, answers } = await gatherTraced(plan, req.trace, session, ask);
  const contributions = answers.map((a, i) => ({ id: signers[i]!.id, contribution: Buffer.from(a.contribution, 'hex') }));
  return combineContributions(session, contributions, req.numberOfBytes);
}
