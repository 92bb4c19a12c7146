// MpcHsm.Posture and MpcHsm.AuditLog (kms/mpchsm.ts): the evidence `mpchsm doctor` and `mpchsm
// audit verify` check from an administrator's or auditor's own host. The gateway asks every
// active signer for its report over the asker's nonce and adds its own, signed with its identity;
// it relays pages of its own log or a signer's. It is only a relay: a signer's report is signed
// by the signer over the asker's fresh nonce (no forgery, no replay), and each report signs its
// log's head, so a page cut short by the gateway is caught (contract/posture/report.ts).
import type { AuditLog } from '../audit/log.js';
import { readLogPage, type LogPage } from '../audit/page.js';
import type { IdentitySecrets } from '../contract/identity/identity.js';
import { reportSelf, type SignedPosture } from '../contract/posture/report.js';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import type { Cluster } from './cluster.js';
import { gatewayPolicy } from './governance.js';
import { KmsError } from './kms/errors.js';

export interface PostureDeps {
  cluster: Pick<Cluster, 'active'>;
  audit: AuditLog;
  /** The gateway's own directory (whose owner is its admin) and identity. */
  dir: string;
  identity: IdentitySecrets;
  /** Its store's sealer kind. */
  sealKind: string;
}

export interface ClusterPosture {
  Gateway: SignedPosture;
  /** Each active signer's report as it answered, or why it could not be had. */
  Signers: { Name: string; Report?: unknown; Error?: string }[];
}

/** Every active signer's report over `nonce` (with its key shares' package digests, asked), and the gateway's own. */
export async function clusterPosture(d: PostureDeps, nonce: string, packages = false): Promise<ClusterPosture> {
  // Taken before the signers are asked: every gateway entry up to it was written before their
  // reports, so an auditor can cross-check the logs cut at the reported heads.
  const auditHead = d.audit.head();
  const signers = await Promise.all(
    d.cluster.active.map(async (c) => {
      try {
        return { Name: c.name, Report: (await c.call(signerRoutes.posture.report, { nonce, ...(packages ? { packages: true as const } : {}) })).report };
      } catch (e) {
        return { Name: c.name, Error: (e as Error).message.slice(0, 500) };
      }
    }),
  );
  const own = reportSelf({ identity: d.identity, role: 'gateway', nonce, dataDir: d.dir, seal: d.sealKind, epoch: { governanceVersion: gatewayPolicy().governance.version }, auditHead });
  return { Gateway: own, Signers: signers };
}

/** A page of the gateway's own log (`party` "gateway") or an active signer's. */
export async function auditLogPage(d: PostureDeps, party: string, from: number, limit: number): Promise<LogPage> {
  if (party === 'gateway') return readLogPage(d.audit.file, d.audit.head(), from, limit);
  const client = d.cluster.active.find((c) => c.name === party);
  if (!client) throw new KmsError('NotFoundException', `no active signer is named ${party}`);
  return client.call(signerRoutes.audit.read, { from, limit });
}
