import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
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
});
