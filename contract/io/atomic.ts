// Crash-safe file replacement. A reader sees either the old content or the new, never a torn
// file: the data goes to a temporary file in the same directory (same file system, so the
// rename is atomic), is fsynced, renamed over the target, and the directory is fsynced so the
// rename itself survives a power cut. A process killed half-way leaves only a temp file,
// recognisable by its name, which readers must skip and may delete.

import { randomBytes } from 'node:crypto';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const TEMP_RE = /^\..+\.[0-9a-f]{16}\.tmp$/;

/** True for names produced by `tempPathFor` (hidden, random suffix, `.tmp`). */
export const isTempName = (name: string): boolean => TEMP_RE.test(name);

/** A fresh temporary path next to `path`, e.g. `dir/.name.0123456789abcdef.tmp`. */
export const tempPathFor = (path: string): string =>
  join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);

/** Flushes a directory's entries (creations, renames, unlinks) to disk. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Atomically replaces `path` with `data`; the file gets exactly `mode` (default 0600). */
export async function writeFileAtomic(path: string, data: Uint8Array, mode = 0o600): Promise<void> {
  const tmp = tempPathFor(path);
  // 'wx' = O_CREAT|O_EXCL: never follow or reuse something an attacker planted at that name.
  const fh = await open(tmp, 'wx', mode);
  let renamed = false;
  try {
    await fh.chmod(mode); // the umask may have narrowed the mode given to open()
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
    renamed = true;
    await fsyncDir(dirname(path));
  } finally {
    if (!renamed) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    }
  }
}

/** Deletes leftover temp files in `dir` (from killed writers); returns the names removed. */
export async function removeTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir)) {
    if (!isTempName(name)) continue;
    await unlink(join(dir, name));
    removed.push(name);
  }
  if (removed.length > 0) await fsyncDir(dir);
  return removed;
}
