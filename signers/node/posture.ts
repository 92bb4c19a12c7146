// What a signer says about itself to an auditor's host (contract/posture/report.ts): its signed
// posture report over the asker's nonce, and its audit log in pages (audit/page.ts). Both read
// only; the gateway relays them and cannot forge the report nor cut a page unnoticed, since the
// report signs the log's head. The report names the last backup made of this signer, as its
// directory records it (contract/posture/backups.ts), and a TPM-sealed signer's PCRs as it reads them now.
import path from 'node:path';
import type { AuditLog } from '../../audit/log.js';
import { readLogPage } from '../../audit/page.js';
import type { IdentitySecrets } from '../../contract/identity/identity.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';
import { lastBackupMade } from '../../contract/posture/backups.js';
import { reportSelf } from '../../contract/posture/report.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import type { Answer } from './rpc.js';
import type { PolicyGuard } from './guard/index.js';
import { inventory } from './inventory.js';
import type { OwnTpm } from './admission.js';
import { DEFAULT_QUOTE_PCRS, readPcrDigest } from './tpm/attestation.js';

const { posture, audit } = signerRoutes;

export class Posture {
  constructor(
    private readonly identity: IdentitySecrets,
    private readonly store: ShareStore,
    private readonly guard: PolicyGuard,
    private readonly audit: AuditLog,
    private readonly tpm: OwnTpm | undefined,
  ) {}

  /** The signed report; the data directory is the one holding the store. Asked, with each key share's package digest (inventory.ts). */
  async report(body: unknown): Promise<Answer<typeof posture.report>> {
    const { nonce, packages: listed } = posture.report.request.parse(body);
    const { identity, store, guard, audit: log } = this;
    const dataDir = path.dirname(store.dir);
    const lastBackup = lastBackupMade(dataDir);
    const packages = listed ? Object.fromEntries((await inventory(store, guard, {})).flatMap((k) => (k.package ? [[`key.${k.keyId}`, k.package]] : []))) : undefined;
    // A TPM that does not answer now leaves the values out; the report says the rest.
    const pcrs = this.tpm && (await readPcrDigest(this.tpm.tcti).then((digest) => ({ selection: DEFAULT_QUOTE_PCRS, digest }), () => undefined));
    const report = reportSelf({ identity, role: 'signer', nonce, dataDir, seal: store.sealerKind, epoch: guard.epoch, auditHead: log.head(), ...(lastBackup ? { lastBackup } : {}), ...(pcrs ? { pcrs } : {}), ...(packages ? { packages } : {}) });
    return { report };
  }

  /** A page of this signer's own log, up to its durable head now. */
  readAudit(body: unknown): Promise<Answer<typeof audit.read>> {
    const { from, limit } = audit.read.request.parse(body);
    return readLogPage(this.audit.file, this.audit.head(), from, limit);
  }
}
