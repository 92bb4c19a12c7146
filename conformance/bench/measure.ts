// One measured point of a closed-loop load, as the signing and symmetric phases take it (run.ts,
// symmetric-phase.ts): a warm-up, then the load with the CPU each process spent, as figures.
import type { Options } from './options.js';
import { CpuMeter } from './procstat.js';
import type { Progress } from './progress.js';
import type { LatencySummary, LoadResult } from './types.js';

export interface Measured {
  reason?: string;
  ops: number;
  errors: number;
  seconds: number;
  opsPerSec: number;
  latencyMs: LatencySummary;
  /** CPU ms per call in each process metered. */
  cpuMsPerOp: Record<string, number>;
}

/**
 * `load(warmMs)`, then `load(durationMs)` metering the CPU of `pids`; fails if no call of the
 * measured load succeeded (`what`: what one call makes, for the message).
 */
export async function measurePoint(progress: Progress, label: string, pids: Readonly<Record<string, number>>, times: { warmMs: number; durationMs: number }, what: string, load: (durationMs: number) => Promise<LoadResult>): Promise<Measured> {
  await progress.during(`${label}: warm-up`, times.warmMs, load(times.warmMs));
  const meter = new CpuMeter(pids);
  const r = await progress.during(label, times.durationMs, load(times.durationMs));
  const cpu = meter.since();
  if (r.ops === 0) throw new Error(r.firstError ?? `no ${what} completed`);
  return {
    ...(r.errors ? { reason: `${r.errors} failed calls, first: ${r.firstError}` } : {}),
    ops: r.ops,
    errors: r.errors,
    seconds: Math.round(r.wallMs) / 1000,
    opsPerSec: Math.round((r.ops / (r.wallMs / 1000)) * 100) / 100,
    latencyMs: r.latencyMs,
    cpuMsPerOp: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Math.round((v / r.ops) * 1000) / 1000])),
  };
}

/** The progress line of a measured point: rate, p50, p99, errors. */
export const pointLine = (m: Measured, unit: string) =>
  `${m.opsPerSec.toFixed(1)} ${unit}, p50 ${m.latencyMs.p50.toFixed(1)} ms, p99 ${m.latencyMs.p99.toFixed(1)} ms${m.errors ? `, ${m.errors} errors` : ''}`;

/** A longer warm-up before each path and operation's first point (its JIT is cold), except in smoke runs. */
export const warmupFor = (o: Pick<Options, 'concurrency' | 'quick' | 'warmupMs'>, c: number) => (c === o.concurrency[0] && !o.quick ? 3 * o.warmupMs : o.warmupMs);

export const clientsLabel = (c: number) => `${c} client${c > 1 ? 's' : ''}`;
