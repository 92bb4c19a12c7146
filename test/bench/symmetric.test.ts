// The benchmark's symmetric phase on made-up inputs: one point measured from a load's result,
// the `--only symmetric` option, and the GenerateDataKey/Decrypt tables in the report and the
// README section (present, failed, not available, skipped). The phase itself runs for real in
// bench.test.ts (npm run bench -- --quick).
import { describe, expect, it } from 'vitest';
import { measurePoint, warmupFor } from '../../conformance/bench/measure.js';
import { UsageError, options } from '../../conformance/bench/options.js';
import { Progress } from '../../conformance/bench/progress.js';
import { fullReport, readmeSnippet } from '../../conformance/bench/report.js';
import type { BenchResults, SymmetricPoint, SymmetricResults } from '../../conformance/bench/results.js';
import type { LoadResult } from '../../conformance/bench/types.js';
import { emptyResults, lat } from './fixtures.js';

const ok = (operation: SymmetricPoint['operation'], concurrency: number, opsPerSec: number, p50: number): SymmetricPoint => ({
  operation,
  concurrency,
  status: 'ok',
  ops: 100,
  errors: 0,
  seconds: 100 / opsPerSec,
  opsPerSec,
  latencyMs: lat(p50),
  cpuMsPerOp: { client: 0.5, gateway: 3, signer1: 1, signer2: 1.5, signer3: 0 },
});
const measured: SymmetricResults = {
  key: { status: 'ok', ms: 640 },
  points: [ok('GenerateDataKey', 1, 120, 8), ok('GenerateDataKey', 4, 300, 13), ok('Decrypt', 1, 110, 9), ok('Decrypt', 4, 280, 14)],
};
const runWith = (symmetric: SymmetricResults | undefined): BenchResults => ({ ...emptyResults, ...(symmetric ? { symmetric } : {}) });

describe('symmetric phase: one point', () => {
  const load = (r: Partial<LoadResult>) => async (): Promise<LoadResult> => ({ ops: 0, errors: 0, wallMs: 500, latencyMs: lat(5), ...r });
  const times = { warmMs: 1, durationMs: 1 };

  it('turns a load into calls/s, latency and CPU per call, warm-up first and not counted', async () => {
    const durations: number[] = [];
    const m = await measurePoint(new Progress(), 'x', { client: process.pid }, { warmMs: 7, durationMs: 9 }, 'Decrypt', async (d) => {
      durations.push(d);
      return load({ ops: d === 7 ? 1 : 50, errors: 2, firstError: 'InvalidCiphertextException' })();
    });
    expect(durations).toEqual([7, 9]);
    expect(m).toMatchObject({ ops: 50, errors: 2, seconds: 0.5, opsPerSec: 100, reason: '2 failed calls, first: InvalidCiphertextException' });
    expect(Object.keys(m.cpuMsPerOp)).toEqual(['client']);
  });

  it('fails a point where no call succeeded, with the first error or what was missing', async () => {
    await expect(measurePoint(new Progress(), 'x', {}, times, 'Decrypt', load({ errors: 3, firstError: 'AccessDeniedException: no' }))).rejects.toThrow('AccessDeniedException: no');
    await expect(measurePoint(new Progress(), 'x', {}, times, 'GenerateDataKey', load({}))).rejects.toThrow('no GenerateDataKey completed');
  });

  it('warms up longer before the first point of a full run only', () => {
    const o = { concurrency: [1, 4, 16], warmupMs: 1000, quick: false };
    expect([1, 4, 16].map((c) => warmupFor(o, c))).toEqual([3000, 1000, 1000]);
    expect(warmupFor({ ...o, quick: true }, 1)).toBe(1000);
  });
});

describe('--only symmetric', () => {
  it('runs the symmetric phase alone: no nginx, protocols or profile, one key', () => {
    expect(options(['--only', 'symmetric'])).toMatchObject({ only: 'symmetric', nginx: false, protocols: false, profile: false, keygenRuns: 1 });
    expect(options(['--only', 'nginx']).only).toBe('nginx');
    expect(() => options(['--only', 'sign'])).toThrow(new UsageError("--only takes 'nginx' or 'symmetric'"));
  });
});

describe('symmetric tables', () => {
  it('reports each operation at each concurrency with latency and CPU per call', () => {
    const md = fullReport(runWith(measured));
    expect(md).toContain('## Symmetric operations via mpchsm KMS');
    expect(md).toContain('through KMS CreateKey (640 ms)');
    expect(md).toContain('| GenerateDataKey (AES_256) | 1 | 120 | 8.00 | 12.0 | 16.0 | 0.50 / 3.00 / 2.50 |');
    expect(md).toContain('| Decrypt (of a data key) | 4 | 280 | 14.0 | 21.0 | 28.0 | 0.50 / 3.00 / 2.50 |');
    // In the order the run measured: GenerateDataKey first.
    expect(md.indexOf('| GenerateDataKey (AES_256) | 4 |')).toBeLessThan(md.indexOf('| Decrypt (of a data key) | 1 |'));
  });

  it('gives the README a table of its own, calls/s at every concurrency and latency at one client', () => {
    const readme = readmeSnippet(runWith(measured));
    expect(readme).toContain('| symmetric operations via mpchsm KMS | calls/s at 1 / 4 clients | latency p50 / p99 at 1 client (ms) |');
    expect(readme).toContain('| GenerateDataKey (AES_256) | 120 / 300 | 8.00 / 16.0 |');
    expect(readme).toContain('| Decrypt (of a data key) | 110 / 280 | 9.00 / 18.0 |');
  });

  it('says which point failed and why', () => {
    const failed: SymmetricResults = { key: { status: 'ok', ms: 700, approved: true }, points: [ok('GenerateDataKey', 1, 120, 8), { operation: 'Decrypt', concurrency: 1, status: 'failed', reason: 'InvalidCiphertextException: bad' }] };
    const md = fullReport(runWith(failed));
    expect(md).toContain('(700 ms, incl. approval)');
    expect(md).toContain('| Decrypt (of a data key) | 1 | – | failed: InvalidCiphertextException: bad |');
    expect(readmeSnippet(runWith(failed))).toContain('| Decrypt (of a data key) | failed / – | – |');
  });

  it('says why there are no figures: no key, skipped, or an older run without the phase', () => {
    const noKey: SymmetricResults = { key: { status: 'unavailable', reason: 'SYMMETRIC_DEFAULT is not supported' }, points: [] };
    expect(fullReport(runWith(noKey))).toContain('_No figures: not available yet: SYMMETRIC_DEFAULT is not supported._');
    expect(readmeSnippet(runWith(noKey))).toContain('| GenerateDataKey (AES_256) | not available yet |  |');
    expect(fullReport(runWith({ skipped: '--only nginx' }))).toContain('_No figures: not measured: --only nginx._');
    expect(fullReport(runWith(undefined))).toContain('_No figures: not run._');
    for (const r of [runWith({ skipped: '--only nginx' }), runWith(undefined)]) expect(readmeSnippet(r)).not.toContain('symmetric operations');
  });
});
