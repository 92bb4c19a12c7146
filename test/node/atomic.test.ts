import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTempName, removeTempFiles, tempPathFor, writeFileAtomic } from '../../contract/io/atomic.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mpchsm-atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('creates and replaces a file with mode 0600 and leaves no temp file', async () => {
    const p = join(dir, 'f');
    await writeFileAtomic(p, new TextEncoder().encode('one'));
    await writeFileAtomic(p, new TextEncoder().encode('two'));
    expect(await readFile(p, 'utf8')).toBe('two');
    expect((await stat(p)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['f']);
  });

  it('honours an explicit mode', async () => {
    const p = join(dir, 'pub.json');
    await writeFileAtomic(p, new Uint8Array([1]), 0o644);
    expect((await stat(p)).mode & 0o777).toBe(0o644);
  });

  it('a writer killed before the rename leaves the old content, and its temp file is recognisable', async () => {
    const p = join(dir, 'f');
    await writeFileAtomic(p, new TextEncoder().encode('old'));
    const tmp = tempPathFor(p); // what a killed writer leaves behind
    await writeFile(tmp, 'new, half writ');
    expect(await readFile(p, 'utf8')).toBe('old');
    expect(isTempName(tmp.slice(dir.length + 1))).toBe(true);
    expect(await removeTempFiles(dir)).toHaveLength(1);
    expect(await readdir(dir)).toEqual(['f']);
  });

  it('temp names are not confused with ordinary names', () => {
    for (const n of ['f', 'share.k1.rec', '.hidden', 'x.tmp', '.x.tmp', '.x.0123456789abcdeg.tmp']) expect(isTempName(n)).toBe(false);
    expect(isTempName('.share.rec.0123456789abcdef.tmp')).toBe(true);
  });

  it('fails cleanly (no temp file) when the directory does not exist', async () => {
    await expect(writeFileAtomic(join(dir, 'missing', 'f'), new Uint8Array([1]))).rejects.toThrow();
    expect(await readdir(dir)).toEqual([]);
  });
});
