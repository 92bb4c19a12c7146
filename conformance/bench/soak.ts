// `npm run bench:soak`: memory under sustained load. A local cluster (started here, or --cluster
// DIR), C closed-loop PKCS#11 clients signing with one key for M minutes, and the resident set
// (VmRSS, /proc) of the gateway and each signer sampled every 10 s, judged by soak-verdict.ts
// (issue #21: at most 200 MB per process after 10 minutes at 16 clients, no growth). Prints a
// table; writes soak.json to --out (default bench-results/); exits 1 if a process misses.
//
//   node dist/conformance/bench/soak.js [--minutes 10] [--clients 16] [--alg rsa2048|p256|ed25519] [--cluster DIR] [--out DIR]

import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../cli/layout.js';
import { attachCluster, startCluster } from './cluster.js';
import { clusterPids, release, startClient, type Held } from './held.js';
import { judge, SAMPLE_MS } from './soak-verdict.js';
import { ALGS, keygenAnswerSchema, loadResultSchema, type Alg } from './types.js';


/** Resident set of `pid` in MB, from /proc/PID/status (VmRSS, kB). */
function rssMb(pid: number): number | undefined {
  try {
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const { values: v } = parseArgs({
    options: { minutes: { type: 'string', default: '10' }, clients: { type: 'string', default: '16' }, alg: { type: 'string', default: 'rsa2048' }, cluster: { type: 'string' }, out: { type: 'string' } },
  });
  const minutes = Number(v.minutes);
  const clients = Number(v.clients);
  const alg = v.alg as Alg;
  if (!(minutes > 0 && minutes <= 240) || !Number.isInteger(clients) || clients < 1 || clients > 256 || !ALGS.includes(alg)) {
    process.stderr.write(`usage: soak.js [--minutes 0<M≤240] [--clients 1..256] [--alg ${ALGS.join('|')}] [--cluster DIR] [--out DIR]\n`);
    return 2;
  }
  const held: Held = { clients: new Map() };
  const stop = () => void release(held).finally(() => process.exit(130));
  process.once('SIGINT', stop);
  try {
    held.cluster = v.cluster ? attachCluster(v.cluster) : await startCluster(3, 2);
    const why = await startClient(held, 'p11', clients, undefined);
    if (why) throw new Error(why);
    const cp = held.clients.get('p11')!;
    const key = await cp.call({ op: 'keygen', alg, label: `soak-${alg}` }, keygenAnswerSchema, 300_000);
    if (key.status !== 'ok') throw new Error(`no key to sign with: ${key.status === 'unavailable' ? key.reason : `proposal ${key.proposalId} awaits approval`}`);
    const pids = clusterPids(held.cluster);
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(pids).map((p) => [p, []]));
    let ops = 0;
    let errors = 0;
    const end = Date.now() + minutes * 60_000;
    while (Date.now() < end) {
      const r = await cp.call({ op: 'sign', alg, keyRef: key.result.keyRef, spki: key.result.spki, concurrency: clients, durationMs: SAMPLE_MS }, loadResultSchema, SAMPLE_MS + 120_000);
      ops += r.ops;
      errors += r.errors;
      for (const [name, pid] of Object.entries(pids)) {
        const mb = rssMb(pid);
        if (mb === undefined) throw new Error(`${name} (pid ${pid}) is gone`);
        samples[name]!.push(mb);
      }
      process.stderr.write(`${Math.round((end - Date.now()) / 1000)} s left: ${Object.entries(samples).map(([n, s]) => `${n} ${s.at(-1)!.toFixed(0)} MB`).join(', ')}\n`);
    }
    const verdicts = Object.fromEntries(Object.entries(samples).map(([name, s]) => [name, judge(s)]));
    const out = path.resolve(v.out ?? path.join(packageRoot, 'bench-results'));
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'soak.json'), JSON.stringify({ alg, clients, minutes, sampleMs: SAMPLE_MS, ops, errors, samples, verdicts }, null, 2));
    const lines = [
      `${clients} PKCS#11 clients signing with ${alg} for ${minutes} min: ${ops} signatures (${(ops / (minutes * 60)).toFixed(1)}/s), ${errors} errors`,
      '',
      '| process | max RSS MB | steady first third MB | last third MB | grows | ≤ 200 MB, no growth |',
      '| --- | --- | --- | --- | --- | --- |',
      ...Object.entries(verdicts).map(([n, j]) => `| ${n} | ${j.maxMb.toFixed(0)} | ${j.firstMb.toFixed(0)} | ${j.lastMb.toFixed(0)} | ${j.grows ? 'yes' : 'no'} | ${j.met ? 'yes' : '**no**'} |`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return Object.values(verdicts).every((j) => j.met) && errors === 0 ? 0 : 1;
  } finally {
    process.removeListener('SIGINT', stop);
    await release(held);
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`soak: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
