// `npm run bench -- --quick` against a real cluster it starts itself: the run finishes, every
// figure file has the documented shape, both facades, SoftHSMv2 and the symmetric operations
// were really measured, and nothing it started is left behind. Timing is never asserted: figures vary by machine.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { repoRoot } from '../helpers/cluster.js';
import { buildShim } from '../p11/helpers.js';
import { findNginx } from '../../conformance/bench/nginx.js';

const run = promisify(execFile);
const bench = path.join(repoRoot, 'dist', 'conformance', 'bench', 'run.js');
const softhsm = existsSync('/usr/lib/softhsm/libsofthsm2.so') || existsSync('/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so');
const nginx = findNginx();

const latency = z.strictObject({ count: z.number().int().positive(), mean: z.number(), p50: z.number(), p95: z.number(), p99: z.number(), max: z.number() });
const point = z.strictObject({
  target: z.enum(['kms', 'p11', 'softhsm']),
  alg: z.enum(['rsa2048', 'p256', 'ed25519']),
  concurrency: z.number().int().positive(),
  status: z.enum(['ok', 'unavailable', 'failed']),
  reason: z.string().optional(),
  ops: z.number().int().positive().optional(),
  errors: z.number().int().min(0).optional(),
  seconds: z.number().positive().optional(),
  opsPerSec: z.number().positive().optional(),
  latencyMs: latency.optional(),
  cpuMsPerOp: z.record(z.string(), z.number().min(0)).optional(),
});
const symmetricPoint = point.omit({ target: true, alg: true }).extend({ operation: z.enum(['GenerateDataKey', 'Decrypt']) });
const results = z.object({
  version: z.literal(1),
  quick: z.literal(true),
  machine: z.object({ cpu: z.string(), cores: z.number().int().positive(), memoryGiB: z.number().positive(), node: z.string() }),
  cluster: z.object({ signers: z.literal(3), threshold: z.literal(2), started: z.literal(true) }),
  settings: z.object({ concurrency: z.array(z.number()), durationMs: z.number(), warmupMs: z.number(), keygenRuns: z.number() }),
  floors: z.object({ fdatasyncMs: latency, signerHealthMs: latency, gatewayHealthMs: latency, kmsDescribeKeyMs: latency }),
  keygen: z.array(z.object({ target: z.string(), alg: z.string(), status: z.enum(['ok', 'unavailable', 'failed']), runsMs: z.array(z.number().positive()) })),
  sign: z.array(point),
  ratios: z.array(z.object({ alg: z.string(), what: z.string(), target: z.string(), concurrency: z.union([z.number(), z.literal('best')]), ratio: z.number().positive() })),
  targets: z.array(z.object({ name: z.string(), limit: z.string(), measured: z.string(), met: z.union([z.boolean(), z.literal('not available')]) })),
  nginx: z.union([
    z.strictObject({ skipped: z.string(), install: z.string().optional() }),
    z.strictObject({
      version: z.string(),
      tls: z.literal('TLSv1.3'),
      concurrency: z.literal(4),
      workers: z.union([z.number(), z.literal('auto')]),
      points: z.array(z.object({ key: z.enum(['mpchsm', 'softhsm']), status: z.enum(['ok', 'unavailable', 'failed']), reason: z.string().optional(), handshakes: z.number().int().positive().optional(), perSec: z.number().positive().optional(), latencyMs: latency.optional(), moduleLogins: z.number().int().optional() })),
    }),
  ]),
  symmetric: z.strictObject({ key: z.strictObject({ status: z.enum(['ok', 'unavailable', 'failed']), reason: z.string().optional(), ms: z.number().positive().optional(), approved: z.boolean().optional() }), points: z.array(symmetricPoint) }),
  protocols: z.union([z.object({ rows: z.array(z.object({ protocol: z.string(), curve: z.string(), t: z.number(), n: z.number(), op: z.string(), ms_per_op: z.number() })) }), z.object({ error: z.string() })]),
});

/** Processes of this checkout (not another's benchmark running alongside) whose command line mentions `needle` (Linux /proc). */
function processesWith(needle: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
    .filter((d) => {
      try {
        const cmdline = readFileSync(`/proc/${d}/cmdline`, 'utf8');
        return cmdline.includes(needle) && cmdline.includes(repoRoot);
      } catch {
        return false;
      }
    })
    .map(Number);
}
/** nginx processes (a worker's command line no longer names its prefix directory). */
const nginxProcesses = () =>
  readdirSync('/proc').filter((d) => {
    try {
      return /^\d+$/.test(d) && readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'nginx';
    } catch {
      return false;
    }
  });
const benchTempDirs = () => new Set(readdirSync(os.tmpdir()).filter((d) => d.startsWith('mpchsm-bench-')));

let out: string;
let stdout: string;
let stderr: string;
let tempBefore: Set<string>;
let nginxBefore: Set<string>;

beforeAll(async () => {
  if (!existsSync(bench)) throw new Error(`${bench} is missing: run npm run build`);
  buildShim(); // the PKCS#11 module the benchmark loads
  out = mkdtempSync(path.join(os.tmpdir(), 'bench-test-out-'));
  tempBefore = benchTempDirs();
  nginxBefore = new Set(nginxProcesses());
  ({ stdout, stderr } = await run(process.execPath, [bench, '--quick', '--out', out], { cwd: repoRoot, timeout: 170_000, maxBuffer: 16 << 20 }));
}, 180_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('npm run bench -- --quick', () => {
  it('writes bench.json with a point for every path, algorithm and concurrency', () => {
    const r = results.parse(JSON.parse(readFileSync(path.join(out, 'bench.json'), 'utf8')));
    expect(r.settings.concurrency).toEqual([1, 4]);
    expect(r.sign).toHaveLength(3 * 3 * 2);
    expect(r.keygen).toHaveLength(3 * 3);
    for (const p of r.sign) {
      if (p.status !== 'ok') {
        expect(p.reason, `${p.target}/${p.alg} says why it has no figure`).toBeTruthy();
        continue;
      }
      // Consistency of the figures, not their size.
      expect(p.ops).toBe(p.latencyMs!.count);
      expect(p.latencyMs!.p50).toBeLessThanOrEqual(p.latencyMs!.p95);
      expect(p.latencyMs!.p95).toBeLessThanOrEqual(p.latencyMs!.p99);
      expect(p.latencyMs!.p99).toBeLessThanOrEqual(p.latencyMs!.max);
      expect(Math.abs(p.opsPerSec! - p.ops! / p.seconds!) / p.opsPerSec!).toBeLessThan(0.01);
      expect(Object.keys(p.cpuMsPerOp!)).toContain('client');
      if (p.target !== 'softhsm') expect(Object.keys(p.cpuMsPerOp!)).toEqual(expect.arrayContaining(['gateway', 'signer1', 'signer2', 'signer3']));
    }
    // RSA and Ed25519 work through both facades today; the SoftHSMv2 loop runs wherever it is installed.
    const ok = (target: string, alg: string) => r.sign.filter((p) => p.target === target && p.alg === alg && p.status === 'ok').length;
    const why = (target: string, alg: string) => `${target}/${alg}: ${r.sign.find((p) => p.target === target && p.alg === alg && p.status !== 'ok')?.reason}`;
    for (const target of ['kms', 'p11', ...(softhsm ? ['softhsm'] : [])]) for (const alg of ['rsa2048', 'ed25519']) expect(ok(target, alg), why(target, alg)).toBe(2);
    // P-256 is either measured or reported as not available yet, never silently missing.
    for (const p of r.sign.filter((x) => x.alg === 'p256' && x.target !== 'softhsm')) expect(['ok', 'unavailable']).toContain(p.status);
    if (softhsm) expect(r.ratios.some((x) => x.what === 'throughput vs SoftHSMv2' && x.alg === 'rsa2048' && x.target === 'p11')).toBe(true);
    expect(r.ratios.some((x) => x.what === 'throughput KMS vs PKCS#11')).toBe(true);
    expect(r.targets.map((t) => t.name)).toEqual(expect.arrayContaining([expect.stringMatching(/^RSA-2048 PKCS#11 throughput/), expect.stringMatching(/^ECDSA P-256 p50 latency, 1 client, PKCS#11/)]));
    if ('rows' in r.protocols) {
      expect(r.protocols.rows.some((x) => x.protocol === 'frost' && x.curve === 'ed25519' && x.op === 'sign')).toBe(true);
      expect(r.protocols.rows.some((x) => x.protocol === 'rsa-shoup' && x.op === 'sign')).toBe(true);
    } else throw new Error(`protocol figures missing: ${r.protocols.error}`);
  });

  it('measures GenerateDataKey and Decrypt with a symmetric key at every concurrency', () => {
    const r = results.parse(JSON.parse(readFileSync(path.join(out, 'bench.json'), 'utf8')));
    expect(r.symmetric.key.status, r.symmetric.key.reason).toBe('ok');
    expect(r.symmetric.points.map((p) => `${p.operation}@${p.concurrency}`)).toEqual(['GenerateDataKey@1', 'GenerateDataKey@4', 'Decrypt@1', 'Decrypt@4']);
    for (const p of r.symmetric.points) {
      expect(p.status, `${p.operation}@${p.concurrency}: ${p.reason}`).toBe('ok');
      expect(p.errors).toBe(0);
      expect(p.ops).toBe(p.latencyMs!.count);
      expect(Object.keys(p.cpuMsPerOp!)).toEqual(expect.arrayContaining(['client', 'gateway', 'signer1', 'signer2', 'signer3']));
    }
  });

  it('measures nginx TLS handshakes with the mpchsm and the SoftHSMv2 key, or says how to install nginx', () => {
    const r = results.parse(JSON.parse(readFileSync(path.join(out, 'bench.json'), 'utf8')));
    const row = r.targets.find((t) => t.name === 'nginx TLS handshakes/s, RSA-2048, ÷ SoftHSMv2')!;
    if ('missing' in nginx) {
      expect(r.nginx).toEqual({ skipped: nginx.missing, install: nginx.install });
      expect(row.measured).toBe(`not measured (${nginx.missing})`);
      expect(stderr).toContain(`nginx TLS handshakes: skipped — ${nginx.missing} (${nginx.install})`);
      return;
    }
    if (!('points' in r.nginx)) throw new Error(`nginx phase skipped: ${r.nginx.skipped}`);
    const at = (key: string) => r.nginx && 'points' in r.nginx ? r.nginx.points.find((p) => p.key === key)! : undefined;
    const m = at('mpchsm')!;
    expect(m.status, m.reason).toBe('ok');
    expect(m.handshakes).toBe(m.latencyMs!.count);
    // nginx's master and at least one worker each initialised the module and logged in.
    expect(m.moduleLogins).toBeGreaterThanOrEqual(2);
    if (softhsm) {
      expect(at('softhsm')!.status, at('softhsm')!.reason).toBe('ok');
      expect(row.measured).toMatch(/^[\d.]+ \([\d.]+ vs [\d.]+ handshakes\/s\)$/);
    }
  });

  it('prints the Markdown report and writes it with the README snippet and the chart', () => {
    const md = readFileSync(path.join(out, 'bench.md'), 'utf8');
    expect(stdout).toBe(md);
    for (const h of ['## Signing, end to end', '## Key generation', '## KMS against PKCS#11', '## Symmetric operations via mpchsm KMS', '## Targets', '## Where the time goes', '## Protocols alone']) expect(md).toContain(h);
    expect(md).toMatch(/\| Decrypt \(of a data key\) \| 4 \| [\d.]+ \|/);
    expect(md).toMatch(/\| RSA-2048 PKCS#1 v1\.5 \| mpchsm KMS \| 1 \| [\d.]+ \|/);
    const snippet = readFileSync(path.join(out, 'README-performance.md'), 'utf8');
    expect(snippet).toMatch(/^## Performance\n/);
    expect(snippet).toContain('Node.js v');
    expect(snippet).toMatch(/\| Ed25519 \| mpchsm KMS \| [\d.]+ \/ [\d.]+ \|/);
    expect(snippet).toMatch(/\| GenerateDataKey \(AES_256\) \| [\d.]+ \/ [\d.]+ \| [\d.]+ \/ [\d.]+ \|/);
    const svg = readFileSync(path.join(out, 'throughput.svg'), 'utf8');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    // One line per measured path × algorithm.
    const r = JSON.parse(readFileSync(path.join(out, 'bench.json'), 'utf8')) as z.infer<typeof results>;
    const lines = new Set(r.sign.filter((p) => p.status === 'ok').map((p) => `${p.target}/${p.alg}`));
    expect(svg.match(/<polyline /g)).toHaveLength(lines.size);
  });

  it('shows progress on stderr and leaves nothing running or on disk', () => {
    expect(stderr).toMatch(/bench: starting a local cluster/);
    expect(stderr).toMatch(/bench: stopping the client processes and the cluster/);
    expect(processesWith('mpchsm-bench-')).toEqual([]);
    expect(processesWith(path.join('conformance', 'bench', 'worker.js'))).toEqual([]);
    expect(nginxProcesses().filter((p) => !nginxBefore.has(p))).toEqual([]);
    const left = [...benchTempDirs()].filter((d) => !tempBefore.has(d));
    expect(left).toEqual([]);
  });
});

describe('refusals', () => {
  it('refuses bad options before starting anything', () => {
    const r = (args: string[]) => {
      try {
        execFileSync(process.execPath, [bench, ...args], { stdio: 'pipe', timeout: 30_000 });
        return { status: 0, stderr: '' };
      } catch (e) {
        return { status: (e as { status: number }).status, stderr: String((e as { stderr: Buffer }).stderr) };
      }
    };
    const zero = r(['--concurrency', '0']);
    expect(zero.status).toBe(2);
    expect(zero.stderr).toBe('bench: --concurrency must be a number in (0, 256] (see --help)\n');
    expect(r(['--concurrency', '1.5']).stderr).toMatch(/whole numbers/);
    expect(r(['--duration', '0']).stderr).toMatch(/--duration must be a number/);
    expect(r(['--duration', '61']).stderr).toMatch(/--duration must be a number in \(0, 60\]/);
    const unknown = r(['--frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown option '--frobnicate'/);
  });

  it('says clearly when --cluster names a directory where nothing runs', () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'bench-test-empty-'));
    try {
      execFileSync(process.execPath, [bench, '--quick', '--no-protocols', '--cluster', empty], { stdio: 'pipe', timeout: 60_000 });
      expect.unreachable('the run should have failed');
    } catch (e) {
      expect(String((e as { stderr: Buffer }).stderr)).toMatch(/cluster\.json/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
