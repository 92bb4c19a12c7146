// Every path a signer serves is a route of contract/signer-rpc/routes.ts, and every route there
// is served: read from a real SignerService (on an enrolled store in a temporary directory) and
// from the newcomer's admission routes (signers/node/admission.ts), never from a copied list.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../audit/log.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import type { Route } from '../../contract/signer-rpc/route.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { defaultGovernance, signGovernance } from '../../policy/governance.js';
import { Admission } from '../../signers/node/admission.js';
import type { SignerConfig } from '../../signers/node/config.js';
import { PolicyGuard } from '../../signers/node/guard/index.js';
import { SignerService } from '../../signers/node/service.js';
import { identityFromSecrets } from '../../contract/identity/identity.js';
import { ACCOUNT, ADMINS, CLUSTER, REGION } from '../policy/fixtures.js';
import { seededRng } from '../helpers/rng.js';

const identity = (name: string) => identityFromSecrets(name, seededRng(`${name}/sign`)(32), seededRng(`${name}/kex`)(32));
const dir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-routes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The paths of a table of routes, however deep its families nest. */
const pathsOf = (table: object): string[] =>
  Object.values(table).flatMap((v: Route | object) => ('path' in v && typeof v.path === 'string' ? [v.path] : pathsOf(v)));

async function servedPaths(): Promise<string[]> {
  const self = identity('signer1');
  const config: SignerConfig = { name: 'signer1', id: 1, host: '127.0.0.1', port: 1, threshold: 1, gateway: identity('gateway').public, peers: [{ name: 'signer1', id: 1, identity: self.public }] };
  const store = await ShareStore.init(path.join(dir, 'store'), 'operator secret', { scrypt: { N: 2 ** 10, r: 8, p: 1 } });
  const document = defaultGovernance(CLUSTER, ADMINS.map(({ name, approvalKey }) => ({ name, approvalKey })));
  await PolicyGuard.enrol(store, {
    clusterId: CLUSTER,
    region: REGION,
    account: ACCOUNT,
    principals: ADMINS.map((a, i) => ({ name: a.name, role: 'admin', accessKeyId: `AKIAADMIN${i}0000000`, secretAccessKey: 'x'.repeat(40), pinRequestKey: 'ab'.repeat(32) })),
    governance: { document, signatures: ADMINS.map((a) => signGovernance(document, a.name, a.secretKey)) },
  });
  const audit = await AuditLog.open(path.join(dir, 'audit.jsonl'), self);
  try {
    const service = await SignerService.start({ config, store, identity: self, log: pino({ level: 'silent' }), audit });
    return [...Object.keys(service.routes()), ...Object.keys(new Admission(config, store, self).routes())];
  } finally {
    await audit.close();
    store.close();
  }
}

describe('the signer routes of contract/signer-rpc/routes.ts', () => {
  it('are exactly the paths a signer serves, each once', async () => {
    const contract = pathsOf(signerRoutes);
    const served = await servedPaths();
    expect(new Set(contract).size, 'a path named twice in the contract').toBe(contract.length);
    expect(new Set(served).size, 'a path served twice').toBe(served.length);
    expect([...served].sort()).toEqual([...contract].sort());
  });
});
