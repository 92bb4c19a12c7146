// A local cluster whose signers are sealed to software TPMs (`mpchsm up --seal swtpm`), started
// through the `mpchsm` command from dist as a user would, and stopped (with its swtpms) afterwards.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseEnvFile } from '../../cli/env-file.js';
import { mpchsmBin, repoRoot, type Principal, type TestCluster } from '../helpers/cluster.js';

const run = promisify(execFile);

const isFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/** A base port with the gateway, signers, PKCS#11 listener and swtpm ports (base + 300 + 2·id, +1) free. */
async function freeBase(signers: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10000 + Math.floor(Math.random() * 22000);
    const ports = [...Array.from({ length: signers + 3 }, (_, i) => base + i), base + 100, ...Array.from({ length: 2 * signers + 4 }, (_, i) => base + 302 + i)];
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return base;
  }
  throw new Error('no free port block on 127.0.0.1');
}

export async function startSwtpmCluster(signers = 3): Promise<TestCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-tpm-'));
  const port = await freeBase(signers);
  const mpchsm = (...args: string[]) => run(process.execPath, [mpchsmBin, ...args], { cwd: repoRoot, timeout: 180_000 });
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
      await mpchsm('up', '--dir', dir, '--signers', String(signers), '--threshold', '2', '--port', String(port), '--seal', 'swtpm', '--detach');
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

/** swtpm, swtpm_setup (swtpm-tools) and tpm2-tools are installed: .ci/run installs them. */
export const haveSwtpm = ['swtpm', 'swtpm_setup', 'tpm2_createprimary'].every((tool) => (process.env.PATH ?? '').split(':').some((d) => existsSync(path.join(d, tool))));
export const NO_SWTPM = 'needs swtpm, swtpm-tools and tpm2-tools (Debian packages; .ci/run installs them)';
