// Latency percentiles and the closed-loop load generator the client processes run.
import type { LatencySummary, LoadResult } from './types.js';

/** Nearest-rank percentile (0 < q ≤ 1) of an ascending array. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarise(samples: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  const sum = sorted.reduce((a, b) => a + b, 0);
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    count: sorted.length,
    mean: round(sorted.length ? sum / sorted.length : 0),
    p50: round(percentile(sorted, 0.5)),
    p95: round(percentile(sorted, 0.95)),
    p99: round(percentile(sorted, 0.99)),
    max: round(sorted.length ? sorted[sorted.length - 1]! : 0),
  };
}

/**
 * Runs `concurrency` clients, each calling `op(client)` back to back (a closed loop: a client
 * sends its next request when the previous answer arrives) until `durationMs` has passed or
 * `maxOps` calls have started. Failed calls are counted, not timed.
 */
export async function closedLoop(opts: { concurrency: number; durationMs: number; maxOps?: number | undefined }, op: (client: number) => Promise<void>): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let started = 0;
  const t0 = performance.now();
  const end = t0 + opts.durationMs;
  const more = () => performance.now() < end && (opts.maxOps === undefined || started < opts.maxOps);
  await Promise.all(
    Array.from({ length: opts.concurrency }, async (_, client) => {
      while (more()) {
        started++;
        const t = performance.now();
        try {
          await op(client);
          latencies.push(performance.now() - t);
        } catch (e) {
          errors++;
          firstError ??= (e as Error).message;
        }
      }
    }),
  );
  const wallMs = performance.now() - t0;
  return { ops: latencies.length, errors, ...(firstError === undefined ? {} : { firstError }), wallMs, latencyMs: summarise(latencies) };
}
