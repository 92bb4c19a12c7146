// CPU time (user + system) consumed by other processes, from Linux's /proc/PID/stat: how the
// cost of one signature splits between the client, the gateway and the signers; and a process's
// children (nginx's workers).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU milliseconds `pid` has used so far, or undefined where /proc is unavailable. */
export function cpuMsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at state, field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return Number.isFinite(utime + stime) ? ((utime + stime) * 1000) / clockTicks() : undefined;
  } catch {
    return undefined;
  }
}

/** The processes whose parent is `pid` (nginx's workers), by scanning /proc; [] where it is unavailable. */
export function childrenOf(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  return entries.map(Number).filter((child) => {
    try {
      const stat = readFileSync(`/proc/${child}/stat`, 'utf8');
      // After the command name: state, then the parent's pid.
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
    } catch {
      return false;
    }
  });
}

/** Snapshots CPU time of named processes; `since` gives each one's use since the snapshot. */
export class CpuMeter {
  private readonly start: Map<string, number>;

  constructor(private readonly pids: Readonly<Record<string, number>>) {
    this.start = new Map(Object.entries(pids).flatMap(([name, pid]) => {
      const ms = cpuMsOf(pid);
      return ms === undefined ? [] : [[name, ms] as const];
    }));
  }

  since(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, before] of this.start) {
      const now = cpuMsOf(this.pids[name]!);
      if (now !== undefined) out[name] = now - before;
    }
    return out;
  }
}
