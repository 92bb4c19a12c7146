// The shape of a benchmark run's results (bench-results/bench.json), and the figures derived
// from the measurements: ratios and the project's performance targets.
import type { Machine } from './machine.js';
import type { Alg, LatencySummary, SymmetricOp, Target } from './types.js';

export type Status = 'ok' | 'unavailable' | 'failed';

/** One closed-loop point: its clients, and what they did. */
export interface MeasuredPoint {
  concurrency: number;
  status: Status;
  reason?: string;
  ops?: number;
  errors?: number;
  seconds?: number;
  opsPerSec?: number;
  latencyMs?: LatencySummary;
  /** CPU ms per operation in each process: client, gateway, signer1… */
  cpuMsPerOp?: Record<string, number>;
}

export interface SignPoint extends MeasuredPoint {
  target: Target;
  alg: Alg;
}

/** A closed-loop point of the symmetric phase: `operation` with a SYMMETRIC_DEFAULT key through KMS. */
export interface SymmetricPoint extends MeasuredPoint {
  operation: SymmetricOp;
}

/** The symmetric phase: the key it made (by DKG, through KMS CreateKey), then its points; or why it did not run. */
export type SymmetricResults =
  | { key: { status: Status; reason?: string; ms?: number; approved?: boolean }; points: SymmetricPoint[] }
  | { skipped: string };

export interface KeygenFigure {
  target: Target;
  alg: Alg;
  status: Status;
  reason?: string;
  /** Each key generation, ms. */
  runsMs: number[];
  /** The governance held CreateKey as a proposal: the time includes `mpchsm approve`. */
  approved?: boolean;
  meanMs?: number;
}

export interface ProtocolRow {
  protocol: string;
  curve: string;
  t: number;
  n: number;
  op: string;
  ms_per_op: number;
}

export interface ProfileProcess {
  cpuMsPerOp: number;
  /** [category, CPU ms per signature], largest first. */
  categories: [string, number][];
  /** [function, self CPU ms per signature], largest first. */
  top: [string, number][];
}

export interface ProfileSegment {
  target: Target;
  alg: Alg;
  ops: number;
  latencyP50Ms: number;
  processes: Record<string, ProfileProcess>;
}

/** nginx serving TLS with an RSA-2048 key in a token: full handshakes by closed-loop clients. */
export interface NginxPoint {
  /** Whose token holds the key. */
  key: 'mpchsm' | 'softhsm';
  status: Status;
  reason?: string;
  /** nginx's worker processes that ran. */
  workers?: number;
  handshakes?: number;
  errors?: number;
  seconds?: number;
  perSec?: number;
  latencyMs?: LatencySummary;
  /** CPU ms per handshake: client, nginx (master and workers), and for mpchsm gateway, signer1… */
  cpuMsPerHandshake?: Record<string, number>;
  /** mpchsm: C_Login calls the module logged, one per process that used the key (nginx's master and each worker). */
  moduleLogins?: number;
}

export type NginxResults =
  | { version: string; tls: 'TLSv1.3'; concurrency: number; workers: number | 'auto'; points: NginxPoint[] }
  | { skipped: string; install?: string };

export interface TargetCheck {
  name: string;
  limit: string;
  measured: string;
  met: boolean | 'not available';
}

export interface BenchResults {
  version: 1;
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  /** The mpchsm commit measured (see machine.ts revision()). */
  revision?: string;
  machine: Machine;
  cluster: { signers: number; threshold: number; started: boolean };
  softhsm: { version: string } | { missing: string };
  settings: { concurrency: number[]; durationMs: number; warmupMs: number; keygenRuns: number };
  floors: { fdatasyncMs: LatencySummary; signerHealthMs?: LatencySummary; gatewayHealthMs?: LatencySummary; kmsDescribeKeyMs?: LatencySummary };
  keygen: KeygenFigure[];
  sign: SignPoint[];
  ratios: Ratio[];
  targets: TargetCheck[];
  protocols: { rows: ProtocolRow[] } | { error: string };
  profile?: { segments: ProfileSegment[] } | { error: string };
  nginx?: NginxResults;
  symmetric?: SymmetricResults;
}

/** mpchsm's figure divided by the reference's, at one concurrency ('best': best over concurrency). */
export interface Ratio {
  alg: Alg;
  what: 'throughput vs SoftHSMv2' | 'throughput KMS vs PKCS#11' | 'p50 latency KMS vs PKCS#11';
  target: Target;
  concurrency: number | 'best';
  ratio: number;
}

export const point = (sign: readonly SignPoint[], target: Target, alg: Alg, c: number) =>
  sign.find((p) => p.target === target && p.alg === alg && p.concurrency === c && p.status === 'ok');

/** Best sustained throughput over the concurrency levels measured. */
export const best = (sign: readonly SignPoint[], target: Target, alg: Alg): number | undefined => {
  const xs = sign.filter((p) => p.target === target && p.alg === alg && p.status === 'ok').map((p) => p.opsPerSec ?? 0);
  return xs.length ? Math.max(...xs) : undefined;
};

export function ratios(sign: readonly SignPoint[], concurrency: readonly number[], algs: readonly Alg[]): Ratio[] {
  const out: Ratio[] = [];
  for (const alg of algs) {
    for (const target of ['kms', 'p11'] as const) {
      for (const c of concurrency) {
        const m = point(sign, target, alg, c);
        const s = point(sign, 'softhsm', alg, c);
        if (m?.opsPerSec && s?.opsPerSec) out.push({ alg, what: 'throughput vs SoftHSMv2', target, concurrency: c, ratio: m.opsPerSec / s.opsPerSec });
      }
      const bm = best(sign, target, alg);
      const bs = best(sign, 'softhsm', alg);
      if (bm && bs) out.push({ alg, what: 'throughput vs SoftHSMv2', target, concurrency: 'best', ratio: bm / bs });
    }
    for (const c of concurrency) {
      const k = point(sign, 'kms', alg, c);
      const p = point(sign, 'p11', alg, c);
      if (k?.opsPerSec && p?.opsPerSec) out.push({ alg, what: 'throughput KMS vs PKCS#11', target: 'kms', concurrency: c, ratio: k.opsPerSec / p.opsPerSec });
      if (k?.latencyMs?.p50 && p?.latencyMs?.p50) out.push({ alg, what: 'p50 latency KMS vs PKCS#11', target: 'kms', concurrency: c, ratio: k.latencyMs.p50 / p.latencyMs.p50 });
    }
  }
  return out;
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(2));

const ALG_NAME: Readonly<Record<Alg, string>> = { rsa2048: 'RSA-2048', p256: 'ECDSA P-256', ed25519: 'Ed25519' };

/**
 * The project's targets (issue #21) for a 2-core machine with every process local: PKCS#11
 * throughput at 4 clients and p50 at 1 client against SoftHSMv2 in the same run, the
 * protocols' CPU per signature (all parties), and nginx's TLS handshakes with the key in
 * mpchsm against SoftHSMv2. The memory target is `npm run bench:soak`'s.
 */
export function checkTargets(sign: readonly SignPoint[], reasons: Partial<Record<Alg, string>>, protocols: readonly ProtocolRow[], nginx?: NginxResults): TargetCheck[] {
  const out: TargetCheck[] = [];
  const absent = (name: string, limit: string, alg?: Alg) => out.push({ name, limit, measured: (alg && reasons[alg]) ?? 'not measured', met: 'not available' });
  for (const [alg, limit] of [['rsa2048', 0.1], ['p256', 0.01], ['ed25519', 0.05]] as const) {
    const name = `${ALG_NAME[alg]} PKCS#11 throughput ÷ SoftHSMv2's, 4 clients`;
    const m = point(sign, 'p11', alg, 4)?.opsPerSec;
    const s = point(sign, 'softhsm', alg, 4)?.opsPerSec;
    if (m === undefined || s === undefined) absent(name, `≥ ${limit}`, alg);
    else out.push({ name, limit: `≥ ${limit}`, measured: `${fmt(m / s)} (${fmt(m)} vs ${fmt(s)} sig/s)`, met: m / s >= limit });
  }
  for (const [alg, limit] of [['rsa2048', 10], ['p256', 15], ['ed25519', 5]] as const) {
    const name = `${ALG_NAME[alg]} p50 latency, 1 client, PKCS#11`;
    const p = point(sign, 'p11', alg, 1);
    if (!p?.latencyMs) absent(name, `≤ ${limit} ms`, alg);
    else out.push({ name, limit: `≤ ${limit} ms`, measured: `${fmt(p.latencyMs.p50)} ms`, met: p.latencyMs.p50 <= limit });
  }
  for (const [protocol, curve, label, limit] of [['frost', 'ed25519', 'FROST Ed25519', 2], ['ecdsa-dkls23', 'p256', 'DKLs23 P-256', 10], ['rsa-shoup', 'rsa2048', 'threshold RSA-2048', 8]] as const) {
    const name = `${label} protocol CPU per signature, all parties, 2-of-3`;
    const row = protocols.find((r) => r.protocol === protocol && r.curve === curve && r.t === 2 && r.n === 3 && r.op === 'sign');
    if (!row) absent(name, `≤ ${limit} ms`);
    else out.push({ name, limit: `≤ ${limit} ms`, measured: `${fmt(row.ms_per_op)} ms`, met: row.ms_per_op <= limit });
  }
  out.push(nginxTarget(nginx));
  return out;
}

function nginxTarget(nginx: NginxResults | undefined): TargetCheck {
  const name = 'nginx TLS handshakes/s, RSA-2048, ÷ SoftHSMv2';
  const limit = '≥ 0.1';
  const absent = (why: string): TargetCheck => ({ name, limit, measured: `not measured (${why})`, met: 'not available' });
  if (!nginx) return absent('skipped');
  if ('skipped' in nginx) return absent(nginx.skipped);
  const at = (key: NginxPoint['key']) => nginx.points.find((p) => p.key === key);
  const [m, s] = [at('mpchsm'), at('softhsm')];
  if (m?.status !== 'ok' || !m.perSec) return absent(`mpchsm: ${m?.reason ?? 'no figure'}`);
  if (s?.status !== 'ok' || !s.perSec) return absent(`SoftHSMv2: ${s?.reason ?? 'no figure'}; mpchsm ${fmt(m.perSec)} handshakes/s`);
  return { name, limit, measured: `${fmt(m.perSec / s.perSec)} (${fmt(m.perSec)} vs ${fmt(s.perSec)} handshakes/s)`, met: m.perSec / s.perSec >= 0.1 };
}
