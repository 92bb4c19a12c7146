// Issue #25, metrics: GET /metrics on the KMS endpoint answers Prometheus text without SigV4 and
// stays out of the audit log; a Sign and failing requests move the request counters under the
// right labels and the latency histogram; an operation the gateway does not serve adds no label
// value (KMS or PKCS#11); the quorum gauges follow the signers, a stopped signer's failures are
// counted as protocol aborts against it; a signer's metrics answer only where its
// configuration's loopback `metricsListen` says, not on its RPC port; no secret is in any scrape.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DescribeKeyCommand, SignCommand, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayAuditPath } from '../../audit/paths.js';
import { CKR } from '../../contract/pkcs11/ck.js';
import { OP } from '../../contract/pkcs11/wire.js';
import { OPERATIONS } from '../../gateway/kms/ops/index.js';
import { signerConfigSchema } from '../../signers/node/config.js';
import { freePort } from '../deployment/helpers.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { startSigner } from '../helpers/signer-process.js';
import { signRequest } from '../kms/sign-request.js';
import { call, closed, connect, request } from '../p11/raw-wire.js';
import { createKey, failure, kms } from '../policy-cluster/helpers.js';
import { scrape, type Scrape } from './scrape.js';

const REQUESTS = 'mpchsm_gateway_requests_total';
const DURATION = 'mpchsm_gateway_request_duration_seconds';

let tc: TestCluster;
let app: KMSClient;
let keyId: string;

const gatewayMetrics = async (): Promise<Scrape> => {
  const r = await scrape(`${tc.endpoint}/metrics`);
  expect(r.status).toBe(200);
  return r.scrape;
};

const sign = (message: string) => app.send(new SignCommand({ KeyId: keyId, Message: Buffer.from(message), SigningAlgorithm: 'ED25519_SHA_512' }));

/** Every secret the cluster's directory holds in clear for the test: principals' secret keys and PINs, operators' secrets. */
function secrets(): string[] {
  const env = readdirSync(path.join(tc.dir, 'principals')).filter((f) => f.endsWith('.env'));
  const principals = env.flatMap((f) => {
    const p = tc.principal(f.slice(0, -'.env'.length));
    return [p.AWS_SECRET_ACCESS_KEY, p.MPCHSM_PKCS11_PIN];
  });
  const operators = readdirSync(path.join(tc.dir, 'operators')).map((f) => readFileSync(path.join(tc.dir, 'operators', f), 'utf8').trim());
  return [...principals, ...operators].filter((s) => s && s.length >= 8);
}

/** The gateway's audit entries other than checkpoints (which sign the head on a timer). */
const auditedEvents = () => readFileSync(gatewayAuditPath(tc.dir), 'utf8').split('\n').filter((l) => l && !l.includes('"kind":"checkpoint"')).length;


/** Polls `f` until it holds, for up to `ms`. */
async function eventually(what: string, f: () => Promise<boolean>, ms = 20_000): Promise<void> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(200)) if (await f()) return;
  throw new Error(`${what}: not within ${ms} ms`);
}

beforeAll(async () => {
  tc = await startCluster();
  app = kms(tc, 'app');
  keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
}, 120_000);

afterAll(async () => {
  app?.destroy();
  await tc?.destroy();
});

describe('GET /metrics on the KMS endpoint', () => {
  it('answers Prometheus text without SigV4; a scrape is neither counted as a request nor audited', async () => {
    const r = await scrape(`${tc.endpoint}/metrics`);
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.scrape.find('mpchsm_gateway_threshold')).toBeDefined();
    const events = auditedEvents();
    for (let i = 0; i < 10; i++) await gatewayMetrics();
    const after = await gatewayMetrics();
    expect(after.sum(REQUESTS)).toBe(r.scrape.sum(REQUESTS));
    expect(auditedEvents()).toBe(events);
  });

  it('a Sign and failing requests move the counters under their operation and outcome, and the histogram counts them', async () => {
    const before = await gatewayMetrics();
    await sign('counted');
    expect((await failure(app.send(new SignCommand({ KeyId: randomUUID(), Message: Buffer.from('x'), SigningAlgorithm: 'ED25519_SHA_512' })))).name).toBe('NotFoundException');
    expect((await failure(kms(tc, 'admin1').send(new DescribeKeyCommand({ KeyId: randomUUID() })))).name).toBe('NotFoundException');
    const after = await gatewayMetrics();
    const moved = (labels: Record<string, string>) => after.value(REQUESTS, labels) - before.value(REQUESTS, labels);
    expect(moved({ facade: 'kms', operation: 'Sign', outcome: 'ok' })).toBe(1);
    expect(moved({ facade: 'kms', operation: 'Sign', outcome: 'NotFoundException' })).toBe(1);
    expect(moved({ facade: 'kms', operation: 'DescribeKey', outcome: 'NotFoundException' })).toBe(1);
    const counted = (s: Scrape) => s.value(`${DURATION}_count`, { facade: 'kms', operation: 'Sign' });
    expect(counted(after) - counted(before)).toBe(2);
    expect(after.value(`${DURATION}_bucket`, { facade: 'kms', operation: 'Sign', le: '+Inf' })).toBe(counted(after));
    expect(after.value(`${DURATION}_sum`, { facade: 'kms', operation: 'Sign' })).toBeGreaterThan(0);
    // The gateway's audit chain grew with the requests.
    expect(after.value('mpchsm_gateway_audit_chain_length')).toBeGreaterThan(before.value('mpchsm_gateway_audit_chain_length'));
  });

  it('an operation the gateway does not serve, signed or not, is counted as unknown and adds no label value', async () => {
    const before = await gatewayMetrics();
    const marker = `Frobnicate${randomUUID().replaceAll('-', '')}`;
    const p = tc.principal('admin1');
    const signed = await signRequest({ accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY }, { host: new URL(tc.endpoint).host, target: `TrentService.${marker}`, body: '{}', region: p.AWS_REGION });
    const { host: _host, ...headers } = signed.headers;
    expect((await fetch(`${tc.endpoint}/`, { method: 'POST', headers, body: signed.body })).status).toBe(400);
    expect((await fetch(`${tc.endpoint}/`, { method: 'POST', headers: { 'x-amz-target': `MpcHsm.${marker}`, 'content-type': 'application/x-amz-json-1.1' }, body: '{}' })).status).toBe(400);
    expect((await fetch(`${tc.endpoint}/${marker}`)).status).toBe(404);
    const after = await gatewayMetrics();
    expect(after.text).not.toContain(marker);
    expect(after.value(REQUESTS, { facade: 'kms', operation: 'unknown', outcome: 'UnknownOperationException' }) - before.value(REQUESTS, { facade: 'kms', operation: 'unknown', outcome: 'UnknownOperationException' })).toBe(2);
    expect(after.sum(REQUESTS, { facade: 'kms', operation: 'unknown' }) - before.sum(REQUESTS, { facade: 'kms', operation: 'unknown' })).toBe(3);
    const served = new Set([...Object.keys(OPERATIONS), 'RefreshKeyShares', 'unknown']);
    for (const op of after.labelValues(REQUESTS, 'operation')) expect(served.has(op) || /^MpcHsm\.[A-Za-z]+$/.test(op), op).toBe(true);
  });

  it('PKCS#11 requests are counted under their operation; an unknown op is `unknown`; the listener shows its connections', async () => {
    const port = JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'config.json'), 'utf8')).pkcs11Port as number;
    const before = await gatewayMetrics();
    const s = await connect(port);
    try {
      expect((await call(s, request(OP.PIN_KDF, '')))[0]).toBe(CKR.OK);
      expect((await call(s, request(4242, '')))[0]).not.toBe(CKR.OK);
      const during = await gatewayMetrics();
      expect(during.value('mpchsm_gateway_open_connections', { listener: 'pkcs11' })).toBeGreaterThanOrEqual(1);
      // This scrape's own connection, at least.
      expect(during.value('mpchsm_gateway_open_connections', { listener: 'kms' })).toBeGreaterThanOrEqual(1);
      const moved = (labels: Record<string, string>) => during.sum(REQUESTS, labels) - before.sum(REQUESTS, labels);
      expect(moved({ facade: 'pkcs11', operation: 'pin_kdf', outcome: 'ok' })).toBe(1);
      expect(moved({ facade: 'pkcs11', operation: 'unknown' })).toBe(1);
      expect(during.labelValues(REQUESTS, 'operation').has('op_4242')).toBe(false);
      expect(during.text).not.toContain('4242');
    } finally {
      s.destroy();
      await closed(s);
    }
  });
});

describe('quorum, protocol aborts and a signer’s own metrics', () => {
  it('only a loopback HOST:PORT is a signer’s metricsListen', () => {
    const ok = (v: string) => signerConfigSchema.shape.metricsListen.safeParse(v).success;
    expect(['127.0.0.1:9100', 'localhost:9100', '[::1]:9100', '127.1.2.3:1'].every(ok)).toBe(true);
    expect(['0.0.0.0:9100', '10.0.0.5:9100', '[::]:9100', '127.0.0.1:0', '127.0.0.1:70000', '127.0.0.1', 'example.com:9100'].some(ok)).toBe(false);
  });

  it('the quorum gauges follow the signers; a stopped one is counted against; its metrics answer on its loopback listener only', async () => {
    const signers = tc.cluster().signers;
    const start = await gatewayMetrics();
    expect(start.value('mpchsm_gateway_threshold')).toBe(2);
    expect(start.value('mpchsm_gateway_signers_active')).toBe(signers.length);
    expect(start.value('mpchsm_gateway_signers_reachable')).toBe(signers.length);
    expect(start.value('mpchsm_gateway_quorum_available')).toBe(1);
    expect(start.labelValues('mpchsm_gateway_signer_reachable', 'signer')).toEqual(new Set(signers.map((s) => s.name)));

    // A signer's RPC port serves no metrics: only /health, unauthenticated.
    const victim = signers.at(-1)!;
    const rpcPort = new URL(victim.url).port;
    const onRpc = await new Promise<number>((resolve, reject) => {
      https.get(`https://127.0.0.1:${rpcPort}/metrics`, { rejectUnauthorized: false, agent: false, timeout: 5000 }, (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject);
    });
    expect(onRpc).toBe(404);

    // Stopped: the signings that ask it fail over, each counted as an abort against it; it is held unreachable.
    const dir = path.join(tc.dir, 'signers', victim.name);
    await tc.mpchsm('signer', 'stop', '--dir', dir);
    const aborts = (s: Scrape) => s.sum('mpchsm_gateway_protocol_aborts_total', { signer: victim.name });
    for (let i = 0; i < 30 && aborts(await gatewayMetrics()) === 0; i++) await sign(`fail over ${i}`);
    const down = await gatewayMetrics();
    expect(aborts(down)).toBeGreaterThan(0);
    expect(down.value('mpchsm_gateway_protocol_aborts_total', { signer: victim.name, reason: 'unreachable' })).toBeGreaterThan(0);
    expect(down.value('mpchsm_gateway_signers_reachable')).toBe(signers.length - 1);
    expect(down.value('mpchsm_gateway_signer_reachable', { signer: victim.name })).toBe(0);
    expect(down.value('mpchsm_gateway_quorum_available')).toBe(1);

    // Started again with a metrics listener: the planner's probe finds it, and it answers /metrics there.
    const port = await freePort('127.0.0.1');
    const configFile = path.join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify({ ...JSON.parse(readFileSync(configFile, 'utf8')), metricsListen: `127.0.0.1:${port}` }, null, 2));
    await startSigner(tc, victim.name);
    await eventually('the restarted signer is reachable again', async () => (await gatewayMetrics()).value('mpchsm_gateway_signers_reachable') === signers.length);
    const signerUrl = `http://127.0.0.1:${port}/metrics`;
    const calls = async () => (await scrape(signerUrl)).scrape.sum('mpchsm_signer_calls_total', { outcome: 'ok' });
    for (let i = 0; i < 30 && (await calls()) === 0; i++) await sign(`back ${i}`);
    const r = await scrape(signerUrl);
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = r.scrape;
    expect(m.sum('mpchsm_signer_calls_total', { outcome: 'ok' })).toBeGreaterThan(0);
    for (const route of m.labelValues('mpchsm_signer_calls_total', 'route')) expect(route).toMatch(/^\/v1\/[a-z0-9/-]+$/);
    expect(m.sum('mpchsm_signer_call_duration_seconds_count')).toBeGreaterThan(0);
    expect(m.value('mpchsm_signer_audit_chain_length')).toBeGreaterThan(2);
    expect(m.value('mpchsm_signer_governance_version')).toBeGreaterThanOrEqual(1);
    expect(m.find('mpchsm_signer_ledger_seq')).toBeDefined();
    expect(m.value('mpchsm_signer_keys')).toBe(1);
    expect(m.value('mpchsm_signer_open_connections')).toBeGreaterThanOrEqual(1);
    expect((await scrape(`http://127.0.0.1:${port}/health`)).status).toBe(404);

    // Neither the gateway's scrape nor the signer's carries a secret.
    const gateway = (await gatewayMetrics()).text;
    for (const secret of secrets()) {
      expect(gateway.includes(secret)).toBe(false);
      expect(m.text.includes(secret)).toBe(false);
    }
  }, 120_000);
});
