// Starts a real local cluster (gateway + signer processes on loopback) for integration tests,
// through the `mpchsm` command exactly as a user would, and stops it afterwards.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseEnvFile } from '../../cli/env-file.js';
import { isTempName } from '../../contract/io/atomic.js';

const run = promisify(execFile);
export const repoRoot = path.resolve(import.meta.dirname, '..', '..');
export const mpchsmBin = path.join(repoRoot, 'bin', 'mpchsm.js');

export interface Principal {
  AWS_ACCESS_KEY_ID: string;
  AWS_SECRET_ACCESS_KEY: string;
  AWS_REGION: string;
  MPCHSM_KMS_ENDPOINT: string;
  MPCHSM_PKCS11_MODULE: string;
  MPCHSM_PKCS11_CONF: string;
  MPCHSM_PKCS11_PIN: string;
}

export interface TestCluster {
  dir: string;
  port: number;
  endpoint: string;
  principal(name: string): Principal;
  cluster(): { gateway: { pid: number; url: string; console?: string }; signers: { name: string; pid: number; url: string }[]; threshold: number; signers_total: number };
  mpchsm(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** `mpchsm ARGS` run to its end, failing or not: its exit status and output (stdout, then stderr). */
  mpchsmStatus(...args: string[]): Promise<{ code: number; out: string }>;
  up(): Promise<void>;
  down(): Promise<void>;
  /** Stops the cluster and removes its directory. */
  destroy(): Promise<void>;
}

/**
 * A free block of `count` consecutive loopback ports (gateway, signers, PKCS#11 listener), and of
 * `above` more from base + `aboveAt` (software TPMs).
 */
export async function freePortBlock(count: number, above = 0, aboveAt = 0): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below the kernel's ephemeral range (32768+), so no outgoing connection holds a port we bind.
    const base = 10000 + Math.floor(Math.random() * 22000);
    const ports = [...Array.from({ length: count }, (_, i) => base + i), base + 100, ...Array.from({ length: above }, (_, i) => base + aboveAt + i)];
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return base;
  }
  throw new Error('no free port block on 127.0.0.1');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}


/**
 * A cluster started with `mpchsm up`. `port`: its base port, when the caller chose a block with
 * more free above it; `upArgs`: more of `up`'s options (`--seal swtpm`); `timeoutMs`: per command.
 */
export async function startCluster(opts: { signers?: number; threshold?: number; port?: number; upArgs?: string[]; timeoutMs?: number } = {}): Promise<TestCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-test-'));
  const n = opts.signers ?? 3;
  // Two ports beyond the signers stay free for signers added later (`mpchsm signer add`).
  const port = opts.port ?? (await freePortBlock(n + 3));
  const mpchsm = (...args: string[]) => run(process.execPath, [mpchsmBin, ...args], { cwd: repoRoot, timeout: opts.timeoutMs ?? 120_000 });
  const tc: TestCluster = {
    dir,
    port,
    endpoint: `http://127.0.0.1:${port}`,
    principal: (name) => parseEnvFile(readFileSync(path.join(dir, 'principals', `${name}.env`), 'utf8')) as unknown as Principal,
    cluster: () => JSON.parse(readFileSync(path.join(dir, 'cluster.json'), 'utf8')),
    mpchsm,
    mpchsmStatus: (...args) =>
      mpchsm(...args).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
      ),
    up: async () => {
      await mpchsm('up', '--dir', dir, '--signers', String(n), '--threshold', String(opts.threshold ?? 2), '--port', String(port), '--detach', ...(opts.upArgs ?? []));
    },
    down: async () => {
      await mpchsm('down', '--dir', dir);
    },
    destroy: async () => {
      await mpchsm('down', '--dir', dir).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await tc.up();
  } catch (e) {
    await tc.destroy();
    throw e;
  }
  return tc;
}

/**
 * `mpchsm audit verify` over every log at rest: stops the cluster (so every entry is written and
 * anchored), verifies, and starts it again; the verify's exit status and output.
 */
export async function auditVerifyAtRest(tc: TestCluster): Promise<{ code: number; out: string }> {
  await tc.down();
  const r = await tc.mpchsmStatus('audit', 'verify', '--dir', tc.dir);
  await tc.up();
  return r;
}

/** Copies a party's directory while it runs: its temp files (an atomic write or the store's
 * health probe in flight) may vanish between listing and copying, and are no part of its state. */
export const copyLiveDir = (from: string, to: string): void =>
  cpSync(from, to, { recursive: true, filter: (src) => !isTempName(path.basename(src)) });
