// A pid file outlives its process: after a reboot, or once pids wrap round (pid_max is 32768
// here), the pid it names may be an unrelated process. Stopping or checking a party must then
// leave that process alone and take the party for stopped; a process that is the party (its
// command line names the party's directory) is still found and stopped.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { down } from '../../cli/running.js';
import { layout } from '../../cli/layout.js';
import { runningPid, stopParty } from '../../cli/party-process.js';
import { isAlive } from '../../cli/processes.js';
import { stopSwtpm, swtpmPid } from '../../cli/swtpm.js';

const children: ChildProcess[] = [];
const dirs: string[] = [];

/** A long-lived node process whose command line ends with `args`. */
function idle(...args: string[]): number {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', ...args], { stdio: 'ignore' });
  children.push(child);
  return child.pid!;
}

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'mpchsm-stale-pid-'));
  dirs.push(d);
  return d;
}

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('a pid file naming a process that is not the party', () => {
  it('is not taken for a running signer, and stopping the signer leaves that process alone', async () => {
    const dir = tempDir();
    const stranger = idle('--dir', path.join(dir, 'elsewhere'));
    writeFileSync(path.join(dir, 'signer.pid'), `${stranger}\n`);
    expect(runningPid('signer', dir)).toBeUndefined();
    expect(await stopParty('signer', dir)).toBe(false);
    expect(isAlive(stranger)).toBe(true);
  });

  it('still finds and stops the party itself', async () => {
    const dir = tempDir();
    const party = idle('run', '--dir', dir);
    writeFileSync(path.join(dir, 'signer.pid'), `${party}\n`);
    expect(runningPid('signer', dir)).toBe(party);
    expect(await stopParty('signer', dir)).toBe(true);
    expect(isAlive(party)).toBe(false);
  });

  it("is not taken for a signer's software TPM", async () => {
    const state = tempDir();
    const stranger = idle();
    writeFileSync(path.join(state, 'swtpm.pid'), `${stranger}\n`);
    expect(swtpmPid(state)).toBeUndefined();
    expect(await stopSwtpm(state)).toBe(false);
    expect(isAlive(stranger)).toBe(true);
  });

  it('survives `mpchsm down` of a cluster that is no longer running, while the parties that do run stop', async () => {
    const L = layout(tempDir());
    mkdirSync(L.signer('signer2'), { recursive: true });
    const stranger = idle();
    const signer2 = idle('run', '--dir', L.signer('signer2'));
    const cluster = {
      gateway: { pid: stranger, url: 'http://127.0.0.1:1' },
      signers: [
        { name: 'signer1', pid: stranger, url: 'https://127.0.0.1:2' },
        { name: 'signer2', pid: signer2, url: 'https://127.0.0.1:3' },
      ],
      threshold: 2,
      signers_total: 2,
    };
    writeFileSync(L.clusterJson, JSON.stringify(cluster));
    await down(L.root);
    expect(isAlive(stranger)).toBe(true);
    expect(isAlive(signer2)).toBe(false);
  });
});
