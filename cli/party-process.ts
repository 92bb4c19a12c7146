// `mpchsm signer start|stop` and `mpchsm gateway start|stop`: one party's daemon, started on a
// genesis (which the daemon checks itself before it serves), its pid in DIR/KIND.pid and its
// output in DIR/KIND.log. Ready means: the process that was started answers its health check.
// `mpchsm up` starts its parties with the same function.
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { readJsonFile } from '../contract/io/json-file.js';
import { readGenesis } from '../policy/index.js';
import { loadSignerConfig, signerPaths } from '../signers/node/config.js';
import { entry } from './layout.js';
import { exitReport, partyRuns, startNode, stopPid, waitHealthy, type Started } from './processes.js';

export type PartyKind = 'signer' | 'gateway';
const READY_TIMEOUT_MS = 30_000;

const pidFile = (kind: PartyKind, dir: string) => path.join(dir, `${kind}.pid`);
export const partyLog = (kind: PartyKind, dir: string) => path.join(dir, `${kind}.log`);

/** The pid recorded for a running party in DIR, if that process is alive. */
export function runningPid(kind: PartyKind, dir: string): number | undefined {
  const f = pidFile(kind, path.resolve(dir));
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && partyRuns(pid, dir) ? pid : undefined;
}

/** Where the party in DIR answers, according to the genesis (a signer is found by its identity). */
function endpointOf(kind: PartyKind, dir: string, genesis: string): { name: string; url: string } {
  const g = readGenesis(genesis);
  if (kind === 'gateway') return { name: 'gateway', url: g.gateway.kms };
  const own = readJsonFile(path.join(dir, 'identity.json'), z.object({ signPublicKey: z.string() }).passthrough());
  // A restored signer has a new identity in a founding party's place (the daemon checks its store says so).
  const restored = () => {
    const c = loadSignerConfig(dir);
    return g.signers.find((s) => s.id === c.id && s.name === c.name && c.peers.some((p) => p.id === c.id && p.identity.signPublicKey === own.signPublicKey));
  };
  const me = g.signers.find((s) => s.identity.signPublicKey === own.signPublicKey) ?? (existsSync(signerPaths(dir).config) ? restored() : undefined);
  if (!me) throw new Error(`${genesis}: the signer in ${dir} is not among its signers`);
  return { name: me.name, url: me.endpoint };
}

/**
 * Starts the party in DIR on `genesis`, its store opened with `secret`; resolves once it is ready
 * (or rejects with the reason it stopped, from its log). `detach`: it outlives this process. A
 * signer admitted by governance after the genesis starts on its configuration instead (`at`).
 * `metricsListen`: a signer answers GET /metrics there (a loopback HOST:PORT) this run;
 * `consoleListen`: the gateway serves its approval console there this run.
 */
export async function startParty(o: { kind: PartyKind; dir: string; secret: string; detach: boolean; logFile?: string; metricsListen?: string; consoleListen?: string; tcti?: string | undefined } & ({ genesis: string } | { at: { name: string; url: string } })): Promise<Started & { url: string }> {
  const dir = path.resolve(o.dir);
  const pid = runningPid(o.kind, dir);
  if (pid !== undefined) throw new Error(`the ${o.kind} in ${dir} is already running (pid ${pid}); stop it with 'mpchsm ${o.kind} stop --dir ${o.dir}'`);
  const { name, url } = 'genesis' in o ? endpointOf(o.kind, dir, o.genesis) : o.at;
  const log = o.logFile ?? partyLog(o.kind, dir);
  const script = o.kind === 'signer' ? entry.signer : entry.gateway;
  const args = ['run', '--dir', dir, ...('genesis' in o ? ['--genesis', path.resolve(o.genesis)] : []), ...(o.metricsListen ? ['--metrics-listen', o.metricsListen] : []), ...(o.consoleListen ? ['--console-listen', o.consoleListen] : []), ...(o.tcti ? ['--tcti', o.tcti] : [])];
  const started = startNode(name, script, args, log, { detach: o.detach, stdinSecret: o.secret });
  try {
    await waitHealthy(`${url}/health`, started.child, READY_TIMEOUT_MS);
  } catch (e) {
    const { child } = started;
    if (child.exitCode !== null || child.signalCode !== null) throw exitReport(started, child.exitCode, child.signalCode, log);
    if (child.pid) await stopPid(child.pid);
    throw new Error(`${name} did not start: ${(e as Error).message} (see ${log})`);
  }
  await writeFileAtomic(pidFile(o.kind, dir), Buffer.from(`${started.child.pid}\n`), 0o644);
  return { ...started, url };
}

/** Stops the party running from DIR; false when none was. */
export async function stopParty(kind: PartyKind, dir: string): Promise<boolean> {
  const pid = runningPid(kind, dir);
  if (pid !== undefined) await stopPid(pid);
  const f = pidFile(kind, path.resolve(dir));
  if (existsSync(f)) unlinkSync(f);
  return pid !== undefined;
}

/**
 * Runs started processes in the foreground: until a signal or until any of them exits, then
 * stops them all (`onExit` tells which ended first).
 */
export async function holdForeground(started: readonly Started[], onExit: (s: Started, how: string) => void): Promise<void> {
  let stopping = false;
  await new Promise<void>((resolve) => {
    const stop = () => {
      stopping = true;
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    for (const s of started)
      s.child.once('exit', (code, signal) => {
        // Once stopping, the others' exits are ours.
        if (stopping) return;
        onExit(s, String(signal ?? code));
        stop();
      });
  });
  await Promise.all(started.map((s) => (s.child.pid ? stopPid(s.child.pid) : undefined)));
}
