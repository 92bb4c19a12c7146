import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReplayLedger } from '../../signers/node/replay-ledger.js';

describe('replay ledger', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mpchsm-replays-'));
    file = path.join(dir, 'replays.jsonl');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('remembers released requests and rate buckets across a reopen, until their windows close', async () => {
    const now = Date.now();
    const a = await ReplayLedger.open(file, now);
    await Promise.all([
      a.record('sigv4:aa', { fingerprint: 'ecdsa:s1', until: now + 60_000, nonces: ['n1'] }, { keyId: 'k1', state: { tokens: 2, at: now } }),
      a.record('p11:app:bb', { fingerprint: 'frost:s2', until: now + 1000, nonces: [] }),
    ]);
    expect(a.get('sigv4:aa', now)).toEqual({ fingerprint: 'ecdsa:s1', until: now + 60_000, nonces: ['n1'] });
    await a.close();

    const b = await ReplayLedger.open(file, now + 2000);
    expect(b.get('sigv4:aa', now + 2000)?.nonces).toEqual(['n1']);
    expect(b.get('p11:app:bb', now + 2000)).toBeUndefined();
    expect(b.bucket('k1')).toEqual({ tokens: 2, at: now });
    expect(b.get('sigv4:aa', now + 60_000)).toBeUndefined();
    await b.close();
    // Reopening compacted the file: the expired line is gone.
    expect((await readFile(file, 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('keeps a drained bucket until it is full again, though that takes longer than a minute', async () => {
    const now = Date.now();
    const a = await ReplayLedger.open(file, now);
    // burst 100 at 1 a minute, drained: full again in 100 minutes.
    await a.record('sigv4:cc', { fingerprint: 'frost:s3', until: now + 1000, nonces: [] }, { keyId: 'k1', state: { tokens: 0, at: now, fullAt: now + 100 * 60_000 } });
    await a.close();
    const later = await ReplayLedger.open(file, now + 2 * 60_000);
    expect(later.bucket('k1'), 'a restart two minutes on finds the bucket still drained').toEqual({ tokens: 0, at: now });
    await later.close();
    const full = await ReplayLedger.open(file, now + 100 * 60_000 + 1);
    expect(full.bucket('k1'), 'once full, it may be forgotten').toBeUndefined();
    await full.close();
  });

  it('drops a torn last line (a crash mid-write was never acknowledged)', async () => {
    const now = Date.now();
    const a = await ReplayLedger.open(file, now);
    await a.record('sigv4:cc', { fingerprint: 'f', until: now + 60_000, nonces: [] });
    await a.close();
    await appendFile(file, '{"id":"sigv4:dd","fingerp');
    const b = await ReplayLedger.open(file, now);
    expect(b.get('sigv4:cc', now)).toBeDefined();
    expect(b.get('sigv4:dd', now)).toBeUndefined();
    await b.close();
  });

  it('refuses a damaged line that is not the last one, naming the file and line, and leaves the file as it was', async () => {
    const now = Date.now();
    const a = await ReplayLedger.open(file, now);
    await a.record('sigv4:ee', { fingerprint: 'f', until: now + 60_000, nonces: [] });
    await a.close();
    await appendFile(file, '{"id":"sigv4:ff"#\n');
    const damaged = await readFile(file, 'utf8');
    await expect(ReplayLedger.open(file, now)).rejects.toThrow(new RegExp(`^${file}: line 2 is damaged \\(`));
    expect(await readFile(file, 'utf8')).toBe(damaged);
  });

  it('while open, rewrites itself from the live lines once it has grown: the file stays bounded, nothing live is lost', async () => {
    const ledger = await ReplayLedger.open(file, Date.now(), 4096);
    const line = (i: number, until: number) => ledger.record(`sigv4:${i.toString().padStart(6, '0')}`, { fingerprint: `frost:${'ab'.repeat(20)}`, until, nonces: [] });
    // A bucket drawn on by a request whose window closes: the bucket outlives it.
    await ledger.record('sigv4:bucket', { fingerprint: 'f', until: Date.now() + 100, nonces: [] }, { keyId: 'k1', state: { tokens: 3, at: Date.now() } });
    for (let i = 0; i < 40; i++) await line(i, Date.now() + 100);
    await sleep(150);
    let largest = 0;
    // 400 lines of about 110 bytes: 44 KB appended in all, far past 4096 bytes.
    for (let i = 40; i < 440; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => line(i + j, i + j < 400 ? Date.now() + 100 : Date.now() + 60_000)));
      if (i < 400) await sleep(110);
      largest = Math.max(largest, (await stat(file)).size);
    }
    expect(largest).toBeLessThan(3 * 4096);
    for (let i = 400; i < 440; i++) expect(ledger.get(`sigv4:${i.toString().padStart(6, '0')}`, Date.now())).toBeDefined();
    await ledger.close();

    const reopened = await ReplayLedger.open(file);
    for (let i = 400; i < 440; i++) expect(reopened.get(`sigv4:${i.toString().padStart(6, '0')}`, Date.now()), `line ${i}`).toBeDefined();
    expect(reopened.get('sigv4:000000', Date.now())).toBeUndefined();
    expect(reopened.bucket('k1')).toMatchObject({ tokens: 3 });
    await reopened.close();
    expect((await readFile(file, 'utf8')).trim().split('\n')).toHaveLength(41);
  });

  it('after a write the disk cut short, the next write rewrites the file, so it still opens (root: mounts a tmpfs)', async (ctx) => {
    if (process.getuid?.() !== 0) return ctx.skip('not root: mounting the small filesystem needs root (CI runs as root)');
    const mount = path.join(dir, 'small');
    await mkdir(mount);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mount], { stdio: 'pipe' });
    } catch (e) {
      return ctx.skip(`mount -t tmpfs failed (${(e as Error).message.split('\n')[0]}): no small filesystem to fill here`);
    }
    try {
      const at = path.join(mount, 'replays.jsonl');
      const now = Date.now();
      const ledger = await ReplayLedger.open(at, now);
      await ledger.record('sigv4:first', { fingerprint: 'f', until: now + 60_000, nonces: [] });
      // Fill the rest of the filesystem, then record a line longer than what is left of the file's page.
      const filler = path.join(mount, 'filler');
      const fd = openSync(filler, 'w');
      try {
        for (;;) writeSync(fd, Buffer.alloc(1024));
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
      } finally {
        closeSync(fd);
      }
      const long = Array.from({ length: 64 }, (_, i) => `${i}`.padStart(100, 'n'));
      await expect(ledger.record('sigv4:torn', { fingerprint: 'f', until: now + 60_000, nonces: long })).rejects.toThrow(/short write|ENOSPC/);
      await unlink(filler);
      await ledger.record('sigv4:after', { fingerprint: 'f', until: now + 60_000, nonces: [] });
      await ledger.close();
      const reopened = await ReplayLedger.open(at, now);
      expect(reopened.get('sigv4:first', now)).toBeDefined();
      expect(reopened.get('sigv4:after', now)).toBeDefined();
      await reopened.close();
    } finally {
      execFileSync('umount', ['-l', mount]);
    }
  });
});
