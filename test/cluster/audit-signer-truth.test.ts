// A real cluster's signers record what they did from the client's own request, and
// `mpchsm audit verify` holds the gateway's log to that: an entry the gateway (owned by an
// attacker, with its identity and files) appends to re-describe a signature is reported.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CreateAliasCommand, SignCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../audit/log.js';
import { gatewayAuditPath, signerAuditPath } from '../../audit/paths.js';
import type { EventEntry } from '../../audit/entry.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { createKey, gatewayCall, gatewayIdentity, kms } from '../policy-cluster/helpers.js';

const MESSAGE = Buffer.from('release 1.0.0');
const ALIAS = 'alias/release';
let tc: TestCluster;
let keyId: string;
let rsaKeyId: string;

const events = (file: string): EventEntry[] =>
  readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as EventEntry)
    .filter((e) => e.kind === 'event');

const verify = () => tc.mpchsmStatus('audit', 'verify', '--dir', tc.dir);

beforeAll(async () => {
  tc = await startCluster();
  keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  // A change forwarded to the signers (aliases are under no quorum by default), then a Sign
  // naming the key by that alias, which each signer resolves itself.
  await kms(tc, 'admin1').send(new CreateAliasCommand({ AliasName: ALIAS, TargetKeyId: keyId }));
  await kms(tc, 'app').send(new SignCommand({ KeyId: ALIAS, Message: MESSAGE, SigningAlgorithm: 'ED25519_SHA_512' }));
  // A resharing, which the signers record as one (ReshareKey) and the gateway as RefreshKeyShares.
  expect((await gatewayCall(tc, 'admin1', 'MpcHsm.RefreshKeyShares', { KeyId: keyId })).status).toBe(200);
  // An RSA signature while signer1 is down: the planner asks two signers at once and, when one
  // is signer1, signer3 too in the same session (gateway/planner.ts); every signer asked is named.
  rsaKeyId = await createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
  process.kill(tc.cluster().signers.find((s) => s.name === 'signer1')!.pid, 'SIGTERM');
  await kms(tc, 'app').send(new SignCommand({ KeyId: rsaKeyId, Message: MESSAGE, SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' }));
  await tc.down(); // a clean stop signs every log's tail
}, 120_000);

afterAll(async () => {
  await tc?.destroy();
});

describe("the signers' account of a signature", () => {
  let session: string;

  it('each signer that signed records the operation, principal, key as written and resolved, digest and evidence hash', () => {
    const gateway = events(gatewayAuditPath(tc.dir)).find((e) => e.op === 'Sign' && e.outcome === 'ok')!;
    session = gateway.request;
    const signed = ['signer1', 'signer2', 'signer3'].flatMap((s) => events(signerAuditPath(tc.dir, s)).filter((e) => e.op?.startsWith('frost.sign') && e.request === session && e.outcome === 'ok'));
    expect(signed).toHaveLength(2);
    const digest = createHash('sha256').update(MESSAGE).digest('hex');
    for (const e of signed) {
      expect(e).toMatchObject({ operation: 'Sign', principal: { name: 'app' }, keyRef: ALIAS, keyId, digest, output: 'partial' });
      expect(e.evidenceHash).toMatch(/^[0-9a-f]{64}$/);
    }
    // The same signed request, hashed the same way by each signer.
    expect(signed[0]!.evidenceHash).toBe(signed[1]!.evidenceHash);
    expect(gateway).toMatchObject({ keyId, digest, principal: { name: 'app' } });
  });

  it("each signer records the alias change with the gateway's record of forwarding it under the same number", () => {
    const forwarded = events(gatewayAuditPath(tc.dir)).find((e) => e.op === 'change.CreateAlias')!;
    expect(forwarded).toMatchObject({ request: expect.stringMatching(/^change-\d+$/), operation: 'CreateAlias', keyId, principal: { name: 'admin1' } });
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const applied = events(signerAuditPath(tc.dir, s)).find((e) => e.op === 'policy.CreateAlias');
      expect(applied, s).toMatchObject({ request: forwarded.request, operation: 'CreateAlias', keyId, keyRef: keyId, principal: { name: 'admin1' }, outcome: 'ok', detail: { evidence: expect.stringMatching(/^[0-9a-f]{64}$/) } });
      expect(applied!.evidenceHash).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('the gateway names every signer that released a partial for the signature made while signer1 was down', () => {
    const gateway = events(gatewayAuditPath(tc.dir)).filter((e) => e.keyId === rsaKeyId && e.op === 'Sign');
    const served = gateway.find((e) => e.outcome === 'ok')!;
    expect(served.signers?.map((s) => s.name).sort()).toEqual(['signer2', 'signer3']);
    // Any other entry is signer1, asked and unused, in the same session.
    for (const e of gateway.filter((x) => x !== served)) expect(e).toMatchObject({ request: served.request, outcome: 'failed', signers: [{ name: 'signer1' }] });
    for (const s of ['signer2', 'signer3']) {
      const partials = events(signerAuditPath(tc.dir, s)).filter((e) => e.op === 'rsa.partial' && e.outcome === 'ok');
      expect(partials.map((p) => p.request), s).toEqual([served.request]);
      expect(served.signers?.find((x) => x.name === s)?.entry?.seq).toBe(partials[0]!.seq);
    }
  });

  it('audit verify passes on the honest logs', async () => {
    for (const s of ['signer1', 'signer2', 'signer3'])
      expect(events(signerAuditPath(tc.dir, s)).find((e) => e.op === 'reshare.adopt'), s).toMatchObject({ operation: 'ReshareKey', keyId, outcome: 'ok', output: 'key' });
    const r = await verify();
    expect(r.out).toContain('cross-check  ok');
    expect(r.code).toBe(0);
  });

  it('a validly chained and signed gateway entry re-describing the signature is reported, and verify fails', async () => {
    const gateway = events(gatewayAuditPath(tc.dir)).find((e) => e.request === session && e.op === 'Sign')!;
    const log = await AuditLog.open(gatewayAuditPath(tc.dir), await gatewayIdentity(tc));
    try {
      // The attacker's story: another principal signed another message under this request.
      await log.append({
        request: session,
        op: 'Sign',
        principal: { name: 'auditor', source: '127.0.0.1:1' },
        keyId,
        algorithm: 'ED25519_SHA_512',
        digest: createHash('sha256').update('something else').digest('hex'),
        signers: gateway.signers,
        session,
        outcome: 'ok',
        output: 'signature',
        startedAt: Date.now(),
      });
    } finally {
      await log.close();
    }
    const r = await verify();
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^gateway\s+ok /m); // its chain holds: only the signers' account shows the lie
    expect(r.out).toContain('cross-check  FAILED');
    expect(r.out).toMatch(new RegExp(`\\[misreported\\] request ${session}: signer\\d signed with key ${keyId} for principal app .*the gateway's log says Sign of key ${keyId} for principal auditor .* the principal and digest differ`));
  });
});
