// The machine a run measured, and the floors under every figure: how long a durable write
// (fdatasync) and an HTTP round trip on loopback take here.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { summarise } from './stats.js';
import type { LatencySummary } from './types.js';

export interface Machine {
  cpu: string;
  cores: number;
  mhz: number;
  memoryGiB: number;
  os: string;
  node: string;
  /** 1, 5 and 15-minute load averages when the run started: other work distorts every figure. */
  loadAverage: number[];
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    mhz: cpus[0]?.speed ?? 0,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    loadAverage: os.loadavg().map((v) => Math.round(v * 100) / 100),
  };
}

/** The commit measured (`abc1234`, `+changes` when the tree differs from it), if in a git checkout. */
export function revision(root: string): string | undefined {
  try {
    const git = (...args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') ? '+changes' : ''}`;
  } catch {
    return undefined;
  }
}

/** A warning when the machine was busy with other work as the run started. */
export function busyWarning(m: Machine): string | undefined {
  const load = m.loadAverage[0] ?? 0;
  return load > 0.25 * m.cores ? `the machine was busy when the run started (load average ${load} on ${m.cores} cores): other work competes for the CPU and depresses these figures` : undefined;
}

export const describeMachine = (m: Machine) => `${m.cores} × ${m.cpu}${m.mhz ? ` (${m.mhz} MHz)` : ''}, ${m.memoryGiB} GiB, ${m.os}, Node.js ${m.node}`;

/** Latency of appending a line and fdatasync-ing it (what an audit append waits for), in `dir`. */
export async function fdatasyncLatency(dir: string, count: number): Promise<LatencySummary> {
  const tmp = mkdtempSync(path.join(dir, 'mpchsm-bench-fsync-'));
  try {
    const fh = await open(path.join(tmp, 'log'), 'a');
    const xs: number[] = [];
    const line = Buffer.from(`${'x'.repeat(300)}\n`);
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      await fh.write(line);
      await fh.datasync();
      xs.push(performance.now() - t);
    }
    await fh.close();
    return summarise(xs);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Round trips of GET `url` over one kept-alive loopback connection (no auth; over https, the
 * TLS record layer only: the handshake is done before the timed calls, no certificate checked).
 */
export async function httpRoundTrip(url: string, count: number): Promise<LatencySummary> {
  const tls = url.startsWith('https:');
  const agent = tls ? new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = () =>
    new Promise<void>((resolve, reject) => {
      const req = (tls ? https : http).get(url, { agent, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
      });
      req.on('timeout', () => req.destroy(new Error(`${url}: no answer`)));
      req.on('error', reject);
    });
  try {
    for (let i = 0; i < 5; i++) await get();
    const xs: number[] = [];
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      await get();
      xs.push(performance.now() - t);
    }
    return summarise(xs);
  } finally {
    agent.destroy();
  }
}
