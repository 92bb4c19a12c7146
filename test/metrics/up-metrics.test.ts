// Issue #25, metrics through `mpchsm up --metrics`: every signer answers GET /metrics on the
// loopback port cluster.json and `status` name (the gateway's port + 200 + its id), and the
// gateway's and a signer's counters and gauges move with traffic — requests and calls, the audit
// chains, the keys held, the store's epoch (a key change) — scraped before and after.
import { CreateAliasCommand, SignCommand, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { createKey, kms } from '../policy-cluster/helpers.js';
import { scrape, type Scrape } from './scrape.js';

let tc: TestCluster;
let app: KMSClient;

const metricsAt = async (url: string): Promise<Scrape> => {
  const r = await scrape(url);
  expect(r.status).toBe(200);
  return r.scrape;
};

beforeAll(async () => {
  tc = await startCluster();
  // Restarted with --metrics: the same directory, the signers now with their metrics listeners.
  await tc.down();
  await tc.mpchsm('up', '--dir', tc.dir, '--port', String(tc.port), '--detach', '--metrics');
  app = kms(tc, 'app');
}, 180_000);

afterAll(async () => {
  app?.destroy();
  await tc?.destroy();
});

describe('mpchsm up --metrics', () => {
  it('records each signer’s metrics URL in cluster.json and status, on loopback at port + 200 + id', async () => {
    const signers = tc.cluster().signers;
    expect(signers.map((s) => s.name)).toEqual(['signer1', 'signer2', 'signer3']);
    signers.forEach((s, i) => expect((s as { metrics?: string }).metrics).toBe(`http://127.0.0.1:${tc.port + 200 + i + 1}/metrics`));
    const status = JSON.parse((await tc.mpchsm('status', '--dir', tc.dir, '--json')).stdout) as { processes: { name: string; metrics?: string }[] };
    expect(status.processes.find((p) => p.name === 'signer2')?.metrics).toBe(`http://127.0.0.1:${tc.port + 202}/metrics`);
    for (const s of signers) expect((await metricsAt((s as { metrics?: string }).metrics!)).find('mpchsm_signer_calls_total')).toBeDefined();
  });

  it('the gateway’s and a signer’s counters move with a key made, an alias and signings', async () => {
    const signerUrl = (tc.cluster().signers[0] as { metrics?: string }).metrics!;
    const [g0, s0] = [await metricsAt(`${tc.endpoint}/metrics`), await metricsAt(signerUrl)];
    const keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
    await kms(tc, 'admin1').send(new CreateAliasCommand({ AliasName: 'alias/metrics', TargetKeyId: keyId }));
    for (let i = 0; i < 4; i++) await app.send(new SignCommand({ KeyId: keyId, Message: Buffer.from(`m${i}`), SigningAlgorithm: 'ED25519_SHA_512' }));
    const [g1, s1] = [await metricsAt(`${tc.endpoint}/metrics`), await metricsAt(signerUrl)];

    const gMoved = (labels: Record<string, string>) => g1.sum('mpchsm_gateway_requests_total', labels) - g0.sum('mpchsm_gateway_requests_total', labels);
    expect(gMoved({ facade: 'kms', operation: 'CreateKey', outcome: 'ok' })).toBe(1);
    expect(gMoved({ facade: 'kms', operation: 'Sign', outcome: 'ok' })).toBe(4);
    expect(g1.value('mpchsm_gateway_audit_chain_length')).toBeGreaterThanOrEqual(g0.value('mpchsm_gateway_audit_chain_length') + 5);
    expect(g1.value('mpchsm_gateway_quorum_available')).toBe(1);

    // A signer took part in the key's generation (every signer does) and in some signings (2 of 3 each).
    const calls = (s: Scrape) => s.sum('mpchsm_signer_calls_total', { outcome: 'ok' });
    expect(calls(s1)).toBeGreaterThan(calls(s0));
    expect(s1.sum('mpchsm_signer_call_duration_seconds_count')).toBeGreaterThan(s0.sum('mpchsm_signer_call_duration_seconds_count'));
    expect(s1.value('mpchsm_signer_keys')).toBe(s0.value('mpchsm_signer_keys') + 1);
    expect(s1.value('mpchsm_signer_audit_chain_length')).toBeGreaterThan(s0.value('mpchsm_signer_audit_chain_length'));
    // The alias is a numbered change every signer applies: the store's epoch moves.
    expect(s1.value('mpchsm_signer_ledger_seq')).toBeGreaterThan(s0.value('mpchsm_signer_ledger_seq'));
    expect(s1.value('mpchsm_signer_open_connections')).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
