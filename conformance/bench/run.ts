// `npm run bench`: mpchsm end to end through both facades on a local cluster, against SoftHSMv2
// driven by the same PKCS#11 client loop, plus the protocol-only figures of
// `npm run bench:protocols`. Progress goes to stderr; the Markdown report to stdout; the
// report, a JSON file, an SVG chart and the README's performance section to bench-results/.
//
//   node dist/conformance/bench/run.js [--quick] [--out DIR] [--cluster DIR] [--duration S]
//        [--concurrency 1,4,16] [--keygen-runs N] [--no-profile] [--no-protocols]
//
// Everything it starts (cluster, client processes, SoftHSMv2 token) it stops, also on Ctrl-C.
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { BOOTSTRAP_PRINCIPALS, packageRoot } from '../../cli/layout.js';
import { throughputChart } from './chart.js';
import { ClientProcess } from './client-process.js';
import { attachCluster, startCluster, type BenchCluster } from './cluster.js';
import { busyWarning, describeMachine, fdatasyncLatency, httpRoundTrip, machine, revision } from './machine.js';
import { CpuMeter } from './procstat.js';
import { ProfileCutter, profileEnv, summariseProfile } from './profile.js';
import { fullReport, readmeSnippet } from './report.js';
import { checkTargets, point, ratios, type BenchResults, type KeygenFigure, type ProfileSegment, type ProtocolRow, type SignPoint } from './results.js';
import { createSoftHsmToken, findSoftHsm, type SoftHsmToken } from './softhsm.js';
import { ALG_LABEL, ALGS, TARGET_LABEL, TARGETS, keygenAnswerSchema, latencySummarySchema, loadResultSchema, type Alg, type KeygenResult, type LoadResult, type Target, type WorkerInit } from './types.js';

interface Options {
  quick: boolean;
  out: string;
  cluster: string | undefined;
  durationMs: number;
  warmupMs: number;
  concurrency: number[];
  keygenRuns: number;
  profile: boolean;
  protocols: boolean;
}

/** A bad command line: reported without a stack trace. */
class UsageError extends Error {}

function options(argv: string[]): Options {
  try {
    return parseOptions(argv);
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError((e as Error).message.split('\n')[0]);
    throw e;
  }
}

function parseOptions(argv: string[]): Options {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      cluster: { type: 'string' },
      duration: { type: 'string' },
      concurrency: { type: 'string' },
      'keygen-runs': { type: 'string' },
      'no-profile': { type: 'boolean', default: false },
      'no-protocols': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (v.help) {
    process.stdout.write(`${readHelp()}\n`);
    process.exit(0);
  }
  const positive = (name: string, s: string | undefined, dflt: number, max: number) => {
    if (s === undefined) return dflt;
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0 || n > max) throw new UsageError(`--${name} must be a number in (0, ${max}]`);
    return n;
  };
  const quick = v.quick;
  const concurrency = (v.concurrency ?? (quick ? '1,4' : '1,4,16')).split(',').map((s) => positive('concurrency', s, 1, 256));
  if (concurrency.some((c) => !Number.isInteger(c))) throw new UsageError('--concurrency takes whole numbers, e.g. 1,4,16');
  const durationMs = Math.round(positive('duration', v.duration, quick ? 0.4 : 4, 60) * 1000);
  return {
    quick,
    out: path.resolve(v.out ?? path.join(packageRoot, 'bench-results')),
    cluster: v.cluster,
    durationMs,
    warmupMs: quick ? 150 : 1000,
    concurrency: [...new Set(concurrency)].sort((a, b) => a - b),
    keygenRuns: Math.round(positive('keygen-runs', v['keygen-runs'], quick ? 1 : 3, 20)),
    // Profiling restarts the cluster: only one the benchmark started, and not in smoke runs.
    profile: !v['no-profile'] && !quick && v.cluster === undefined,
    protocols: !v['no-protocols'],
  };
}

function readHelp(): string {
  return [
    'usage: npm run bench -- [options]',
    '  --quick              short smoke run (1 and 4 clients, 0.4 s per point, no profiling)',
    '  --out DIR            where to write bench.json, bench.md, throughput.svg, README-performance.md (default bench-results/)',
    '  --cluster DIR        measure a cluster already running from DIR instead of starting one',
    '  --duration S         seconds per measured point (default 4)',
    '  --concurrency LIST   concurrent clients, e.g. 1,4,16 (default)',
    '  --keygen-runs N      key generations per algorithm and path (default 3)',
    '  --no-profile         skip the CPU-profile phase (it restarts the cluster with a profiler)',
    '  --no-protocols       skip the protocol-only benchmark',
  ].join('\n');
}

/** Progress on stderr: one line per step; on a terminal, a live countdown while a point runs. */
class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private live = false;

  step(msg: string): void {
    this.clear();
    process.stderr.write(`bench: ${msg}\n`);
  }

  async during<T>(label: string, ms: number, work: Promise<T>): Promise<T> {
    if (!this.tty) return work;
    const t0 = Date.now();
    const draw = () => {
      this.live = true;
      const elapsed = ((Date.now() - t0) / 1000).toFixed(1);
      process.stderr.write(`\r\x1b[2Kbench: ${label} ${elapsed}${ms ? ` / ${(ms / 1000).toFixed(1)}` : ''} s`);
    };
    draw();
    const timer = setInterval(draw, 250);
    try {
      return await work;
    } finally {
      clearInterval(timer);
      this.clear();
    }
  }

  private clear(): void {
    if (this.live) process.stderr.write('\r\x1b[2K');
    this.live = false;
  }
}

/** Everything a run has started, released in a fixed order whatever happens. */
interface Held {
  protocols?: ChildProcess;
  clients: Map<Target, ClientProcess>;
  cluster?: BenchCluster;
  token?: SoftHsmToken;
  profileDir?: string;
}

async function release(h: Held): Promise<void> {
  if (h.protocols && h.protocols.exitCode === null) h.protocols.kill();
  await Promise.all([...h.clients.values()].map((c) => c.stop().catch(() => undefined)));
  h.clients.clear();
  await h.cluster?.close().catch(() => undefined);
  if (h.profileDir) rmSync(h.profileDir, { recursive: true, force: true });
  h.token?.close();
}

const protocolRowSchema = z.object({ protocol: z.string(), curve: z.string(), t: z.number(), n: z.number(), op: z.string(), ms_per_op: z.number() });

/** `npm run bench:protocols -- --json` as a child process, its lines parsed. */
function protocolFigures(quick: boolean, held: Held): Promise<{ rows: ProtocolRow[] } | { error: string }> {
  const script = fileURLToPath(new URL('./protocols.js', import.meta.url));
  if (!existsSync(script)) return Promise.resolve({ error: `${script} is missing (npm run build)` });
  return new Promise((resolve) => {
    held.protocols = execFile(process.execPath, [script, '--json', ...(quick ? ['--quick'] : [])], { timeout: 300_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) return resolve({ error: `${err.message.split('\n')[0]}${stderr ? `: ${stderr.trim().split('\n').slice(-2).join(' / ')}` : ''}` });
      try {
        const rows = stdout
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => protocolRowSchema.parse(JSON.parse(l)));
        resolve({ rows });
      } catch (e) {
        resolve({ error: `unparseable output: ${(e as Error).message}` });
      }
    });
  });
}

const keyOf = (keys: Map<string, KeygenResult>, target: Target, alg: Alg) => keys.get(`${target}/${alg}`);

/**
 * The key each path signs with: PKCS#11 uses the key made through KMS — the same key behind
 * both facades, found by its CKA_ID (the UUID's 16 bytes) — or, failing that, its own.
 */
function signingKey(keys: Map<string, KeygenResult>, target: Target, alg: Alg): KeygenResult | undefined {
  const viaKms = keyOf(keys, 'kms', alg);
  if (target === 'p11' && viaKms) return { ...viaKms, keyRef: viaKms.keyRef.replace(/-/g, '') };
  return keyOf(keys, target, alg);
}

const approveAnswerSchema = z.object({
  Status: z.string(),
  Result: z.object({ KeyMetadata: z.object({ KeyId: z.string() }) }).optional(),
});

/**
 * Approves a held CreateKey as the dev cluster's administrators, one after another, until the
 * gateway executes it; resolves with the new key and the time the approvals took (each a
 * `mpchsm approve` process: the key generation runs inside the approval that completes quorum).
 */
async function approveProposal(cluster: BenchCluster, proposalId: string): Promise<{ keyId: string; ms: number }> {
  const t = performance.now();
  for (const admin of BOOTSTRAP_PRINCIPALS.filter((p) => p.startsWith('admin'))) {
    const a = approveAnswerSchema.parse(await cluster.approve(proposalId, admin));
    if (a.Status === 'Executed' && a.Result) return { keyId: a.Result.KeyMetadata.KeyId, ms: performance.now() - t };
    if (a.Status !== 'Pending') throw new Error(`proposal ${proposalId}: ${a.Status}`);
  }
  throw new Error(`proposal ${proposalId} still pending after every administrator approved it`);
}

function clusterPids(c: BenchCluster): Record<string, number> {
  const info = c.info();
  return { gateway: info.gateway.pid, ...Object.fromEntries(info.signers.map((s) => [s.name, s.pid])) };
}

function kmsInit(c: BenchCluster): WorkerInit {
  const app = c.principal('app');
  const admin = c.principal('admin1');
  const creds = (p: Record<string, string>) => ({ accessKeyId: p.AWS_ACCESS_KEY_ID!, secretAccessKey: p.AWS_SECRET_ACCESS_KEY! });
  return { kind: 'kms', endpoint: app.MPCHSM_KMS_ENDPOINT!, region: app.AWS_REGION!, app: creds(app), admin: creds(admin) };
}

async function startClient(held: Held, target: Target, o: Options, token: SoftHsmToken | undefined): Promise<string | undefined> {
  const cluster = held.cluster!;
  const threads = String(Math.max(...o.concurrency) + 4);
  let env: Record<string, string>;
  let init: WorkerInit;
  if (target === 'kms') [env, init] = [{}, kmsInit(cluster)];
  else if (target === 'p11') {
    const app = cluster.principal('app');
    const admin = cluster.principal('admin1');
    if (!existsSync(app.MPCHSM_PKCS11_MODULE!)) return `the PKCS#11 module is not built (make -C pkcs11-shim): ${app.MPCHSM_PKCS11_MODULE}`;
    env = { MPCHSM_PKCS11_CONF: app.MPCHSM_PKCS11_CONF!, UV_THREADPOOL_SIZE: threads };
    init = { kind: 'p11', module: app.MPCHSM_PKCS11_MODULE!, userPin: app.MPCHSM_PKCS11_PIN!, keygenPin: admin.MPCHSM_PKCS11_PIN!, keygenUser: 'so' };
  } else {
    if (!token) return 'SoftHSMv2 is not installed';
    env = { ...token.env, UV_THREADPOOL_SIZE: threads };
    init = { kind: 'p11', module: token.module, userPin: token.pin, keygenPin: token.pin, keygenUser: 'user' };
  }
  const cp = ClientProcess.start(TARGET_LABEL[target], env);
  held.clients.set(target, cp);
  try {
    await cp.call({ op: 'init', init }, z.null(), 60_000);
    return undefined;
  } catch (e) {
    held.clients.delete(target);
    await cp.stop();
    return (e as Error).message;
  }
}

async function bench(o: Options, progress: Progress, held: Held): Promise<BenchResults> {
  const startedAt = new Date().toISOString();
  const m = machine();
  const rev = revision(packageRoot);
  progress.step(`${describeMachine(m)}${rev ? `; mpchsm ${rev}` : ''}`);
  const busy = busyWarning(m);
  if (busy) progress.step(`warning: ${busy}`);

  // Protocol maths alone, before anything else loads the machine (in a smoke run, alongside).
  let protocols: Promise<BenchResults['protocols']> = Promise.resolve({ error: 'skipped (--no-protocols)' });
  if (o.protocols) {
    progress.step(`protocol-only figures: npm run bench:protocols -- --json${o.quick ? ' --quick' : ''}`);
    protocols = protocolFigures(o.quick, held);
    if (!o.quick) await progress.during('bench:protocols', 0, protocols);
  }

  progress.step(o.cluster ? `using the cluster running from ${o.cluster}` : 'starting a local cluster: gateway + 3 signers, threshold 2');
  held.cluster = o.cluster ? attachCluster(o.cluster) : await startCluster(3, 2);
  const info = held.cluster.info();
  // Also proves a borrowed cluster is up before anything else is attempted.
  const floors: BenchResults['floors'] = {
    gatewayHealthMs: await httpRoundTrip(`${info.gateway.url}/health`, o.quick ? 20 : 200),
    signerHealthMs: await httpRoundTrip(`${info.signers[0]!.url}/health`, o.quick ? 20 : 200),
    fdatasyncMs: await fdatasyncLatency(path.dirname(held.cluster.dir), o.quick ? 20 : 200),
  };

  const soft = findSoftHsm();
  if ('module' in soft) {
    held.token = createSoftHsmToken(soft);
    progress.step(`SoftHSMv2 ${soft.version}: a fresh token in a temporary directory`);
  } else progress.step(`no SoftHSMv2 comparison: ${soft.missing}`);

  const missing = new Map<Target, string>();
  for (const t of TARGETS) {
    const why = await startClient(held, t, o, held.token);
    if (why) missing.set(t, why);
  }

  // ---- key generation ------------------------------------------------------------------------
  const keygen: KeygenFigure[] = [];
  const keys = new Map<string, KeygenResult>();
  const reasons: Partial<Record<Alg, string>> = {};
  for (const alg of ALGS)
    for (const target of TARGETS) {
      const cp = held.clients.get(target);
      const fig: KeygenFigure = { target, alg, status: 'ok', runsMs: [] };
      keygen.push(fig);
      if (!cp) {
        Object.assign(fig, { status: 'unavailable', reason: missing.get(target) });
        continue;
      }
      for (let i = 0; i < o.keygenRuns && fig.status === 'ok'; i++) {
        const label = `keygen ${ALG_LABEL[alg]} via ${TARGET_LABEL[target]} (${i + 1}/${o.keygenRuns})`;
        try {
          let a = await progress.during(label, 0, cp.call({ op: 'keygen', alg, label: `bench-${alg}-${i + 1}` }, keygenAnswerSchema, 300_000));
          if (a.status === 'proposal') {
            const { proposalId, ms } = a;
            const done = await progress.during(`${label}: approving proposal ${proposalId}`, 0, approveProposal(held.cluster, proposalId));
            const spki = await cp.call({ op: 'publicKey', keyRef: done.keyId }, z.base64(), 60_000);
            a = { status: 'ok', result: { keyRef: done.keyId, spki, ms: ms + done.ms } };
            fig.approved = true;
          }
          if (a.status === 'unavailable') {
            Object.assign(fig, { status: 'unavailable', reason: a.reason });
            if (target !== 'softhsm') reasons[alg] ??= `not available yet (${a.reason})`;
            progress.step(`${label}: not available yet — ${a.reason}`);
          } else {
            fig.runsMs.push(Math.round(a.result.ms * 10) / 10);
            if (!keyOf(keys, target, alg)) keys.set(`${target}/${alg}`, a.result);
            progress.step(`${label}: ${a.result.ms.toFixed(0)} ms`);
          }
        } catch (e) {
          Object.assign(fig, { status: 'failed', reason: (e as Error).message });
          progress.step(`${label}: failed — ${(e as Error).message}`);
        }
      }
      if (fig.runsMs.length) fig.meanMs = Math.round((fig.runsMs.reduce((a, b) => a + b, 0) / fig.runsMs.length) * 10) / 10;
    }

  // ---- floors ------------------------------------------------------------------------------
  const kmsKey = ALGS.map((a) => keyOf(keys, 'kms', a)).find(Boolean);
  if (kmsKey) floors.kmsDescribeKeyMs = await held.clients.get('kms')!.call({ op: 'ping', keyRef: kmsKey.keyRef, count: o.quick ? 20 : 200 }, latencySummarySchema, 120_000);

  // ---- signing -----------------------------------------------------------------------------
  const sign: SignPoint[] = [];
  const pids = clusterPids(held.cluster);
  const total = ALGS.length * TARGETS.length * o.concurrency.length;
  let n = 0;
  for (const alg of ALGS)
    for (const target of TARGETS)
      for (const c of o.concurrency) {
        n++;
        const key = signingKey(keys, target, alg);
        const cp = held.clients.get(target);
        if (!key || !cp) {
          const fig = keygen.find((k) => k.target === (target === 'p11' ? 'kms' : target) && k.alg === alg)!;
          sign.push({ target, alg, concurrency: c, status: fig.status === 'failed' ? 'failed' : 'unavailable', reason: missing.get(target) ?? fig.reason ?? 'no key' });
          continue;
        }
        const label = `[${n}/${total}] ${ALG_LABEL[alg]} via ${TARGET_LABEL[target]}, ${c} client${c > 1 ? 's' : ''}`;
        const load = (durationMs: number) =>
          cp.call({ op: 'sign', alg, keyRef: key.keyRef, spki: key.spki, concurrency: c, durationMs }, loadResultSchema, durationMs + 120_000);
        try {
          // A longer warm-up before each path and algorithm's first point: its JIT is cold.
          const warm = c === o.concurrency[0] && !o.quick ? 3 * o.warmupMs : o.warmupMs;
          await progress.during(`${label}: warm-up`, warm, load(warm));
          const meter = new CpuMeter(target === 'softhsm' ? { client: cp.pid } : { client: cp.pid, ...pids });
          const r: LoadResult = await progress.during(label, o.durationMs, load(o.durationMs));
          const cpu = meter.since();
          if (r.ops === 0) throw new Error(r.firstError ?? 'no signature completed');
          const opsPerSec = r.ops / (r.wallMs / 1000);
          sign.push({
            target,
            alg,
            concurrency: c,
            status: 'ok',
            ...(r.errors ? { reason: `${r.errors} failed calls, first: ${r.firstError}` } : {}),
            ops: r.ops,
            errors: r.errors,
            seconds: Math.round(r.wallMs) / 1000,
            opsPerSec: Math.round(opsPerSec * 100) / 100,
            latencyMs: r.latencyMs,
            cpuMsPerOp: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Math.round((v / r.ops) * 1000) / 1000])),
          });
          progress.step(`${label}: ${opsPerSec.toFixed(1)} sig/s, p50 ${r.latencyMs.p50.toFixed(1)} ms, p99 ${r.latencyMs.p99.toFixed(1)} ms${r.errors ? `, ${r.errors} errors` : ''}`);
        } catch (e) {
          sign.push({ target, alg, concurrency: c, status: 'failed', reason: (e as Error).message });
          progress.step(`${label}: failed — ${(e as Error).message}`);
        }
      }

  // ---- profiles ----------------------------------------------------------------------------
  let profile: BenchResults['profile'];
  if (o.profile && held.cluster.owned) {
    try {
      profile = { segments: await profilePhase(o, progress, held, keys, sign) };
    } catch (e) {
      profile = { error: (e as Error).message };
      progress.step(`profiling failed: ${(e as Error).message}`);
    }
  }

  const protocolResult = await progress.during('waiting for bench:protocols', 0, protocols);
  if ('error' in protocolResult) progress.step(`protocol figures: ${protocolResult.error}`);
  return {
    version: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    quick: o.quick,
    ...(rev ? { revision: rev } : {}),
    machine: m,
    cluster: { signers: info.signers_total, threshold: info.threshold, started: held.cluster.owned },
    softhsm: 'module' in soft ? { version: soft.version } : soft,
    settings: { concurrency: o.concurrency, durationMs: o.durationMs, warmupMs: o.warmupMs, keygenRuns: o.keygenRuns },
    floors,
    keygen,
    sign,
    ratios: ratios(sign, o.concurrency, ALGS),
    targets: checkTargets(sign, reasons),
    protocols: protocolResult,
    ...(profile ? { profile } : {}),
  };
}

/**
 * Restarts the cluster with the profiling hook, then for each mpchsm path and algorithm signs
 * at one client for a fixed time, cutting every process's CPU profile around exactly that.
 */
async function profilePhase(o: Options, progress: Progress, held: Held, keys: Map<string, KeygenResult>, sign: readonly SignPoint[]): Promise<ProfileSegment[]> {
  const cluster = held.cluster!;
  const wanted = (['p11', 'kms'] as const).flatMap((target) => ALGS.filter((alg) => point(sign, target, alg, 1)).map((alg) => ({ target, alg })));
  if (wanted.length === 0) return [];
  progress.step('profile phase: restarting the cluster with a CPU profiler in every process');
  for (const t of ['kms', 'p11'] as const) await held.clients.get(t)?.stop();
  held.profileDir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-bench-prof-'));
  await cluster.restart(profileEnv(held.profileDir));
  const pids = clusterPids(cluster);
  const cutter = new ProfileCutter(held.profileDir, pids);
  await cutter.ready();
  for (const t of ['kms', 'p11'] as const) {
    const why = wanted.some((w) => w.target === t) ? await startClient(held, t, o, undefined) : undefined;
    if (why) throw new Error(why);
  }

  const segments: ProfileSegment[] = [];
  const seconds = 3;
  for (const { target, alg } of wanted) {
    const key = signingKey(keys, target, alg)!;
    const cp = held.clients.get(target)!;
    const load = (durationMs: number) => cp.call({ op: 'sign', alg, keyRef: key.keyRef, spki: key.spki, concurrency: 1, durationMs }, loadResultSchema, durationMs + 120_000);
    const label = `profile: ${ALG_LABEL[alg]} via ${TARGET_LABEL[target]}, 1 client`;
    await progress.during(`${label}: warm-up`, 1500, load(1500)); // the restarted processes' JIT
    await cutter.cut();
    const r = await progress.during(label, seconds * 1000, load(seconds * 1000));
    const files = await cutter.cut();
    if (r.ops === 0) throw new Error(`${label}: ${r.firstError ?? 'no signature completed'}`);
    // Samples count time on a CPU and time runnable but waiting for one (the processes share
    // the cores), and the profiler costs CPU itself: the profile gives each process's shares,
    // the unprofiled measurement at one client the CPU per signature they divide.
    const unprofiled = point(sign, target, alg, 1)?.cpuMsPerOp ?? {};
    const processes: ProfileSegment['processes'] = {};
    for (const [name, file] of Object.entries(files)) {
      const s = summariseProfile(file, packageRoot);
      const perOp = unprofiled[name] ?? s.cpuMs / r.ops;
      const scale = s.cpuMs > 0 ? perOp / s.cpuMs : 0;
      const ms = (v: number) => Math.round(v * scale * 1000) / 1000;
      processes[name] = { cpuMsPerOp: perOp, categories: s.categories.map(([k, v]) => [k, ms(v)]), top: s.top.map(([k, v]) => [k, ms(v)]) };
    }
    segments.push({ target, alg, ops: r.ops, latencyP50Ms: r.latencyMs.p50, processes });
    progress.step(`${label}: ${r.ops} signatures profiled`);
  }
  return segments;
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const progress = new Progress();
  const held: Held = { clients: new Map() };
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    progress.step(`${sig}: stopping everything the benchmark started`);
    void release(held).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let results: BenchResults;
  try {
    results = await bench(o, progress, held);
  } finally {
    if (!stopping) {
      progress.step('stopping the client processes and the cluster');
      await release(held);
    }
  }
  mkdirSync(o.out, { recursive: true });
  const md = fullReport(results);
  const files = {
    'bench.json': JSON.stringify(results, null, 2) + '\n',
    'bench.md': md,
    'throughput.svg': throughputChart(results.sign, `${results.cluster.signers} signers, t = ${results.cluster.threshold}, all local · ${describeMachine(results.machine)}`),
    'README-performance.md': readmeSnippet(results),
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(o.out, name), text);
  process.stdout.write(md);
  progress.step(`wrote ${Object.keys(files).map((f) => path.join(o.out, f)).join(', ')}`);
}

main().catch((e: Error) => {
  if (e instanceof UsageError) {
    process.stderr.write(`bench: ${e.message} (see --help)\n`);
    process.exit(2);
  }
  process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
