// What the cluster (cluster.ts) hands the scheme coordinators (rsa.ts, ecdsa.ts): the signing
// request, t-signer sessions through its planner, and key generation across every signer. Apart
// from cluster.ts, which uses the coordinators, so that they need not import it back.
import type { z } from 'zod';
import type { RequestEvidence } from '../contract/signer-rpc/authority.js';
import type { keygenAnswer } from '../contract/signer-rpc/route.js';
import type { ClusterSigningAlgorithm, MessageType, SigningAlgorithm } from '../contract/keys/specs.js';
import type { Trace } from './cluster-outcome.js';
import type { KeyRecord } from './keys.js';
import type { Rounds } from './relay.js';
import type { Attempt } from './planner.js';

export interface SignRequest {
  keyId: string;
  algorithm: ClusterSigningAlgorithm;
  messageType: MessageType;
  message: Uint8Array;
  trace?: Trace;
  /** The client's request and any approvals, which each signer checks before signing. */
  evidence?: RequestEvidence;
}

/** A request with one of AWS's algorithms (what ECDSA and EdDSA keys sign with). */
export type AwsSignRequest = SignRequest & { algorithm: SigningAlgorithm };

/** A key generation's start, as every scheme has it. */
export interface KeygenCommon {
  session: string;
  keyId: string;
  participants: number[];
  threshold: number;
}

export interface ClusterSessions {
  readonly config: { readonly threshold: number };
  /** Runs a t-signer session through the planner, turning failures into ClusterErrors. */
  runSession<T>(key: KeyRecord, session: (plan: Attempt) => Promise<T>): Promise<T>;
  /**
   * Key generation with every signer, relayed for the two rounds after the start; `body`
   * completes the start's body with the scheme's members. Answers the agreed public package.
   */
  generate<Q extends z.ZodType<unknown, { session: string }>, P>(target: { keyId: string; session: string }, trace: Trace, routes: Rounds<Q, typeof keygenAnswer>, body: (common: KeygenCommon) => z.input<Q>, parse: (pkg: unknown) => P): Promise<P>;
}
