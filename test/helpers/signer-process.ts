// One signer of a test cluster as a process: its unauthenticated /health (what it holds now),
// and a restart of that signer alone from its directory (`mpchsm signer start`), the gateway and
// the other signers left running; cluster.json then names the new pid, so `mpchsm down` stops it.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import { isAlive } from '../../cli/processes.js';
import { mpchsmBin, repoRoot, type TestCluster } from './cluster.js';

const run = promisify(execFile);

/** A signer's /health answer (its certificate is not checked: the answer steers nothing here). */
export function signerHealth(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = https.get(new URL('/health', url), { agent: false, rejectUnauthorized: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no health answer in 5 s')));
    req.on('error', reject);
  });
}

/** Waits until every signer holds at least `n` FROST nonce pairs made ahead. */
export async function preprocessedHeld(tc: TestCluster, n: number, names?: string[]): Promise<void> {
  const until = Date.now() + 30_000;
  for (const s of tc.cluster().signers.filter((x) => !names || names.includes(x.name))) {
    for (;;) {
      const held = Number((await signerHealth(s.url)).preprocessed ?? 0);
      if (held >= n) break;
      if (Date.now() > until) throw new Error(`${s.name} holds ${held} nonce pairs made ahead, not ${n}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** SIGKILL to signer `name`; resolves once the process is gone. */
export async function killSigner(tc: TestCluster, name: string): Promise<void> {
  const pid = tc.cluster().signers.find((s) => s.name === name)!.pid;
  process.kill(pid, 'SIGKILL');
  for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 20))) if (!isAlive(pid)) return;
  throw new Error(`${name} (pid ${pid}) still runs 10 s after SIGKILL`);
}

/** Starts signer `name` again from its directory (after it was killed or stopped); resolves once it serves. */
export async function startSigner(tc: TestCluster, name: string): Promise<void> {
  const dir = path.join(tc.dir, 'signers', name);
  const child = run(process.execPath, [mpchsmBin, 'signer', 'start', '--dir', dir, '--genesis', path.join(tc.dir, 'genesis.json'), '--detach'], { cwd: repoRoot, timeout: 60_000 });
  child.child.stdin!.end(readFileSync(path.join(tc.dir, 'operators', `${name}.secret`), 'utf8'));
  await child;
  const pid = Number(readFileSync(path.join(dir, 'signer.pid'), 'utf8').trim());
  const clusterJson = path.join(tc.dir, 'cluster.json');
  const c = JSON.parse(readFileSync(clusterJson, 'utf8')) as { signers: { name: string; pid: number }[] };
  c.signers.find((s) => s.name === name)!.pid = pid;
  writeFileSync(clusterJson, JSON.stringify(c, null, 2) + '\n');
}
