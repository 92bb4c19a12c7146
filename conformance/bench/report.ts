// The Markdown a run produces: the full report (bench-results/bench.md, also printed) and the
// short performance section for the README, each with the symmetric operations in a table of
// their own (they are not signatures, and have no SoftHSMv2 counterpart here).
import { busyWarning, describeMachine } from './machine.js';
import { best, point, type BenchResults, type NginxPoint, type ProfileSegment, type SignPoint, type SymmetricPoint } from './results.js';
import { ALG_LABEL, ALGS, SYMMETRIC_LABEL, SYMMETRIC_OPS, TARGET_LABEL, TARGETS, type Alg, type SymmetricOp, type Target } from './types.js';

const num = (v: number | undefined) => (v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toPrecision(2));
const ratio = (v: number | undefined) => (v === undefined ? '–' : v >= 10 ? v.toFixed(0) : v >= 0.1 ? v.toFixed(2) : v.toPrecision(2));
const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
const table = (head: string[], rows: (string | number)[][]) => [row(head), row(head.map(() => '---')), ...rows.map(row)].join('\n');

/** The processes of the cluster, in order, as named in `cpuMsPerOp`. */
const signerNames = (p: SignPoint | SymmetricPoint) => Object.keys(p.cpuMsPerOp ?? {}).filter((k) => k.startsWith('signer'));
/** CPU ms per call: client / gateway / all signers together. */
const cpuSplit = (p: SignPoint | SymmetricPoint) => {
  const cpu = p.cpuMsPerOp ?? {};
  return `${num(cpu.client)} / ${num(cpu.gateway)} / ${num(signerNames(p).reduce((a, k) => a + cpu[k]!, 0))}`;
};

function unavailable(r: BenchResults, target: Target, alg: Alg): SignPoint | undefined {
  return r.sign.find((p) => p.target === target && p.alg === alg && p.status !== 'ok');
}

function signTable(r: BenchResults): string {
  const rows: (string | number)[][] = [];
  for (const alg of ALGS) {
    for (const target of TARGETS) {
      const bad = unavailable(r, target, alg);
      if (bad) {
        rows.push([ALG_LABEL[alg], TARGET_LABEL[target], '–', bad.status === 'unavailable' ? `not available yet: ${bad.reason ?? ''}` : `failed: ${bad.reason ?? ''}`, '', '', '', '', '']);
        continue;
      }
      for (const c of r.settings.concurrency) {
        const p = point(r.sign, target, alg, c);
        if (!p) continue;
        const soft = target === 'softhsm' ? undefined : point(r.sign, 'softhsm', alg, c);
        const cpuCell = target === 'softhsm' ? num(p.cpuMsPerOp?.client) : cpuSplit(p);
        rows.push([ALG_LABEL[alg], TARGET_LABEL[target], c, num(p.opsPerSec), num(p.latencyMs?.p50), num(p.latencyMs?.p95), num(p.latencyMs?.p99), soft?.opsPerSec && p.opsPerSec ? ratio(p.opsPerSec / soft.opsPerSec) : '', cpuCell]);
      }
    }
  }
  return table(['algorithm', 'path', 'clients', 'sig/s', 'p50 ms', 'p95 ms', 'p99 ms', '× SoftHSMv2', 'CPU ms/sig: client / gateway / signers'], rows);
}

function keygenTable(r: BenchResults): string {
  const rows = r.keygen.map((k) => {
    const soft = r.keygen.find((s) => s.target === 'softhsm' && s.alg === k.alg && s.status === 'ok');
    const cell = k.status === 'ok' ? num(k.meanMs) : `${k.status === 'unavailable' ? 'not available yet' : 'failed'}: ${k.reason ?? ''}`;
    const x = k.status === 'ok' && k.target !== 'softhsm' && soft?.meanMs && k.meanMs ? ratio(k.meanMs / soft.meanMs) : '';
    return [ALG_LABEL[k.alg], TARGET_LABEL[k.target], k.approved ? `${cell} (incl. approval)` : cell, k.runsMs.map((v) => num(v)).join(', '), x];
  });
  const approved = r.keygen.some((k) => k.approved)
    ? "\n\n_incl. approval_: the cluster's governance holds CreateKey until an administrator approves it; the time runs from CreateKey to the end of the `mpchsm approve` command (a CLI process) whose approval runs the key generation."
    : '';
  return table(['algorithm', 'path', 'mean ms', 'each run, ms', '× SoftHSMv2 time'], rows) + approved;
}

function facadeTable(r: BenchResults): string {
  const rows: (string | number)[][] = [];
  for (const alg of ALGS)
    for (const c of r.settings.concurrency) {
      const k = point(r.sign, 'kms', alg, c);
      const p = point(r.sign, 'p11', alg, c);
      if (!k || !p) continue;
      rows.push([ALG_LABEL[alg], c, num(k.opsPerSec), num(p.opsPerSec), ratio((k.opsPerSec ?? 0) / (p.opsPerSec || 1)), num(k.latencyMs?.p50), num(p.latencyMs?.p50)]);
    }
  return rows.length ? table(['algorithm', 'clients', 'KMS sig/s', 'PKCS#11 sig/s', 'KMS ÷ PKCS#11', 'KMS p50 ms', 'PKCS#11 p50 ms'], rows) : '_No algorithm was measured through both facades._';
}

const nginxPoint = (r: BenchResults, key: NginxPoint['key']) => (r.nginx && 'points' in r.nginx ? r.nginx.points.find((p) => p.key === key && p.status === 'ok') : undefined);

/** nginx with the RSA-2048 key in mpchsm and in SoftHSMv2: handshakes/s, latency, CPU per handshake. */
function nginxSection(r: BenchResults): string {
  const n = r.nginx;
  if (!n) return '_Not run._';
  if ('skipped' in n) return `_Not measured: ${n.skipped}${n.install ? ` (\`${n.install}\`)` : ''}._`;
  const soft = nginxPoint(r, 'softhsm');
  const rows = n.points.map((p) => {
    const who = p.key === 'mpchsm' ? 'mpchsm (PKCS#11 module)' : 'SoftHSMv2';
    if (p.status !== 'ok') return [who, '–', `${p.status === 'unavailable' ? 'not available' : 'failed'}: ${p.reason ?? ''}`, '', '', '', '', '', '', ''];
    const cpu = p.cpuMsPerHandshake ?? {};
    const signers = Object.keys(cpu).filter((k) => k.startsWith('signer')).reduce((a, k) => a + cpu[k]!, 0);
    const total = Object.values(cpu).reduce((a, b) => a + b, 0);
    const cpuCell = p.key === 'mpchsm' ? `${num(cpu.client)} / ${num(cpu.nginx)} / ${num(cpu.gateway)} / ${num(signers)}` : `${num(cpu.client)} / ${num(cpu.nginx)}`;
    const x = p.key === 'mpchsm' && soft?.perSec && p.perSec ? ratio(p.perSec / soft.perSec) : '';
    return [who, p.workers ?? '–', num(p.perSec), num(p.latencyMs?.p50), num(p.latencyMs?.p95), num(p.latencyMs?.p99), x, cpuCell, total > 0 ? num((r.machine.cores * 1000) / total) : '–', p.moduleLogins ?? ''];
  });
  return [
    `${n.version}, OpenSSL's pkcs11 engine, \`worker_processes ${n.workers}\`; ${n.concurrency} closed-loop clients (Node.js), each handshake a new connection: full TLS 1.3, no session resumption or tickets, so one RSA-PSS signature by the key per handshake. The first handshake of each point checks that the server presents the certificate for the key.`,
    '',
    table(['key', 'workers', 'handshakes/s', 'p50 ms', 'p95 ms', 'p99 ms', '× SoftHSMv2', 'CPU ms/handshake: client / nginx / gateway / signers', `CPU ceiling on ${r.machine.cores} cores, handshakes/s`, 'module logins'], rows),
    '',
    "_CPU ceiling_: cores ÷ the CPU all these processes spent per handshake — what the machine could sustain if nothing else ran; less sensitive to other load than the measured rate. _module logins_: nginx's master loads the key and logs in; each worker, forked afterwards, initialises the module and logs in again at its first handshake (libp11 reinitialises after a fork). A worker is one thread: it waits out each C_Sign, so at most one signature per worker is in flight.",
  ].join('\n');
}

const symmetricPoint = (r: BenchResults, op: SymmetricOp, c: number) =>
  r.symmetric && 'points' in r.symmetric ? r.symmetric.points.find((p) => p.operation === op && p.concurrency === c) : undefined;

/** Why there are no symmetric figures, or undefined when there are some. */
function symmetricAbsent(r: BenchResults): string | undefined {
  const s = r.symmetric;
  if (!s) return 'not run';
  if ('skipped' in s) return `not measured: ${s.skipped}`;
  if (s.key.status !== 'ok') return `${s.key.status === 'unavailable' ? 'not available yet' : 'failed'}: ${s.key.reason ?? ''}`;
  return undefined;
}

/** GenerateDataKey and Decrypt with a SYMMETRIC_DEFAULT key: calls/s, latency, CPU per call. */
function symmetricSection(r: BenchResults): string {
  const absent = symmetricAbsent(r);
  if (absent || !r.symmetric || !('key' in r.symmetric)) return `_No figures: ${absent ?? 'not run'}._`;
  const { key } = r.symmetric;
  const rows: (string | number)[][] = [];
  for (const op of SYMMETRIC_OPS)
    for (const c of r.settings.concurrency) {
      const p = symmetricPoint(r, op, c);
      if (!p) continue;
      if (p.status !== 'ok') rows.push([SYMMETRIC_LABEL[op], c, '–', `failed: ${p.reason ?? ''}`, '', '', '']);
      else rows.push([SYMMETRIC_LABEL[op], c, num(p.opsPerSec), num(p.latencyMs?.p50), num(p.latencyMs?.p95), num(p.latencyMs?.p99), cpuSplit(p)]);
    }
  return [
    `A SYMMETRIC_DEFAULT key made by DKG through KMS CreateKey (${num(key.ms)} ms${key.approved ? ', incl. approval' : ''}); no whole key exists. Closed-loop AWS SDK v3 clients call GenerateDataKey (KeySpec AES_256) or Decrypt (of one data key's blob, KeyId given), both with an encryption context, as the AWS Encryption SDK does per message. Each call is one threshold PRF evaluation: t signers answer partials with proofs the gateway checks. Before each point one data key is checked to decrypt to itself; every Decrypt's answer is checked.`,
    '',
    table(['operation', 'clients', 'calls/s', 'p50 ms', 'p95 ms', 'p99 ms', 'CPU ms/call: client / gateway / signers'], rows),
  ].join('\n');
}

function targetTable(r: BenchResults): string {
  return table(
    ['target', 'limit', 'measured', 'met'],
    r.targets.map((t) => [t.name, t.limit, t.measured, t.met === 'not available' ? 'not available' : t.met ? 'yes' : '**no**']),
  );
}

/**
 * CPU per signature (at one client) against latency and throughput: the processes share the
 * machine's cores, so sustained throughput cannot exceed cores ÷ total CPU per signature.
 */
function cpuBudget(r: BenchResults): string {
  const rows: (string | number)[][] = [];
  for (const alg of ALGS)
    for (const target of TARGETS) {
      const p = point(r.sign, target, alg, 1);
      if (!p?.latencyMs || !p.cpuMsPerOp) continue;
      const cpu = p.cpuMsPerOp;
      const signers = signerNames(p).map((k) => cpu[k]!);
      const total = Object.values(cpu).reduce((a, b) => a + b, 0);
      const critical = (cpu.client ?? 0) + (cpu.gateway ?? 0) + Math.max(0, ...signers);
      rows.push([
        ALG_LABEL[alg],
        TARGET_LABEL[target],
        num(p.latencyMs.p50),
        num(cpu.client),
        target === 'softhsm' ? '–' : num(cpu.gateway),
        target === 'softhsm' ? '–' : signers.map(num).join(' / '),
        target === 'softhsm' ? '–' : num(Math.max(0, p.latencyMs.p50 - critical)),
        num(total),
        total > 0 ? num((r.machine.cores * 1000) / total) : '–',
        num(best(r.sign, target, alg)),
      ]);
    }
  return table(['algorithm', 'path', 'p50 ms, 1 client', 'CPU ms/sig: client', 'gateway', 'each signer', 'p50 − (client + gateway + slowest signer) CPU: waiting', 'total CPU ms/sig', `CPU ceiling on ${r.machine.cores} cores, sig/s`, 'best measured sig/s'], rows);
}

function profileTables(segments: readonly ProfileSegment[]): string {
  const out: string[] = [];
  for (const s of segments) {
    const names = Object.keys(s.processes);
    const cats = new Map<string, number>();
    for (const n of names) for (const [c, v] of s.processes[n]!.categories) cats.set(c, (cats.get(c) ?? 0) + v);
    const order = [...cats].sort((a, b) => b[1] - a[1]).map(([c]) => c);
    out.push(`#### ${TARGET_LABEL[s.target]} · ${ALG_LABEL[s.alg]} — ${s.ops} signatures profiled at 1 client`);
    out.push('');
    out.push(table(['CPU ms per signature', ...names], [
      ...order.map((c) => [c, ...names.map((n) => num(s.processes[n]!.categories.find(([k]) => k === c)?.[1] ?? 0))]),
      ['**total**', ...names.map((n) => `**${num(s.processes[n]!.cpuMsPerOp)}**`)],
    ]));
    out.push('');
    for (const n of names.filter((n) => s.processes[n]!.cpuMsPerOp >= 0.5)) {
      out.push(`<details><summary>${n}: mpchsm functions by inclusive CPU ms per signature (own time + everything they call)</summary>\n`);
      out.push(s.processes[n]!.top.map(([f, v]) => `- ${num(v)} — \`${f}\``).join('\n'));
      out.push('\n</details>\n');
    }
  }
  return out.join('\n');
}

function protocolTable(r: BenchResults): string {
  if ('error' in r.protocols) return `_The protocol benchmark failed: ${r.protocols.error}_`;
  return table(['protocol', 'curve', 't-of-n', 'op', 'CPU ms/op'], r.protocols.rows.map((p) => [p.protocol, p.curve, `${p.t}-of-${p.n}`, p.op, num(p.ms_per_op)]));
}

const lat = (s: { p50: number; p99: number } | undefined, label: string) => (s ? `${label}: p50 ${num(s.p50)} ms, p99 ${num(s.p99)} ms` : undefined);

export function fullReport(r: BenchResults): string {
  const s = r.settings;
  const floors = [
    lat(r.floors.fdatasyncMs, 'append + fdatasync of one line (what each audit append waits for)'),
    lat(r.floors.signerHealthMs, 'HTTPS GET /health on a signer: one loopback hop, kept-alive TLS connection, no auth'),
    lat(r.floors.gatewayHealthMs, 'HTTP GET /health on the gateway (which probes every signer: two hops)'),
    lat(r.floors.kmsDescribeKeyMs, 'KMS DescribeKey through the AWS SDK (SigV4, JSON, no signer)'),
  ].filter(Boolean);
  const parts = [
    `# mpchsm benchmark${r.quick ? ' (quick smoke run: figures are not meaningful)' : ''}`,
    '',
    `- **Machine**: ${describeMachine(r.machine)}; every process local, loopback only.`,
    `- **Cluster**: gateway + ${r.cluster.signers} signers, threshold ${r.cluster.threshold}${r.cluster.started ? ', started for this run' : ', already running'}. **SoftHSMv2**: ${'version' in r.softhsm ? r.softhsm.version : r.softhsm.missing}.`,
    `- **Method**: closed loop — each client sends its next request when the previous answer arrives; ${s.durationMs / 1000} s per point after ${s.warmupMs / 1000} s of warm-up (${(3 * s.warmupMs) / 1000} s before a path and algorithm's first point), at ${s.concurrency.join(', ')} concurrent clients; the first signature of each point is verified with OpenSSL. PKCS#11 clients: one session each, C_SignInit + C_Sign (CKM_SHA256_RSA_PKCS, CKM_ECDSA over SHA-256, CKM_EDDSA), ${'version' in r.softhsm ? 'the same loop against SoftHSMv2' : ''}. KMS clients: AWS SDK v3 Sign, MessageType RAW. CPU per signature from /proc, per process.`,
    `- **Run**: ${r.startedAt} – ${r.finishedAt}${r.revision ? `, mpchsm ${r.revision}` : ''}; load average at start ${r.machine.loadAverage.join(' / ')}.`,
    ...(busyWarning(r.machine) ? [`- **Warning**: ${busyWarning(r.machine)}.`] : []),
    '',
    '## Signing, end to end',
    '',
    signTable(r),
    '',
    '![throughput against concurrency](throughput.svg)',
    '',
    '## Key generation',
    '',
    keygenTable(r),
    '',
    '## KMS against PKCS#11',
    '',
    facadeTable(r),
    '',
    '## Symmetric operations via mpchsm KMS',
    '',
    symmetricSection(r),
    '',
    '## nginx: TLS handshakes with an RSA-2048 key in the token',
    '',
    nginxSection(r),
    '',
    '## Targets (2-core machine, all processes local)',
    '',
    targetTable(r),
    '',
    '## Where the time goes',
    '',
    'Floors on this machine:',
    '',
    ...floors.map((f) => `- ${f}`),
    '',
    `CPU each process spent per signature at one client (from /proc; ms). The t signers work in parallel, so a signature's critical path is about client + gateway + the slowest signer, and the rest of its latency is waiting (fdatasync, loopback, scheduling). Every process shares the same ${r.machine.cores} cores, so sustained throughput cannot exceed cores ÷ total CPU per signature:`,
    '',
    cpuBudget(r),
    '',
  ];
  if (r.profile && 'segments' in r.profile)
    parts.push(
      '### CPU profiles of the cluster processes',
      '',
      "The cluster restarted with V8's sampling profiler in every process (profile-hook.ts), then one client signed for a fixed time per path and algorithm. Each sample is sorted by the code that spent it; each process's shares are applied to its CPU per signature measured without the profiler (the table above), so the columns add up to it.",
      '',
      profileTables(r.profile.segments),
      '',
    );
  else if (r.profile) parts.push(`_Profiling failed: ${r.profile.error}_`, '');
  parts.push('## Protocols alone (CPU per operation, all parties in one process: `npm run bench:protocols`)', '', protocolTable(r), '');
  return parts.join('\n');
}

/** The README's line on nginx, when it was measured. */
function nginxLine(r: BenchResults): string[] {
  const [m, s] = [nginxPoint(r, 'mpchsm'), nginxPoint(r, 'softhsm')];
  if (!m?.perSec || !r.nginx || !('points' in r.nginx)) return [];
  const vs = s?.perSec ? ` against ${num(s.perSec)} with SoftHSMv2 (${ratio(m.perSec / s.perSec)}×)` : '';
  return [`nginx (${r.nginx.version}, ${m.workers} workers, OpenSSL's pkcs11 engine) completes ${num(m.perSec)} full TLS 1.3 handshakes/s with an RSA-2048 key in mpchsm at ${r.nginx.concurrency} clients, p50 ${num(m.latencyMs?.p50)} ms,${vs}.`, ''];
}

/** The README's table of symmetric operations, when they were measured. */
function symmetricReadme(r: BenchResults): string[] {
  const absent = symmetricAbsent(r);
  if (absent === 'not run' || absent?.startsWith('not measured')) return [];
  const c = r.settings.concurrency;
  const rows = SYMMETRIC_OPS.map((op) => {
    if (absent) return [SYMMETRIC_LABEL[op], absent.startsWith('failed') ? 'failed' : 'not available yet', ''];
    const pts = c.map((n) => symmetricPoint(r, op, n));
    const one = pts[0]?.status === 'ok' ? pts[0].latencyMs : undefined;
    return [SYMMETRIC_LABEL[op], pts.map((p) => (p?.status === 'ok' ? num(p.opsPerSec) : p ? 'failed' : '–')).join(' / '), one ? `${num(one.p50)} / ${num(one.p99)}` : '–'];
  });
  return [table(['symmetric operations via mpchsm KMS', `calls/s at ${c.join(' / ')} clients`, 'latency p50 / p99 at 1 client (ms)'], rows), ''];
}

/** The README's performance section: the latest figures and the machine they came from. */
export function readmeSnippet(r: BenchResults): string {
  const rows: (string | number)[][] = [];
  for (const alg of ALGS)
    for (const target of TARGETS) {
      const bad = unavailable(r, target, alg);
      if (bad) {
        rows.push([ALG_LABEL[alg], TARGET_LABEL[target], bad.status === 'unavailable' ? 'not available yet' : 'failed', '', '']);
        continue;
      }
      const pts = r.settings.concurrency.map((c) => point(r.sign, target, alg, c));
      if (pts.every((p) => !p)) continue;
      const one = pts[0]?.latencyMs;
      const b = best(r.sign, target, alg);
      const soft = best(r.sign, 'softhsm', alg);
      rows.push([ALG_LABEL[alg], TARGET_LABEL[target], pts.map((p) => num(p?.opsPerSec)).join(' / '), one ? `${num(one.p50)} / ${num(one.p99)}` : '–', target !== 'softhsm' && b && soft ? `${ratio(b / soft)}×` : '']);
    }
  const keygen = ALGS.map((alg) => {
    const cell = (t: Target) => {
      const k = r.keygen.find((x) => x.alg === alg && x.target === t);
      return !k ? '–' : k.status === 'ok' ? `${num(k.meanMs)}${k.approved ? ' (incl. approval)' : ''}` : k.status === 'failed' ? 'failed' : /approval/.test(k.reason ?? '') ? 'under approval: not measured' : 'not available yet';
    };
    return [ALG_LABEL[alg], cell('kms'), cell('p11'), cell('softhsm')];
  });
  const c = r.settings.concurrency;
  return [
    '## Performance',
    '',
    `Measured by \`npm run bench\` on ${describeMachine(r.machine)}, ${r.finishedAt.slice(0, 10)}${r.revision ? ` (commit ${r.revision})` : ''}: a local cluster (gateway + ${r.cluster.signers} signers, threshold ${r.cluster.threshold}) with every process on this one machine, against SoftHSMv2 (a whole key in one process — the single-machine limit) driven by the same PKCS#11 client loop. Closed-loop clients, ${r.settings.durationMs / 1000} s per point; each signature is a full threshold session with policy, audit and verify-before-release.`,
    '',
    table(['algorithm', 'path', `signatures/s at ${c.join(' / ')} clients`, 'latency p50 / p99 at 1 client (ms)', 'best throughput vs SoftHSMv2'], rows),
    '',
    table(['key generation (mean ms)', 'KMS CreateKey', 'PKCS#11 C_GenerateKeyPair', 'SoftHSMv2'], keygen),
    '',
    ...symmetricReadme(r),
    ...nginxLine(r),
    '`npm run bench` writes the full report (latency percentiles, CPU per process, where the time goes, protocol-only figures) to `bench-results/bench.md`, with `bench.json` and a chart, `throughput.svg`.',
    '',
  ].join('\n');
}
