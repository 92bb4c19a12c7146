// The KMS/health HTTP listener's limits against a real cluster, with the gateway configured
// small (50 connections, 2 s for headers, 4 s per request): /health fans out to the signers at
// most once a second however many call it (counted by the signers themselves), idle and silent
// connections make room for honest clients at the cap, slow headers are cut off, an oversized
// body is refused before any authentication, and requests no principal signed are counted in
// the audit, not written one by one.
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListKeysCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../../cli/processes.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { connect as connectRaw } from '../p11/raw-wire.js';
import { kmsClient } from './kms-client.js';

const LIMITS = { kmsMaxConnections: 50, kmsHeadersTimeoutMs: 2000, kmsRequestTimeoutMs: 4000, unauthenticatedAuditMs: 1000 };

let tc: TestCluster;
let port: number;

/** One request on its own connection: status and body. */
function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const connect = () => connectRaw(port);

const closedAfter = (s: net.Socket, started: number): Promise<number> => new Promise((resolve) => s.once('close', () => resolve(Date.now() - started)));

beforeAll(async () => {
  tc = await startCluster();
  await tc.down();
  const file = path.join(tc.dir, 'gateway', 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8'));
  expect(config).toMatchObject({ kmsMaxConnections: 1024, kmsHeadersTimeoutMs: 10_000, kmsRequestTimeoutMs: 30_000, healthCacheMs: 1000 }); // the defaults `init` wrote
  port = config.port;
  writeFileSync(file, JSON.stringify({ ...config, ...LIMITS }, null, 2));
  await tc.up();
}, 300_000);

afterAll(() => tc?.destroy(), 120_000);

describe('the KMS listener', () => {
  it('answers many concurrent /health calls from at most one signer fan-out per second', async () => {
    const signers = tc.cluster().signers;
    const checks = () => Promise.all(signers.map(async (s) => ((await getJson(`${s.url}/health`)) as { healthChecks: number }).healthChecks));
    const before = await checks();
    const started = Date.now();
    for (let wave = 0; wave < 6; wave++) {
      const answers = await Promise.all(Array.from({ length: 40 }, () => request(`${tc.endpoint}/health`)));
      for (const a of answers) expect(JSON.parse(a.body)).toMatchObject({ party: 'gateway', quorum: true, signers: signers.map(() => ({ healthy: true })) });
      await sleep(500);
    }
    const seconds = Math.ceil((Date.now() - started) / 1000);
    const after = await checks();
    for (const [i, n] of after.entries()) {
      const fanouts = n - before[i]! - 1; // less this test's own read
      expect(fanouts, `${signers[i]!.name} was asked by the gateway`).toBeGreaterThanOrEqual(1);
      expect(fanouts, `240 /health calls in ${seconds} s`).toBeLessThanOrEqual(seconds + 1);
    }
  }, 60_000);

  it('at its connection cap, closes the longest-waiting silent connections so honest clients get in', async () => {
    await sleep(500); // the previous test's connections are gone
    const started = Date.now();
    const silent: net.Socket[] = [];
    try {
      for (let i = 0; i < 4; i++) silent.push(...(await Promise.all(Array.from({ length: 20 }, () => connect()))));
      expect((await request(`${tc.endpoint}/health`)).status).toBe(200);
      expect((await kmsClient(tc, 'app').send(new ListKeysCommand({}))).Keys).toBeDefined();
      await sleep(500);
      // 80 silent connections against a cap of 50: about 30 made room for the newer ones and
      // the honest calls, the oldest first, long before any timeout.
      expect(Date.now() - started).toBeLessThan(LIMITS.kmsHeadersTimeoutMs);
      const gone = silent.flatMap((s, i) => (s.closed ? [i] : []));
      expect(gone.length).toBeGreaterThanOrEqual(25);
      expect(gone).toEqual([...Array(gone.length).keys()]);
    } finally {
      for (const s of silent) s.destroy();
    }
  }, 60_000);

  it('cuts off a request whose headers trickle in after kmsHeadersTimeoutMs', async () => {
    const s = await connect();
    const started = Date.now();
    const closing = closedAfter(s, started);
    s.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    const drip = setInterval(() => s.write('a'), 200);
    try {
      const ms = await closing;
      expect(ms).toBeGreaterThanOrEqual(LIMITS.kmsHeadersTimeoutMs - 100);
      expect(ms).toBeLessThan(LIMITS.kmsHeadersTimeoutMs + 2500);
    } finally {
      clearInterval(drip);
      s.destroy();
    }
  }, 30_000);

  it('refuses an oversized body before authenticating it', async () => {
    const r = await request(`${tc.endpoint}/`, { method: 'POST', headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.ListKeys' }, body: Buffer.alloc(300 * 1024, 0x20) });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).__type).toMatch(/ValidationException/);
  }, 30_000);

  it('counts requests no principal signed in one audit summary per interval, not an entry each', async () => {
    const entries = () => readFileSync(path.join(tc.dir, 'gateway', 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const before = entries().length;
    const forged = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.ListKeys', authorization: 'AWS4-HMAC-SHA256 Credential=MPCNOBODY0000000/20260101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=' + '0'.repeat(64), 'x-amz-date': '20260101T000000Z' };
    for (let i = 0; i < 200; i++) expect((await request(`${tc.endpoint}/`, { method: 'POST', headers: forged, body: Buffer.from('{}') })).status).toBe(400);
    await sleep(2500);
    const added = entries().slice(before).filter((e) => e.kind === 'event');
    const summaries = added.filter((e) => e.op === 'kms.unauthenticated');
    expect(added.length - summaries.length).toBe(0);
    expect(summaries.reduce((n, e) => n + Number((e.detail as Record<string, number>).UnrecognizedClient ?? 0), 0)).toBe(200);
  }, 60_000);
});
