// The benchmark's arithmetic and outputs on made-up measurements: percentiles, the closed loop,
// ratios and targets, the chart, the profile categories, the Markdown.
import { describe, expect, it } from 'vitest';
import { throughputChart } from '../../conformance/bench/chart.js';
import { categorise } from '../../conformance/bench/profile.js';
import { fullReport, readmeSnippet } from '../../conformance/bench/report.js';
import { judge } from '../../conformance/bench/soak-verdict.js';
import { checkTargets, ratios, type BenchResults, type SignPoint } from '../../conformance/bench/results.js';
import { closedLoop, percentile, summarise } from '../../conformance/bench/stats.js';
import { emptyResults, lat } from './fixtures.js';

const pt = (target: SignPoint['target'], alg: SignPoint['alg'], concurrency: number, opsPerSec: number, p50: number): SignPoint => ({
  target,
  alg,
  concurrency,
  status: 'ok',
  ops: 10,
  errors: 0,
  seconds: 10 / opsPerSec,
  opsPerSec,
  latencyMs: lat(p50),
  cpuMsPerOp: target === 'softhsm' ? { client: 0.5 } : { client: 1, gateway: 20, signer1: 10, signer2: 12, signer3: 0 },
});

const sign: SignPoint[] = [
  pt('p11', 'rsa2048', 1, 20, 4),
  pt('p11', 'rsa2048', 4, 60, 30),
  pt('kms', 'rsa2048', 1, 10, 8),
  pt('kms', 'rsa2048', 4, 30, 60),
  pt('softhsm', 'rsa2048', 1, 400, 2),
  pt('softhsm', 'rsa2048', 4, 500, 8),
  { target: 'p11', alg: 'p256', concurrency: 1, status: 'unavailable', reason: 'C_GenerateKeyPair: CKR_DOMAIN_PARAMS_INVALID' },
  { target: 'kms', alg: 'p256', concurrency: 1, status: 'unavailable', reason: 'threshold ECDSA missing' },
  pt('softhsm', 'p256', 1, 2000, 0.2),
  pt('softhsm', 'p256', 4, 5000, 0.5),
];

describe('statistics', () => {
  it('takes nearest-rank percentiles', () => {
    const xs = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 0.5)).toBe(50);
    expect(percentile(xs, 0.99)).toBe(99);
    expect(percentile(xs, 1)).toBe(100);
    expect(percentile([], 0.5)).toBe(0);
    expect(summarise([5, 1, 3])).toEqual({ count: 3, mean: 3, p50: 3, p95: 5, p99: 5, max: 5 });
  });

  it('runs a closed loop: bounded, concurrent, failures counted and not timed', async () => {
    let inFlight = 0;
    let peak = 0;
    let calls = 0;
    const r = await closedLoop({ concurrency: 3, durationMs: 10_000, maxOps: 30 }, async () => {
      const call = ++calls;
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((res) => setTimeout(res, 1));
      inFlight--;
      if (call % 10 === 0) throw new Error('refused');
    });
    expect(calls).toBe(30);
    expect(peak).toBe(3);
    expect(r.errors).toBe(3);
    expect(r.ops).toBe(27);
    expect(r.latencyMs.count).toBe(27);
    expect(r.firstError).toBe('refused');
  });
});

describe('ratios and targets', () => {
  it('divides by SoftHSMv2 at the same concurrency and at best, and KMS by PKCS#11', () => {
    const rs = ratios(sign, [1, 4], ['rsa2048', 'p256']);
    const find = (what: string, target: string, c: number | 'best') => rs.find((r) => r.what === what && r.target === target && r.concurrency === c && r.alg === 'rsa2048')?.ratio;
    expect(find('throughput vs SoftHSMv2', 'p11', 1)).toBeCloseTo(20 / 400);
    expect(find('throughput vs SoftHSMv2', 'p11', 'best')).toBeCloseTo(60 / 500);
    expect(find('throughput KMS vs PKCS#11', 'kms', 4)).toBeCloseTo(0.5);
    expect(find('p50 latency KMS vs PKCS#11', 'kms', 1)).toBeCloseTo(2);
    expect(rs.some((r) => r.alg === 'p256')).toBe(false); // nothing to divide
  });

  it('checks the targets, and says "not available" rather than pass or fail what was not measured', () => {
    const rows = [
      { protocol: 'frost', curve: 'ed25519', t: 2, n: 3, op: 'sign', ms_per_op: 4.2 },
      { protocol: 'rsa-shoup', curve: 'rsa2048', t: 2, n: 3, op: 'sign', ms_per_op: 7.5 },
    ];
    const t = checkTargets(sign, { p256: 'not available yet (threshold ECDSA)' }, rows);
    const by = (prefix: string) => t.find((x) => x.name.startsWith(prefix))!;
    expect(by('RSA-2048 PKCS#11 throughput').met).toBe(true); // 4 clients: 60 / 500 = 0.12 ≥ 0.10
    expect(by('RSA-2048 p50 latency, 1 client, PKCS#11').met).toBe(true); // 4 ms ≤ 10 ms
    expect(by('ECDSA P-256 PKCS#11 throughput').met).toBe('not available');
    expect(by('ECDSA P-256 PKCS#11 throughput').measured).toContain('threshold ECDSA');
    expect(by('FROST Ed25519 protocol CPU').met).toBe(false); // 4.2 > 2 ms
    expect(by('threshold RSA-2048 protocol CPU').met).toBe(true); // 7.5 ≤ 8 ms
    expect(by('DKLs23 P-256 protocol CPU').met).toBe('not available');
    const slow = checkTargets([pt('p11', 'rsa2048', 4, 10, 50), pt('softhsm', 'rsa2048', 4, 500, 2)], {}, []);
    expect(slow.find((x) => x.name.startsWith('RSA-2048 PKCS#11 throughput'))!.met).toBe(false);
  });
});

describe('outputs', () => {
  const results: BenchResults = {
    ...emptyResults,
    keygen: [
      { target: 'p11', alg: 'rsa2048', status: 'ok', runsMs: [3000], meanMs: 3000 },
      { target: 'softhsm', alg: 'rsa2048', status: 'ok', runsMs: [600], meanMs: 600 },
      { target: 'kms', alg: 'p256', status: 'unavailable', reason: 'threshold ECDSA missing', runsMs: [] },
    ],
    sign,
    ratios: ratios(sign, [1, 4], ['rsa2048', 'p256']),
    targets: checkTargets(sign, {}, []),
    protocols: { rows: [{ protocol: 'frost', curve: 'ed25519', t: 2, n: 3, op: 'sign', ms_per_op: 4.2 }] },
  };

  it('draws one line per measured path × algorithm, on a log scale', () => {
    const svg = throughputChart(sign, 'a <test> machine');
    expect(svg.match(/<polyline /g)).toHaveLength(4); // p11, kms, softhsm RSA; softhsm P-256
    expect(svg).toContain('a &lt;test&gt; machine');
    expect(svg).toContain('>1,000<');
    expect(svg).not.toContain('NaN');
  });

  it('writes the report and the README section with the machine and every row', () => {
    const md = fullReport(results);
    expect(md).toContain('| RSA-2048 PKCS#1 v1.5 | mpchsm PKCS#11 | 4 | 60.0 | 30.0 |');
    expect(md).toContain('not available yet: threshold ECDSA missing');
    expect(md).toContain('| frost | ed25519 | 2-of-3 | sign | 4.20 |');
    expect(md).toContain('Test CPU');
    expect(md).not.toContain('**Warning**');
    expect(fullReport({ ...results, machine: { ...results.machine, loadAverage: [3.5, 2, 1] } })).toContain('**Warning**: the machine was busy when the run started (load average 3.5 on 2 cores)');
    const readme = readmeSnippet(results);
    expect(readme).toContain('2 × Test CPU, 4 GiB, Linux, Node.js v20.0.0');
    expect(readme).toContain('| RSA-2048 PKCS#1 v1.5 | mpchsm PKCS#11 | 20.0 / 60.0 | 4.00 / 8.00 | 0.12× |');
    expect(readme).toContain('| ECDSA P-256 | mpchsm KMS | not available yet |');
  });
});

describe('profile categories', () => {
  const dist = 'file:///repo/dist/';
  const f = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
  it('sorts a sample by the code that spent it', () => {
    const noble = f('mod', 'file:///repo/node_modules/@noble/curves/abstract/modular.js');
    expect(categorise([noble, f('frostAggregate', `${dist}signers/protocols/frost.js`)], dist)).toBe('protocol maths');
    expect(categorise([noble, f('verifyResponse', `${dist}contract/identity/signed-request.js`), f('call', `${dist}gateway/signer-client.js`)], dist)).toBe('channel crypto (signed RPC, envelopes)');
    expect(categorise([f('parse', ''), f('x', `${dist}gateway/kms/api.js`)], dist)).toBe('JSON parse/stringify');
    expect(categorise([f('RegExp: ^[0-9a-f]+$', ''), f('check', 'file:///repo/node_modules/zod/v4/core/schemas.js'), f('x', `${dist}signers/protocols/frost.js`)], dist)).toBe('input validation (zod)');
    expect(categorise([f('writev', ''), f('write', 'file:///repo/node_modules/sonic-boom/index.js')], dist)).toBe('logging (pino)');
    expect(categorise([f('writev', ''), f('_writeGeneric', 'node:internal/stream_base_commons'), f('call', `${dist}gateway/signer-client.js`)], dist)).toBe('HTTP, sockets, files (Node, koa)');
    expect(categorise([f('(garbage collector)', '')], dist)).toBe('garbage collection');
    expect(categorise([f('append', `${dist}audit/log.js`)], dist)).toBe('audit log');
  });
});

describe('soak verdict', () => {
  it('passes a flat resident set under 200 MB, fails one that grows or one over 200 MB', () => {
    const flat = Array.from({ length: 60 }, (_, i) => 120 + (i % 3));
    expect(judge(flat)).toMatchObject({ grows: false, met: true });
    // Rising while the replay window fills (the first 6 minutes), flat after: no growth.
    const filling = Array.from({ length: 60 }, (_, i) => 120 + Math.min(i, 36));
    expect(judge(filling)).toMatchObject({ grows: false, met: true });
    const growing = Array.from({ length: 60 }, (_, i) => 60 + 2 * i);
    expect(judge(growing)).toMatchObject({ grows: true, met: false });
    expect(judge(flat.map((x) => x + 100))).toMatchObject({ grows: false, met: false });
  });
});
