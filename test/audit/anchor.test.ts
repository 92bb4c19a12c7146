// The signer's side of the audit anchor (contract/signer-rpc/audit.ts): it records the gateway's
// head it is sent in its own log, so the gateway's last entries are anchored. A gateway that lies
// — floods anchors, sends one without a head, or an older head — gets no more than a bounded
// number of entries, and never a head older than the last it anchored.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../audit/log.js';
import { readLog } from '../../audit/verify.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import { identityFromSecrets } from '../../contract/identity/identity.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { defaultGovernance, signGovernance } from '../../policy/governance.js';
import type { SignerConfig } from '../../signers/node/config.js';
import { PolicyGuard } from '../../signers/node/guard/index.js';
import { SignerService } from '../../signers/node/service.js';
import { ACCOUNT, ADMINS, CLUSTER, REGION } from '../policy/fixtures.js';
import { seededRng } from '../helpers/rng.js';

const identity = (name: string) => identityFromSecrets(name, seededRng(`${name}/sign`)(32), seededRng(`${name}/kex`)(32));
const dir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-anchor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const head = (seq: number) => ({ seq, hash: seq.toString(16).padStart(64, '0') });

describe('the audit anchor at a signer', () => {
  it('records a later gateway head, at most one per 200 ms, and refuses an anchor without a head', async () => {
    const self = identity('signer1');
    const gateway = identity('gateway');
    const config: SignerConfig = { name: 'signer1', id: 1, host: '127.0.0.1', port: 1, threshold: 1, gateway: gateway.public, peers: [{ name: 'signer1', id: 1, identity: self.public }] };
    const store = await ShareStore.init(path.join(dir, 'store'), 'operator secret', { scrypt: { N: 2 ** 10, r: 8, p: 1 } });
    const document = defaultGovernance(CLUSTER, ADMINS.map(({ name, approvalKey }) => ({ name, approvalKey })));
    await PolicyGuard.enrol(store, {
      clusterId: CLUSTER,
      region: REGION,
      account: ACCOUNT,
      principals: ADMINS.map((a, i) => ({ name: a.name, role: 'admin', accessKeyId: `AKIAADMIN${i}0000000`, secretAccessKey: 'x'.repeat(40), pinRequestKey: 'ab'.repeat(32) })),
      governance: { document, signatures: ADMINS.map((a) => signGovernance(document, a.name, a.secretKey)) },
    });
    const file = path.join(dir, 'audit.jsonl');
    const audit = await AuditLog.open(file, self, { checkpointIntervalMs: 0 });
    try {
      const service = await SignerService.start({ config, store, identity: self, log: pino({ level: 'silent' }), audit });
      const anchor = service.routes()[signerRoutes.audit.anchor.path]!;
      expect(await anchor({}, { callerHead: head(10) })).toEqual({ anchored: true, head: head(10) });
      // A flood: answered, not recorded.
      for (let i = 11; i < 60; i++) expect(await anchor({}, { callerHead: head(i) })).toMatchObject({ anchored: false, head: head(10) });
      await new Promise((r) => setTimeout(r, 250));
      // An older head is not recorded over a later one.
      expect(await anchor({}, { callerHead: head(5) })).toMatchObject({ anchored: false, head: head(10) });
      expect(await anchor({}, { callerHead: head(60) })).toEqual({ anchored: true, head: head(60) });
      await expect(anchor({}, {})).rejects.toThrow(/carries the gateway head/);
      await expect(anchor({ head: head(70) }, { callerHead: head(70) })).rejects.toThrow();
    } finally {
      await audit.close();
      store.close();
    }
    const entries = (await readLog(file)).lines.flatMap((l) => (l.entry.kind === 'event' && l.entry.op === 'audit.anchor' ? [l.entry] : []));
    expect(entries.filter((e) => e.outcome === 'ok').map((e) => [e.request, e.heads])).toEqual([
      ['audit-anchor', [{ party: 'gateway', ...head(10) }]],
      ['audit-anchor', [{ party: 'gateway', ...head(60) }]],
    ]);
  });
});
