// The command line of `npm run bench` (see run.ts): parsed with node:util parseArgs into
// Options, with the defaults a full and a --quick run use; a bad line is a UsageError, which
// run.ts reports without a stack trace.

import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../cli/layout.js';

export interface Options {
  quick: boolean;
  out: string;
  cluster: string | undefined;
  durationMs: number;
  warmupMs: number;
  concurrency: number[];
  keygenRuns: number;
  profile: boolean;
  protocols: boolean;
  /** The nginx phase (nginx-phase.ts), and its worker_processes. */
  nginx: boolean;
  nginxWorkers: number | 'auto';
  /** `--only nginx`: RSA-2048 keys and the nginx phase, nothing else; `--only symmetric`: the symmetric phase alone. */
  only: 'nginx' | 'symmetric' | undefined;
}

/** A bad command line: reported without a stack trace. */
export class UsageError extends Error {}

export function options(argv: string[]): Options {
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
      'no-nginx': { type: 'boolean', default: false },
      'nginx-workers': { type: 'string' },
      only: { type: 'string' },
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
  if (v.only !== undefined && v.only !== 'nginx' && v.only !== 'symmetric') throw new UsageError("--only takes 'nginx' or 'symmetric'");
  const only = v.only;
  if (only && v['no-nginx']) throw new UsageError('--only nginx and --no-nginx contradict each other');
  const workers = v['nginx-workers'] ?? 'auto';
  if (workers !== 'auto' && !/^\d+$/.test(workers)) throw new UsageError("--nginx-workers takes a whole number or 'auto'");
  const nginxWorkers = workers === 'auto' ? workers : positive('nginx-workers', workers, 2, 64);
  return {
    quick,
    out: path.resolve(v.out ?? path.join(packageRoot, 'bench-results')),
    cluster: v.cluster,
    durationMs,
    warmupMs: quick ? 150 : 1000,
    concurrency: [...new Set(concurrency)].sort((a, b) => a - b),
    keygenRuns: only ? 1 : Math.round(positive('keygen-runs', v['keygen-runs'], quick ? 1 : 3, 20)),
    // Profiling restarts the cluster: only one the benchmark started, and not in smoke runs.
    profile: !v['no-profile'] && !quick && !only && v.cluster === undefined,
    protocols: !v['no-protocols'] && !only,
    nginx: !v['no-nginx'] && only !== 'symmetric',
    nginxWorkers,
    only,
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
    '  --no-nginx           skip the nginx TLS handshake phase',
    '  --nginx-workers N    nginx worker_processes in the nginx phase (default auto: one per core)',
    '  --only nginx         only the nginx phase: RSA-2048 keys, nginx with each, nothing else',
    '  --only symmetric     only the symmetric phase: a SYMMETRIC_DEFAULT key, GenerateDataKey and Decrypt through KMS',
  ].join('\n');
}
