// What a scheme coordinator (rsa.ts, ecdsa.ts) is given by the cluster that makes it: key
// generation with every signer, t-signer sessions through the planner, the cluster's threshold;
// and the signing request it serves. Apart from cluster.ts, so that they need not import it back.
import type { MessageType, SigningAlgorithm } from '../contract/keys/specs.js';
import type { RequestEvidence } from '../contract/signer-rpc/authority.js';
import type { Trace } from './cluster-outcome.js';
import type { GatewayConfig } from './config.js';
import type { KeyRecord } from './keys.js';
import type { SignerClient } from './signer-client.js';

export interface SignRequest {
  keyId: string;
  algorithm: SigningAlgorithm;
  messageType: MessageType;
  message: Uint8Array;
  trace?: Trace;
  /** The client's request and any approvals, which each signer checks before signing. */
  evidence?: RequestEvidence;
}

/** The cluster as its coordinators use it (gateway/cluster.ts `Cluster`). */
export interface CoordinatorHost {
  readonly config: Pick<GatewayConfig, 'threshold'>;
  generate<P>(keyId: string, trace: Trace, proto: { start: string; step: string; rounds: number; params: Record<string, unknown> }, parse: (pkg: unknown) => P): Promise<P>;
  runSession<T>(key: KeyRecord, session: (chosen: SignerClient[]) => Promise<T>): Promise<T>;
}
