// What a signer says about itself to an auditor's host (contract/posture/report.ts): its signed
// posture report over the asker's nonce, and its audit log in pages (audit/page.ts). Both read
// only; the gateway relays them and cannot forge the report nor cut a page unnoticed, since the
// report signs the log's head.
import path from 'node:path';
import type { AuditLog } from '../../audit/log.js';
import { readLogPage } from '../../audit/page.js';
import type { IdentitySecrets } from '../../contract/identity/identity.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';
import { reportSelf } from '../../contract/posture/report.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import type { Answer } from './rpc.js';
import type { PolicyGuard } from './guard/index.js';

const { posture, audit } = signerRoutes;

export class Posture {
  constructor(
    private readonly identity: IdentitySecrets,
    private readonly store: ShareStore,
    private readonly guard: PolicyGuard,
    private readonly audit: AuditLog,
  ) {}

  /** The signed report; the data directory is the one holding the store. */
  report(body: unknown): Answer<typeof posture.report> {
    const { nonce } = posture.report.request.parse(body);
    const { identity, store, guard, audit: log } = this;
    return { report: reportSelf({ identity, role: 'signer', nonce, dataDir: path.dirname(store.dir), seal: store.sealerKind, epoch: guard.epoch, auditHead: log.head() }) };
  }

  /** A page of this signer's own log, up to its durable head now. */
  readAudit(body: unknown): Promise<Answer<typeof audit.read>> {
    const { from, limit } = audit.read.request.parse(body);
    return readLogPage(this.audit.file, this.audit.head(), from, limit);
  }
}
