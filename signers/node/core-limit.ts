// No core dumps of a signer: a dump would write its shares, identity and store key to disk.
// Node has no setrlimit, and no native addon is wanted for one call: util-linux's `prlimit`
// sets this process's RLIMIT_CORE (soft and hard) to 0 from outside, and /proc/self/limits shows
// it took. The systemd unit sets LimitCORE=0 as well (deploy/systemd/).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TIMEOUT_MS = 5_000;

/** RLIMIT_CORE's soft and hard values for this process, as /proc/self/limits shows them. */
export function coreLimit(pid: number | 'self' = 'self'): string | undefined {
  try {
    const m = /^Max core file size\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? `${m[1]} ${m[2]}` : undefined;
  } catch {
    return undefined;
  }
}

/** Sets this process's core limit to 0; resolves to why not, when it could not (no prlimit, no /proc). */
export async function disableCoreDumps(): Promise<string | undefined> {
  if (coreLimit() === '0 0') return undefined;
  const failed = await new Promise<string | undefined>((resolve) =>
    execFile('prlimit', ['--pid', String(process.pid), '--core=0:0'], { timeout: TIMEOUT_MS, killSignal: 'SIGKILL' }, (err) => resolve(err ? `prlimit failed: ${err.message}` : undefined)),
  );
  if (failed) return failed;
  return coreLimit() === '0 0' ? undefined : `the core limit is still ${coreLimit() ?? 'unknown'}`;
}
