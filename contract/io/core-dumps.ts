// A gateway or signer holds shares, store keys and PINs in its memory: a core file would write
// them to disk in clear. Each daemon lowers its own core-file limit to zero before it reads any
// secret. Node has no setrlimit, so util-linux's prlimit(1) sets it on this process (lowering a
// limit needs no privilege); under the shipped systemd units LimitCORE=0 has done it already.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Soft and hard core-file limits from /proc/self/limits ('unlimited' as Infinity). */
export function coreLimits(pid: number | 'self' = 'self'): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max core file size'));
  const [soft, hard] = (line?.slice('Max core file size'.length).trim().split(/\s+/) ?? []).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  if (soft === undefined || hard === undefined || Number.isNaN(soft) || Number.isNaN(hard)) throw new Error(`/proc/${pid}/limits has no core-file limit`);
  return { soft, hard };
}

/** Sets this process's core-file limit to 0 (soft and hard); throws if it cannot, so a daemon does not start with core dumps on. */
export function disableCoreDumps(): void {
  const now = coreLimits();
  if (now.soft === 0 && now.hard === 0) return;
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), '--core=0:0'], { stdio: 'ignore', timeout: 5_000 });
  } catch (e) {
    throw new Error(`cannot turn core dumps off (prlimit --core=0:0: ${(e as Error).message.split('\n')[0]}); install util-linux or start under LimitCORE=0`);
  }
  const after = coreLimits();
  if (after.soft !== 0 || after.hard !== 0) throw new Error('core dumps are still on after prlimit --core=0:0');
}
