// One signer in-process, on an enrolled store in a temporary directory, for tests that call its
// routes directly (no process, no network): seeded identities, the test fixtures' principals and
// governance, its own audit log beside the store.
import path from 'node:path';
import pino from 'pino';
import { AuditLog } from '../../audit/log.js';
import { identityFromSecrets, type IdentitySecrets } from '../../contract/identity/identity.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import { defaultGovernance, signGovernance } from '../../policy/governance.js';
import type { SignerConfig } from '../../signers/node/config.js';
import { PolicyGuard } from '../../signers/node/guard/index.js';
import { SignerService } from '../../signers/node/service.js';
import { ACCOUNT, ADMINS, CLUSTER, REGION } from '../policy/fixtures.js';
import { seededRng } from './rng.js';

export const seededIdentity = (name: string): IdentitySecrets => identityFromSecrets(name, seededRng(`${name}/sign`)(32), seededRng(`${name}/kex`)(32));

export interface EnrolledSigner {
  config: SignerConfig;
  store: ShareStore;
  self: IdentitySecrets;
  audit: AuditLog;
  /** Its audit log's file. */
  auditFile: string;
  start(): Promise<SignerService>;
  close(): Promise<void>;
}

/** signer1 of a one-signer cluster whose gateway is `gateway`, enrolled in `dir`. */
export async function enrolledSigner(dir: string, audit: { checkpointIntervalMs?: number } = {}): Promise<EnrolledSigner> {
  const self = seededIdentity('signer1');
  const config: SignerConfig = { name: 'signer1', id: 1, host: '127.0.0.1', port: 1, threshold: 1, gateway: seededIdentity('gateway').public, peers: [{ name: 'signer1', id: 1, identity: self.public }] };
  const store = await ShareStore.init(path.join(dir, 'store'), 'operator secret', { scrypt: { N: 2 ** 10, r: 8, p: 1 } });
  const document = defaultGovernance(CLUSTER, ADMINS.map(({ name, approvalKey }) => ({ name, approvalKey })));
  await PolicyGuard.enrol(store, {
    clusterId: CLUSTER,
    region: REGION,
    account: ACCOUNT,
    principals: ADMINS.map((a, i) => ({ name: a.name, role: 'admin', accessKeyId: `AKIAADMIN${i}0000000`, secretAccessKey: 'x'.repeat(40), pinRequestKey: 'ab'.repeat(32) })),
    governance: { document, signatures: ADMINS.map((a) => signGovernance(document, a.name, a.secretKey)) },
  });
  const auditFile = path.join(dir, 'audit.jsonl');
  const log = await AuditLog.open(auditFile, self, audit);
  return {
    config,
    store,
    self,
    audit: log,
    auditFile,
    start: () => SignerService.start({ config, store, identity: self, log: pino({ level: 'silent' }), audit: log }),
    close: async () => {
      await log.close();
      store.close();
    },
  };
}
