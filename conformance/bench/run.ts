// `npm run bench`: mpchsm end to end through both facades on a local cluster, against SoftHSMv2
// driven by the same PKCS#11 client loop, symmetric-key operations through KMS, plus the
// protocol-only figures of `npm run bench:protocols`. Progress goes to stderr; the Markdown
// report to stdout; the report, a JSON file, an SVG chart and the README's performance section
// to bench-results/.
//
//   node dist/conformance/bench/run.js [--quick] [--out DIR] [--cluster DIR] [--duration S]
//        [--concurrency 1,4,16] [--keygen-runs N] [--no-profile] [--no-protocols]
//        [--no-nginx] [--nginx-workers N] [--only nginx|symmetric]
//
// Everything it starts (cluster, client processes, SoftHSMv2 tokens, nginx) it stops, also on
// Ctrl-C.
//
// This file runs the phases in order (bench) and writes the files (main); options.ts reads the
// command line, held.ts starts and stops what a run uses, keys.ts picks and approves keys,
// measure.ts takes one point, symmetric-phase.ts measures GenerateDataKey and Decrypt,
// nginx-phase.ts measures TLS handshakes, profile-phase.ts profiles, report.ts and chart.ts
// write the results up.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { packageRoot } from '../../cli/layout.js';
import { throughputChart } from './chart.js';
import { attachCluster, startCluster } from './cluster.js';
import { clusterPids, protocolFigures, release, startClient, type Held } from './held.js';
import { approveProposal, keyOf, signingKey } from './keys.js';
import { busyWarning, describeMachine, fdatasyncLatency, httpRoundTrip, machine, revision } from './machine.js';
import { clientsLabel, measurePoint, pointLine, warmupFor } from './measure.js';
import { UsageError, options, type Options } from './options.js';
import { nginxPhase } from './nginx-phase.js';
import { profilePhase } from './profile-phase.js';
import { Progress } from './progress.js';
import { fullReport, readmeSnippet } from './report.js';
import { checkTargets, ratios, type BenchResults, type KeygenFigure, type NginxResults, type SignPoint, type SymmetricResults } from './results.js';
import { createSoftHsmToken, findSoftHsm } from './softhsm.js';
import { symmetricPhase } from './symmetric-phase.js';
import { ALG_LABEL, ALGS, TARGET_LABEL, TARGETS, keygenAnswerSchema, latencySummarySchema, loadResultSchema, type Alg, type KeygenResult, type Target } from './types.js';

async function bench(o: Options, progress: Progress, held: Held): Promise<BenchResults> {
  const startedAt = new Date().toISOString();
  const m = machine();
  const rev = revision(packageRoot);
  progress.step(`${describeMachine(m)}${rev ? `; mpchsm ${rev}` : ''}`);
  const busy = busyWarning(m);
  if (busy) progress.step(`warning: ${busy}`);

  // Protocol maths alone, before anything else loads the machine (in a smoke run, alongside).
  let protocols: Promise<BenchResults['protocols']> = Promise.resolve({ error: `skipped (${o.only ? `--only ${o.only}` : '--no-protocols'})` });
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

  // --only symmetric: KMS alone, nothing to compare with SoftHSMv2.
  const soft = o.only === 'symmetric' ? { missing: 'not used (--only symmetric)' } : findSoftHsm();
  if ('module' in soft) {
    held.token = createSoftHsmToken(soft);
    progress.step(`SoftHSMv2 ${soft.version}: a fresh token in a temporary directory`);
  } else progress.step(`no SoftHSMv2 comparison: ${soft.missing}`);

  const missing = new Map<Target, string>();
  for (const t of o.only === 'symmetric' ? (['kms'] as const) : TARGETS) {
    const why = await startClient(held, t, Math.max(...o.concurrency), held.token);
    if (why) missing.set(t, why);
  }

  // ---- key generation ------------------------------------------------------------------------
  const keygen: KeygenFigure[] = [];
  const keys = new Map<string, KeygenResult>();
  const reasons: Partial<Record<Alg, string>> = {};
  // --only nginx: the RSA-2048 keys nginx serves with, and no signing points; --only symmetric: no signing keys.
  const algs: readonly Alg[] = o.only === 'nginx' ? ['rsa2048'] : o.only === 'symmetric' ? [] : ALGS;
  for (const alg of algs)
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
  const signed = o.only ? [] : ALGS;
  const total = signed.length * TARGETS.length * o.concurrency.length;
  let n = 0;
  for (const alg of signed)
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
        const label = `[${n}/${total}] ${ALG_LABEL[alg]} via ${TARGET_LABEL[target]}, ${clientsLabel(c)}`;
        const load = (durationMs: number) =>
          cp.call({ op: 'sign', alg, keyRef: key.keyRef, spki: key.spki, concurrency: c, durationMs }, loadResultSchema, durationMs + 120_000);
        try {
          const m = await measurePoint(progress, label, target === 'softhsm' ? { client: cp.pid } : { client: cp.pid, ...pids }, { warmMs: warmupFor(o, c), durationMs: o.durationMs }, 'signature', load);
          sign.push({ target, alg, concurrency: c, status: 'ok', ...m });
          progress.step(`${label}: ${pointLine(m, 'sig/s')}`);
        } catch (e) {
          sign.push({ target, alg, concurrency: c, status: 'failed', reason: (e as Error).message });
          progress.step(`${label}: failed — ${(e as Error).message}`);
        }
      }

  // ---- symmetric keys ----------------------------------------------------------------------
  // Before the profile phase, which restarts the cluster (new pids).
  const symmetric: SymmetricResults = o.only === 'nginx' ? { skipped: '--only nginx' } : await symmetricPhase(o, progress, held, pids, missing.get('kms'));

  // ---- nginx -------------------------------------------------------------------------------
  const nginx: NginxResults = o.nginx ? await nginxPhase(o, progress, held, keys, soft) : { skipped: o.only === 'symmetric' ? '--only symmetric' : '--no-nginx' };

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
    targets: checkTargets(sign, reasons, 'rows' in protocolResult ? protocolResult.rows : [], nginx),
    protocols: protocolResult,
    ...(profile ? { profile } : {}),
    nginx,
    symmetric,
  };
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
