// A software TPM 2.0 per signer (`mpchsm up --seal swtpm`, for trying the TPM path on a host
// without one; `doctor` names it software). Each listens on 127.0.0.1 with its state in its own
// directory: made once by swtpm_setup (an EK with its certificate and a platform certificate,
// issued by swtpm's local CA), started as a daemon by every `up`, stopped by `down`.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { isOurs, stopPid } from './processes.js';

const run = promisify(execFile);
/** swtpm_setup makes EK key pairs: seconds each, more with several at once on a small host. */
const SETUP_TIMEOUT_MS = 120_000;
const START_TIMEOUT_MS = 10_000;

/** The TCTI tpm2-tools reach a swtpm on `port` with. */
export const swtpmTcti = (port: number) => `swtpm:host=127.0.0.1,port=${port}`;

const pidFile = (state: string) => path.join(state, 'swtpm.pid');

/** Manufactures the TPM in `state` (EK and platform certificates), once. */
export async function setupSwtpm(state: string): Promise<void> {
  if (existsSync(path.join(state, 'tpm2-00.permall'))) return;
  await mkdir(state, { recursive: true, mode: 0o700 });
  await run('swtpm_setup', ['--tpm2', '--tpmstate', state, '--create-ek-cert', '--create-platform-cert', '--not-overwrite'], { timeout: SETUP_TIMEOUT_MS, killSignal: 'SIGKILL' }).catch((e: Error & { stderr?: string }) => {
    throw new Error(`swtpm_setup for ${state} failed (Debian package swtpm-tools): ${(e.stderr ?? e.message).trim().split('\n').at(-1)}`);
  });
}

/** The pid of the swtpm serving `state`, if it runs. */
export function swtpmPid(state: string): number | undefined {
  if (!existsSync(pidFile(state))) return undefined;
  const pid = Number(readFileSync(pidFile(state), 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && isOurs(pid, ['--tpmstate', `dir=${state}`]) ? pid : undefined;
}

/** Starts the swtpm of `state` on `port` (its control channel on port + 1) unless it runs; its pid once it answers. */
export async function startSwtpm(state: string, port: number): Promise<number> {
  const running = swtpmPid(state);
  if (running !== undefined) return running;
  await setupSwtpm(state);
  const args = ['socket', '--tpm2', '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`];
  args.push('--tpmstate', `dir=${state}`, '--flags', 'not-need-init,startup-clear', '--pid', `file=${pidFile(state)}`, '--log', `file=${path.join(state, 'swtpm.log')}`, '--daemon');
  await run('swtpm', args, { timeout: START_TIMEOUT_MS, killSignal: 'SIGKILL' }).catch((e: Error & { stderr?: string }) => {
    throw new Error(`swtpm for ${state} on 127.0.0.1:${port} did not start (Debian package swtpm): ${(e.stderr ?? e.message).trim().split('\n').at(-1)}`);
  });
  await waitListening(port, START_TIMEOUT_MS);
  const pid = swtpmPid(state);
  if (pid === undefined) throw new Error(`swtpm for ${state} started but left no live pid in ${pidFile(state)}`);
  return pid;
}

/** Stops the swtpm of `state`; false when none ran. */
export async function stopSwtpm(state: string): Promise<boolean> {
  const pid = swtpmPid(state);
  if (pid !== undefined) await stopPid(pid);
  if (existsSync(pidFile(state))) unlinkSync(pidFile(state));
  return pid !== undefined;
}

async function waitListening(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => s.end(() => resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`swtpm on 127.0.0.1:${port} does not answer after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
