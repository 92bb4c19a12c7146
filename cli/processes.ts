// Starting, waiting for and stopping the cluster's processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

export interface Started {
  name: string;
  child: ChildProcess;
  /** The log's length when this process was started: what it wrote comes after. */
  logFrom?: number;
}

/**
 * Spawns `node script args…` with its output appended to `logFile`. `stdinSecret`, when
 * given, is written to the child's stdin and the pipe closed: secrets never go on the command
 * line or in the environment, where other local users could read them.
 */
export function startNode(name: string, script: string, args: string[], logFile: string, opts: { detach: boolean; stdinSecret?: string }): Started {
  const log = openSync(logFile, 'a', 0o600);
  const logFrom = fstatSync(log).size;
  const child = spawn(process.execPath, [script, ...args], {
    stdio: [opts.stdinSecret === undefined ? 'ignore' : 'pipe', log, log],
    detached: opts.detach,
  });
  closeSync(log);
  if (opts.stdinSecret !== undefined) child.stdin!.end(opts.stdinSecret);
  return { name, child, logFrom };
}

/** Runs `node script args…` to completion, feeding `stdin`, and returns its stdout. */
export function runNode(script: string, args: string[], stdin = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} ${args[0] ?? ''} exited ${code}: ${err.trim()}`))));
    child.stdin.end(stdin);
  });
}

/**
 * GETs `url` (a health check) and resolves its JSON body, or rejects within `timeoutMs`. Over
 * https no certificate is shown or checked: health is public and unauthenticated on every
 * party, and its answer only says whether a process is up (signers' certificates are
 * self-signed over their identity keys, which only the gateway's calls pin).
 */
export function getJson(url: string, timeoutMs = 2000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? (u: string, o: https.RequestOptions, cb: (res: http.IncomingMessage) => void) => https.get(u, { ...o, rejectUnauthorized: false }, cb) : http.get;
    const req = get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Polls `url` until our `child` answers it (its health names its pid: another process on the
 * same port does not count), the child exits, or `timeoutMs` passes.
 */
export async function waitHealthy(url: string, child: ChildProcess, timeoutMs: number): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited with ${status(child.exitCode, child.signalCode)} before it was ready`);
    try {
      // The gateway's health waits up to 1 s for a hung signer's probe: a shorter wait here would
      // never see a gateway ready while one signer hangs.
      const health = await getJson(url, 3000);
      if ((health as { pid?: unknown }).pid === child.pid) return health;
      last = new Error(`another process (pid ${(health as { pid?: unknown }).pid}) answers on ${url}`);
      await new Promise((r) => setTimeout(r, 100));
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`not ready after ${timeoutMs} ms: ${(last as Error)?.message}`);
}

const status = (code: number | null, signal: NodeJS.Signals | null) => (signal ? `signal ${signal}` : `status ${code}`);

/** The last `count` non-empty lines of `file` from byte `from` on, or none if it cannot be read. */
export function logTail(file: string, count = 5, from = 0): string[] {
  try {
    return readFileSync(file).subarray(from).toString('utf8').split('\n').filter((l) => l.trim() !== '').slice(-count);
  } catch {
    return [];
  }
}

/** Why `s` stopped during start-up: its name, exit status and the last lines of its log. */
export function exitReport(s: Started, code: number | null, signal: NodeJS.Signals | null, logFile: string): Error {
  // Only this start's lines: the log also holds earlier runs', and their failures are not this one's.
  const tail = logTail(logFile, 5, s.logFrom);
  return new Error(`${s.name} did not start: it exited with ${status(code, signal)}; ${tail.length > 0 ? `the last lines of ${logFile}:\n${tail.map((l) => `    ${l}`).join('\n')}` : `see ${logFile}`}`);
}

/**
 * Watches started processes: `exited` rejects with `exitReport` as soon as any process given
 * to `watch` exits, so start-up is abandoned at once rather than when a health wait times out.
 */
export function exitWatch(logFile: (name: string) => string): { exited: Promise<never>; watch(s: Started): Started } {
  let fail: (e: Error) => void = () => undefined;
  const exited = new Promise<never>((_, reject) => (fail = reject));
  exited.catch(() => undefined); // a late exit (while stopping) is nobody's error
  return {
    exited,
    watch(s) {
      s.child.once('exit', (code, signal) => fail(exitReport(s, code, signal, logFile(s.name))));
      return s;
    },
  };
}

/**
 * Whether `pid` still runs. A process that has exited but is not yet reaped (a zombie) does not:
 * a detached party's parent is init, which may reap it seconds later, and waiting for that made
 * every stop take about 2 s longer than the process did.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !exitedUnreaped(pid);
}

/** Whether this system shows processes in /proc (Linux). */
const PROC = existsSync('/proc/self/stat');

/** Whether `pid` is the party started from DIR (startParty's command line names it), not whatever now has that pid. */
export const partyRuns = (pid: number, dir: string): boolean => isOurs(pid, ['--dir', path.resolve(dir)]);

/**
 * Whether `pid` runs and is the process started with `args` (consecutive on its command line). A
 * pid from a stale file (after a reboot, or once pids wrapped round) may name an unrelated
 * process, which must neither be signalled nor taken for ours. Without /proc: isAlive alone.
 */
export function isOurs(pid: number, args: readonly string[]): boolean {
  if (!isAlive(pid)) return false;
  if (!PROC) return true;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  return argv.some((_, i) => args.every((a, k) => argv[i + k] === a));
}

/**
 * Linux's process state in /proc/PID/stat (after the command's closing parenthesis) is Z, or the
 * entry is gone: reaped since kill(pid, 0) answered. False where there is no /proc.
 */
function exitedUnreaped(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return PROC;
  }
  return stat.charAt(stat.lastIndexOf(')') + 2) === 'Z';
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopPid(pid: number, graceMs = 5000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    while (isAlive(pid)) await new Promise((r) => setTimeout(r, 20));
  }
}
