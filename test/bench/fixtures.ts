// Bench-report fixtures the report tests share: a latency summary around a p50, and the
// results of a run that measured nothing yet.
import type { BenchResults } from '../../conformance/bench/results.js';

export const lat = (p50: number) => ({ count: 10, mean: p50, p50, p95: p50 * 1.5, p99: p50 * 2, max: p50 * 3 });

export const emptyResults: BenchResults = {
  version: 1,
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:05:00.000Z',
  quick: false,
  machine: { cpu: 'Test CPU', cores: 2, mhz: 0, memoryGiB: 4, os: 'Linux', node: 'v20.0.0', loadAverage: [0.1, 0.1, 0.1] },
  cluster: { signers: 3, threshold: 2, started: true },
  softhsm: { version: '2.6.1' },
  settings: { concurrency: [1, 4], durationMs: 4000, warmupMs: 1000, keygenRuns: 1 },
  floors: { fdatasyncMs: lat(0.3) },
  keygen: [],
  sign: [],
  ratios: [],
  targets: [],
  protocols: { rows: [] },
};
