// Running the parties' own commands (`mpchsm admin|signer|gateway|genesis|principal …`) as real
// processes for the deployment tests: optionally as another Linux user, the passphrase on
// standard input, every run bounded; free ports on a given loopback address; a certificate for
// the gateway's KMS endpoint, as its operator would bring one.
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { mpchsmBin, repoRoot } from '../helpers/cluster.js';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A Linux account to run as: its uid and gid (HOME is set to `home`). */
export interface RunAs {
  uid: number;
  gid: number;
  home: string;
}

const RUN_TIMEOUT_MS = 120_000;

/** Runs `file args…` to its end (killed after RUN_TIMEOUT_MS), feeding `input` on stdin. */
export function runProcess(file: string, args: string[], o: { as?: RunAs; input?: string; env?: Record<string, string> } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: o.as?.home ?? process.env.HOME ?? '/', ...o.env };
    const child = spawn(file, args, { cwd: o.as?.home ?? repoRoot, env, stdio: ['pipe', 'pipe', 'pipe'], ...(o.as ? { uid: o.as.uid, gid: o.as.gid } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // a command that exits before reading its stdin
    child.stdin.end(o.input ?? '');
  });
}

/** `mpchsm ARGS` run to its end. */
export const mpchsm = (args: string[], o: { as?: RunAs; input?: string } = {}): Promise<RunResult> => runProcess(process.execPath, [mpchsmBin, ...args], o);

/** `mpchsm ARGS --json` that must succeed: its one JSON object. */
export async function mpchsmJson(args: string[], o: { as?: RunAs; input?: string } = {}): Promise<Record<string, unknown>> {
  const r = await mpchsm([...args, '--json'], o);
  if (r.code !== 0) throw new Error(`mpchsm ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

/** A port free on `host` now (bound and released), below the ephemeral range. */
export async function freePort(host: string): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10000 + Math.floor(Math.random() * 22000);
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, host, () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port on ${host}`);
}

/** A self-signed P-256 certificate for IP `ip` (subject alternative name): DIR/kms.crt and DIR/kms.key. */
export function makeCertificate(dir: string, ip: string): { cert: string; key: string } {
  const cert = path.join(dir, 'kms.crt');
  const key = path.join(dir, 'kms.key');
  // prettier-ignore
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${ip}`,
    '-addext', `subjectAltName=IP:${ip}`, '-keyout', key, '-out', cert,
  ], { stdio: 'ignore', timeout: 30_000 });
  return { cert, key };
}
