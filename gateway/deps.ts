// What the gateway's parts are given at start (gateway/main.ts): the cluster, the configuration,
// the principals, the facades' shared state, the log and the gateway's own transcript. Types
// only; a part takes the slice it uses (`Pick<GatewayDeps, 'cluster' | 'audit'>`).
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.js';
import type { IdentitySecrets } from '../contract/identity/identity.js';
import type { Cluster } from './cluster.js';
import type { GatewayConfig } from './config.js';
import type { KmsState } from './kms/state.js';
import type { PrincipalRegistry } from './principals.js';

export interface GatewayDeps {
  config: GatewayConfig;
  cluster: Cluster;
  principals: PrincipalRegistry;
  log: Logger;
  dir: string;
  /** Aliases and key policies, shared by both facades (PKCS#11 labels are aliases). */
  kmsState: KmsState;
  /** The gateway's own transcript: every request is recorded before its answer leaves. */
  audit: AuditLog;
  /** The gateway's identity (its posture report is signed with it, gateway/posture.ts). */
  identity: IdentitySecrets;
  /** The sealer kind of the gateway's store, for its posture report. */
  sealKind: string;
}
