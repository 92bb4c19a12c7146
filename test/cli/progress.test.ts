// cli/progress.ts: on a terminal the line is drawn, redrawn with the time taken and erased when
// the work ends (or fails); a next text replaces it at once; where the stream is no terminal
// nothing at all is written. And through the real command: `mpchsm key refresh` on an
// RSA key writes no progress into a pipe, and draws its line on a pseudo-terminal (script(1)).
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { LiveProgress, type ProgressStream } from '../../cli/progress.js';
import { mpchsmBin, repoRoot, startCluster, type TestCluster } from '../helpers/cluster.js';
import { createKey } from '../policy-cluster/helpers.js';

const CLEAR = '\r\x1b[2K';

/** A stream that records what is written to it; a terminal or not. */
function stream(isTTY: boolean): ProgressStream & { chunks: string[] } {
  const chunks: string[] = [];
  return { isTTY, chunks, write: (c: string) => (chunks.push(c), true) };
}

describe('LiveProgress', () => {
  it('on a terminal: draws the text and the seconds taken, redraws, and erases the line at the end', async () => {
    const out = stream(true);
    const answer = await new LiveProgress(out).during('mpchsm: working', sleep(700).then(() => 42), 5000);
    expect(answer).toBe(42);
    const draws = out.chunks.slice(0, -1);
    expect(draws.length).toBeGreaterThanOrEqual(2);
    for (const d of draws) expect(d).toMatch(/^\r\x1b\[2Kmpchsm: working \d+\.\d \/ 5\.0 s$/);
    expect(out.chunks.at(-1)).toBe(CLEAR);
    // Nothing after the end: the timer is stopped.
    const n = out.chunks.length;
    await sleep(600);
    expect(out.chunks.length).toBe(n);
  });

  it('erases the line also when the work fails, and the failure passes through', async () => {
    const out = stream(true);
    await expect(new LiveProgress(out).during('failing', sleep(300).then(() => Promise.reject(new Error('no')))) ).rejects.toThrow('no');
    expect(out.chunks.at(-1)).toBe(CLEAR);
  });

  it('a next text replaces the line at once, its time counted from then', async () => {
    const out = stream(true);
    const p = new LiveProgress(out);
    p.show('first');
    await sleep(1100);
    expect(out.chunks.at(-1)).toMatch(/^\r\x1b\[2Kfirst 1\.\d s$/);
    p.show('second');
    expect(out.chunks.at(-1)).toMatch(/^\r\x1b\[2Ksecond 0\.0 s$/);
    p.clear();
    expect(out.chunks.at(-1)).toBe(CLEAR);
  });

  it('writes nothing where the stream is no terminal', async () => {
    const out = stream(false);
    const p = new LiveProgress(out);
    await p.during('piped', sleep(600));
    p.show('still piped');
    await sleep(300);
    p.clear();
    expect(out.chunks).toEqual([]);
  });
});

describe('mpchsm key refresh', () => {
  let tc: TestCluster | undefined;
  afterAll(async () => {
    await tc?.destroy();
  });

  it('writes no progress into a pipe, and draws it on a terminal', async () => {
    tc = await startCluster();
    const key = await createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
    const piped = await tc.mpchsm('key', 'refresh', key, '--as', 'admin1', '--dir', tc.dir);
    expect(piped.stdout).toContain(`key ${key}: shares refreshed`);
    expect(piped.stderr).not.toMatch(/\r|\x1b|refreshing the shares/);
    // script(1) runs the command on a pseudo-terminal and copies what it wrote to its stdout.
    const command = [process.execPath, mpchsmBin, 'key', 'refresh', key, '--as', 'admin1', '--dir', tc.dir].map((a) => `'${a}'`).join(' ');
    const tty = await promisify(execFile)('script', ['-qefc', command, '/dev/null'], { cwd: repoRoot, timeout: 120_000 });
    expect(tty.stdout).toMatch(new RegExp(`\\r\\x1b\\[2Kmpchsm: refreshing the shares of ${key} at the active signers \\d+\\.\\d s`));
    expect(tty.stdout).toContain(`${CLEAR}key ${key}: shares refreshed`);
  }, 240_000);
});
