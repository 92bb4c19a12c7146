// The cluster under test: a fresh local one started through the `mpchsm` command exactly as a
// user would (in a temporary directory, on free loopback ports), or one already running.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { clusterJsonSchema, type ClusterJson } from '../../cli/running.js';
import { layout, packageRoot } from '../../cli/layout.js';
import { parseEnvFile } from '../../cli/env-file.js';

const run = promisify(execFile);
const MPCHSM = path.join(packageRoot, 'bin', 'mpchsm.js');

export interface BenchCluster {
  readonly dir: string;
  /** Started (and so stopped and removed) by the benchmark. */
  readonly owned: boolean;
  info(): ClusterJson;
  /** A principal's env file (AWS credentials, endpoint, PKCS#11 module, conf and PIN). */
  principal(name: string): Record<string, string>;
  /** `mpchsm approve ID --as ADMIN --json`: an administrator approves a proposal; its JSON answer. */
  approve(proposalId: string, admin: string): Promise<unknown>;
  /** Stops and starts the processes (keys survive), with `env` added to theirs. */
  restart(env?: Record<string, string>): Promise<void>;
  /** Stops an owned cluster and removes its directory; leaves a borrowed one running. */
  close(): Promise<void>;
}


function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free base port P with P..P+signers and P+100 (the PKCS#11 listener) all free on loopback. */
async function freePortBlock(signers: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below the kernel's ephemeral range (32768+), so no outgoing connection holds a port we bind.
    const base = 10000 + Math.floor(Math.random() * 22000);
    const ports = [...Array.from({ length: signers + 1 }, (_, i) => base + i), base + 100];
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return base;
  }
  throw new Error('no free block of loopback ports');
}

const mpchsm = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, [MPCHSM, ...args], { cwd: packageRoot, timeout: 180_000, env: { ...process.env, ...env } });

function handle(dir: string, owned: boolean, up: (env: Record<string, string>) => Promise<void>, down: () => Promise<void>): BenchCluster {
  const L = layout(dir);
  return {
    dir,
    owned,
    approve: async (proposalId, admin) => {
      const { stdout } = await mpchsm(['approve', proposalId, '--as', admin, '--dir', dir, '--json']);
      return JSON.parse(stdout.trim().split('\n').at(-1) ?? 'null');
    },
    info: () => clusterJsonSchema.parse(JSON.parse(readFileSync(L.clusterJson, 'utf8'))),
    principal: (name) => parseEnvFile(readFileSync(L.principalEnv(name), 'utf8')),
    restart: async (env = {}) => {
      if (!owned) throw new Error('the benchmark restarts only a cluster it started');
      await down();
      await up(env);
    },
    close: async () => {
      if (!owned) return;
      await down().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts a new cluster of `signers` signers, threshold `threshold`, in a temporary directory. */
export async function startCluster(signers: number, threshold: number): Promise<BenchCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-bench-'));
  const port = await freePortBlock(signers);
  const up = async (env: Record<string, string>) =>
    void (await mpchsm(['up', '--dir', dir, '--signers', String(signers), '--threshold', String(threshold), '--port', String(port), '--detach'], env));
  const down = async () => void (await mpchsm(['down', '--dir', dir]));
  const c = handle(dir, true, up, down);
  try {
    await up({});
  } catch (e) {
    const detail = logTail(e as Error);
    await c.close();
    throw new Error(`mpchsm up failed: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}${detail}`);
  }
  return c;
}

/** The last lines of the log an `mpchsm up` failure points at (read before the directory goes). */
function logTail(e: Error & { stderr?: string }): string {
  const log = /\(see ([^)]+\.log)\)/.exec(e.stderr ?? e.message)?.[1];
  if (!log || !existsSync(log)) return '';
  const lines = readFileSync(log, 'utf8').trim().split('\n').slice(-3);
  return `\n  last lines of ${path.basename(log)}:\n    ${lines.join('\n    ')}`;
}

/** A cluster someone else runs from `dir` (`mpchsm up --dir DIR`); never stopped here. */
export function attachCluster(dir: string): BenchCluster {
  const c = handle(path.resolve(dir), false, async () => undefined, async () => undefined);
  if (!existsSync(layout(dir).clusterJson)) throw new Error(`no cluster has been started from ${path.resolve(dir)} (no cluster.json); start one with 'mpchsm up --dir ${dir}'`);
  c.info();
  return c;
}
