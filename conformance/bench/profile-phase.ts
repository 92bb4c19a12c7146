// The benchmark's profile phase: the cluster restarted with a CPU profiler in every process,
// then for each mpchsm path and algorithm one client signing for a fixed time, each process's
// profile cut around exactly that and scaled to the unprofiled CPU per signature.

import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../cli/layout.js';
import { clusterPids, startClient, type Held } from './held.js';
import { signingKey } from './keys.js';
import type { Options } from './options.js';
import { ProfileCutter, profileEnv, summariseProfile } from './profile.js';
import type { Progress } from './progress.js';
import { point, type ProfileSegment, type SignPoint } from './results.js';
import { ALG_LABEL, ALGS, TARGET_LABEL, loadResultSchema, type KeygenResult } from './types.js';

/**
 * Restarts the cluster with the profiling hook, then for each mpchsm path and algorithm signs
 * at one client for a fixed time, cutting every process's CPU profile around exactly that.
 */
export async function profilePhase(o: Options, progress: Progress, held: Held, keys: Map<string, KeygenResult>, sign: readonly SignPoint[]): Promise<ProfileSegment[]> {
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
    const why = wanted.some((w) => w.target === t) ? await startClient(held, t, Math.max(...o.concurrency), undefined) : undefined;
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
