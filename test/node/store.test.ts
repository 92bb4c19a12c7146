import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempPathFor } from '../../contract/io/atomic.js';
import { SEALER_HEADER_FILE, WrongOperatorSecretError } from '../../contract/io/seal.js';
import { InvalidRecordNameError, ShareStore, StoreError, StoreIntegrityError } from '../../contract/io/sealed-store.js';

const FAST = { scrypt: { N: 2 ** 10, r: 8, p: 1 } };
const SECRET = 'operator secret for tests';
const enc = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);

let root: string;
let dir: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'mpchsm-store-'));
  dir = join(root, 'store');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function populated(): Promise<void> {
  const s = await ShareStore.init(dir, SECRET, FAST);
  await s.put('share.k1', enc('share one'));
  await s.put('share.k2', enc('share two'));
  await s.put('state.session-9', enc('round state'));
  s.close();
}

async function openErr(secret = SECRET): Promise<unknown> {
  return ShareStore.open(dir, secret).then(
    (s) => {
      s.close();
      return undefined;
    },
    (e) => e,
  );
}

describe('ShareStore', () => {
  it('put/get/list/delete, persisting across reopen', async () => {
    await populated();
    const s = await ShareStore.open(dir, SECRET);
    expect(await s.list()).toEqual(['share.k1', 'share.k2', 'state.session-9']);
    expect(text(await s.get('share.k2'))).toBe('share two');
    expect(await s.get('absent')).toBeUndefined();
    await s.put('share.k2', enc('share two, refreshed'));
    expect(text(await s.get('share.k2'))).toBe('share two, refreshed');
    expect(await s.delete('share.k1')).toBe(true);
    expect(await s.delete('share.k1')).toBe(false);
    expect(await s.has('share.k1')).toBe(false);
    expect(await s.has('share.k2')).toBe(true);
    s.close();
    const again = await ShareStore.open(dir, SECRET);
    expect(await again.list()).toEqual(['share.k2', 'state.session-9']);
    again.close();
  });

  it('stores no plaintext on disk', async () => {
    await populated();
    for (const f of await readdir(dir)) expect((await readFile(join(dir, f))).includes(Buffer.from('share one'))).toBe(false);
  });

  it('uses mode 0700 for the directory and 0600 for every file, even under a lax umask', async () => {
    const old = process.umask(0o022);
    try {
      await populated();
    } finally {
      process.umask(old);
    }
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const f of await readdir(dir)) expect([f, (await stat(join(dir, f))).mode & 0o777]).toEqual([f, 0o600]);
  });

  it('refuses to open when the directory or a record is readable by others', async () => {
    await populated();
    await chmod(dir, 0o755);
    expect(await openErr()).toMatchObject({ name: 'StoreIntegrityError', file: dir });
    await chmod(dir, 0o700);
    await chmod(join(dir, 'share.k1.rec'), 0o644);
    expect(await openErr()).toMatchObject({ file: join(dir, 'share.k1.rec') });
  });

  it('a wrong operator secret is refused before any record is read', async () => {
    await populated();
    expect(await openErr('a different operator secret')).toBeInstanceOf(WrongOperatorSecretError);
  });

  it('a flipped byte anywhere in any record refuses the store, naming the file', async () => {
    await populated();
    for (const name of ['share.k1', 'state.session-9']) {
      const file = join(dir, `${name}.rec`);
      const orig = await readFile(file);
      for (const i of [0, 5, orig.length >> 1, orig.length - 1]) {
        const bad = Buffer.from(orig);
        bad[i]! ^= 0x80;
        await writeFile(file, bad);
        const err = await openErr();
        expect(err).toBeInstanceOf(StoreIntegrityError);
        expect((err as StoreIntegrityError).file).toBe(file);
        expect((err as Error).message).toContain(file);
      }
      await writeFile(file, orig);
    }
    expect(await openErr()).toBeUndefined(); // restored: opens again
  });

  it('a truncated or empty record refuses the store', async () => {
    await populated();
    const file = join(dir, 'share.k2.rec');
    await writeFile(file, (await readFile(file)).subarray(0, 20));
    expect(await openErr()).toMatchObject({ name: 'StoreIntegrityError', file });
    await writeFile(file, '');
    expect(await openErr()).toMatchObject({ name: 'StoreIntegrityError', file });
  });

  it('a record renamed or copied onto another name does not open', async () => {
    await populated();
    await rename(join(dir, 'share.k1.rec'), join(dir, 'share.k3.rec'));
    expect(await openErr()).toMatchObject({ name: 'StoreIntegrityError', file: join(dir, 'share.k3.rec') });
    await rename(join(dir, 'share.k3.rec'), join(dir, 'share.k1.rec'));
    await copyFile(join(dir, 'share.k1.rec'), join(dir, 'share.k2.rec'));
    expect(await openErr()).toMatchObject({ name: 'StoreIntegrityError', file: join(dir, 'share.k2.rec') });
  });

  it('a record sealed by another store (same secret, other salt) does not open', async () => {
    await populated();
    const other = join(root, 'other');
    const s = await ShareStore.init(other, SECRET, FAST);
    await s.put('share.k1', enc('forged share'));
    s.close();
    await copyFile(join(other, 'share.k1.rec'), join(dir, 'share.k1.rec'));
    expect(await openErr()).toMatchObject({ name: 'StoreIntegrityError', file: join(dir, 'share.k1.rec') });
  });

  it('get() also detects tampering after open', async () => {
    await populated();
    const s = await ShareStore.open(dir, SECRET);
    const file = join(dir, 'share.k1.rec');
    const bad = await readFile(file);
    bad[bad.length - 3]! ^= 1;
    await writeFile(file, bad);
    await expect(s.get('share.k1')).rejects.toMatchObject({ name: 'StoreIntegrityError', file });
    s.close();
  });

  it('leftover temp files from a killed writer are removed and never read as records', async () => {
    await populated();
    // A writer killed after writing its temp file but before the rename.
    const tmp = tempPathFor(join(dir, 'share.k1.rec'));
    await writeFile(tmp, 'garbage that must never be parsed', { mode: 0o600 });
    const s = await ShareStore.open(dir, SECRET);
    expect(text(await s.get('share.k1'))).toBe('share one'); // the old content
    expect(await s.list()).toEqual(['share.k1', 'share.k2', 'state.session-9']);
    expect((await readdir(dir)).some((f) => f.endsWith('.tmp'))).toBe(false);
    s.close();
  });

  it('unexpected entries and symlinks refuse the store', async () => {
    await populated();
    await writeFile(join(dir, 'notes.txt'), 'x', { mode: 0o600 });
    expect(await openErr()).toMatchObject({ name: 'StoreIntegrityError', file: join(dir, 'notes.txt') });
    await rm(join(dir, 'notes.txt'));
    await mkdir(join(dir, 'sub.rec'));
    expect(await openErr()).toMatchObject({ name: 'StoreIntegrityError', file: join(dir, 'sub.rec') });
    await rm(join(dir, 'sub.rec'), { recursive: true });
    await writeFile(join(root, 'elsewhere'), 'x', { mode: 0o600 });
    await symlink(join(root, 'elsewhere'), join(dir, 'share.k9.rec'));
    expect(await openErr()).toMatchObject({ name: 'StoreIntegrityError', file: join(dir, 'share.k9.rec') });
  });

  it('a missing sealer header is an integrity failure naming it', async () => {
    await populated();
    await rm(join(dir, SEALER_HEADER_FILE));
    expect(await openErr()).toMatchObject({ name: 'StoreIntegrityError', file: join(dir, SEALER_HEADER_FILE) });
  });

  it('validates record names (no traversal, no hidden or temp names)', async () => {
    const s = await ShareStore.init(dir, SECRET, FAST);
    for (const bad of ['', '../x', 'a/b', '.hidden', 'UPPER', 'a\0b', '-x', 'x'.repeat(129), '..']) {
      await expect(s.put(bad, enc('x'))).rejects.toBeInstanceOf(InvalidRecordNameError);
      await expect(s.get(bad)).rejects.toBeInstanceOf(InvalidRecordNameError);
    }
    expect(await readdir(dir)).toEqual([SEALER_HEADER_FILE]);
    s.close();
  });

  it('init refuses a non-empty directory', async () => {
    await populated();
    await expect(ShareStore.init(dir, SECRET, FAST)).rejects.toBeInstanceOf(StoreError);
  });

  it('init tightens an existing empty directory to 0700', async () => {
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    (await ShareStore.init(dir, SECRET, FAST)).close();
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it('read-only: beside a running owner, its temp files are left alone and writes are refused', async () => {
    await populated();
    const tmp = tempPathFor(join(dir, 'share.k1.rec'));
    await writeFile(tmp, 'an owner\'s write in flight', { mode: 0o600 });
    const s = await ShareStore.open(dir, SECRET, { readOnly: true });
    expect(text(await s.get('share.k1'))).toBe('share one');
    await expect(s.put('share.k3', enc('x'))).rejects.toThrow(StoreError);
    await expect(s.delete('share.k1')).rejects.toThrow(/read-only/);
    s.close();
    expect(await readdir(dir)).toContain(tmp.slice(dir.length + 1));
  });

  it('overlapping writes of one record land in the order they were made', async () => {
    const s = await ShareStore.init(dir, SECRET, FAST);
    for (let round = 0; round < 5; round++) {
      const writes = Array.from({ length: 20 }, (_, i) => (i % 7 === 6 ? s.delete('ledger') : s.put('ledger', enc(`round ${round} write ${i}`))));
      await Promise.all(writes);
      expect(text(await s.get('ledger')), `round ${round}`).toBe(`round ${round} write 19`);
    }
    s.close();
  });
});
