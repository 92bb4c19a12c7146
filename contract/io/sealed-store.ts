// The signer's sealed record store: key shares, protocol state between rounds, identity
// secrets. One directory (mode 0700) holding `sealer.json` and one file per record,
// `<name>.rec` (mode 0600), each sealed with the record's name as associated data so a file
// copied or renamed onto another record's name does not open. Every write is atomic.
//
// Opening the store checks the directory and opens every record; any failure refuses the
// whole store with a `StoreIntegrityError` naming the file, so a signer never starts on
// damaged or substituted state. A store may also be opened read-only beside the process that owns
// it (`mpchsm signer backup` next to a running signer): it then leaves that process's temp files
// alone and refuses to write. Not covered (needs a monotonic counter, e.g. a TPM's): rolling
// a record, or the whole directory, back to an older copy sealed under the same key.

import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyedSerialQueue } from '../serial-queue.js';
import { fsyncDir, isTempName, removeTempFiles, writeFileAtomic } from './atomic.js';
import {
  createSoftwareSealer,
  openSoftwareSealer,
  SEALER_HEADER_FILE,
  SealerError,
  type ScryptParams,
  type Sealer,
} from './seal.js';

export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    /** The file or directory at fault. */
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

/** The store (or one of its files) cannot be trusted; the signer must not start on it. */
export class StoreIntegrityError extends StoreError {
  override name = 'StoreIntegrityError';
}

export class InvalidRecordNameError extends Error {
  override name = 'InvalidRecordNameError';
}

// Lower case only: on case-insensitive file systems `A` and `a` would be one file. No '/'
// (no traversal), no leading '.' (reserved for temp files).
const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,127}$/;
const SUFFIX = '.rec';
const POSIX = process.platform !== 'win32';

export function assertRecordName(name: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name))
    throw new InvalidRecordNameError(`invalid record name ${JSON.stringify(name)}: use 1-128 of [a-z0-9._-], not starting with . _ or -`);
}

const recordAad = (name: string): Uint8Array => new TextEncoder().encode(`mpchsm/store/record/v1\0${name}`);

/**
 * Reads a regular file without following a symlink planted in its place. Synchronous: a record
 * is a few KB, and every signature reads its key's, so four thread-pool round trips (~200 µs of
 * CPU here) would cost more than the read itself (~20 µs). A hung disk now stalls the process,
 * not one request: a signer needs its disk for every release (audit, replay ledger) anyway.
 */
function readNoFollow(path: string): Uint8Array {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    if (!fstatSync(fd).isFile()) throw new StoreIntegrityError(path, 'is not a regular file');
    return new Uint8Array(readFileSync(fd));
  } finally {
    closeSync(fd);
  }
}

async function checkPrivate(path: string, dir: boolean): Promise<void> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) throw new StoreIntegrityError(path, 'is a symbolic link');
  if (dir ? !st.isDirectory() : !st.isFile()) throw new StoreIntegrityError(path, `is not a ${dir ? 'directory' : 'regular file'}`);
  if (POSIX && (st.mode & 0o077) !== 0)
    throw new StoreIntegrityError(path, `is accessible to group or others (mode 0${(st.mode & 0o777).toString(8)}, expected 0${dir ? 700 : 600})`);
}

export class ShareStore {
  private readonly writes = new KeyedSerialQueue();

  private constructor(
    readonly dir: string,
    private readonly sealer: Sealer,
    private readonly readOnly = false,
  ) {}

  /** How this store is sealed (the sealer's kind, seal.ts): what a party's posture report names. */
  get sealerKind(): string {
    return this.sealer.kind;
  }

  /** Creates a store in `dir` (made 0700; must be absent or empty); `scrypt`, the KDF cost, is seal.ts's default unless given. */
  static async init(dir: string, secret: string | Uint8Array, opts: { scrypt?: ScryptParams } = {}): Promise<ShareStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if ((await readdir(dir)).length > 0) throw new StoreError(dir, 'is not empty; refusing to create a store over it');
    if ((await lstat(dir)).isSymbolicLink()) throw new StoreIntegrityError(dir, 'is a symbolic link');
    await chmod(dir, 0o700); // mkdir's mode is narrowed by the umask and ignored if dir existed
    await checkPrivate(dir, true);
    const sealer = await createSoftwareSealer(dir, secret, opts.scrypt);
    return new ShareStore(dir, sealer);
  }

  /**
   * Opens an existing software-sealed store and verifies every record. `readOnly`: the store may
   * be in use by its owner, whose in-flight temp files are skipped, not removed; writes are refused.
   */
  static async open(dir: string, secret: string | Uint8Array, opts: { readOnly?: boolean } = {}): Promise<ShareStore> {
    await checkPrivate(dir, true);
    let sealer: Sealer;
    try {
      sealer = await openSoftwareSealer(dir, secret);
    } catch (e) {
      if (e instanceof SealerError && e.code === 'bad-header') throw new StoreIntegrityError(join(dir, SEALER_HEADER_FILE), e.message);
      throw e;
    }
    return ShareStore.openWith(dir, sealer, opts);
  }

  /** Opens a store with an already unlocked sealer (any provider) and verifies every record. */
  static async openWith(dir: string, sealer: Sealer, opts: { readOnly?: boolean } = {}): Promise<ShareStore> {
    const readOnly = opts.readOnly === true;
    const store = new ShareStore(dir, sealer, readOnly);
    try {
      await checkPrivate(dir, true);
      if (!readOnly) await removeTempFiles(dir);
      for (const entry of await readdir(dir)) {
        const path = join(dir, entry);
        if (readOnly && isTempName(entry)) continue;
        if (entry === SEALER_HEADER_FILE) {
          await checkPrivate(path, false);
          continue;
        }
        const name = entry.endsWith(SUFFIX) ? entry.slice(0, -SUFFIX.length) : '';
        if (!NAME_RE.test(name)) throw new StoreIntegrityError(path, 'unexpected entry in the store directory');
        try {
          await checkPrivate(path, false);
        } catch (e) {
          // Beside a running owner a record may go between the listing and here (a key deleted).
          if (readOnly && (e as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw e;
        }
        (await store.read(name, path))?.fill(0);
      }
    } catch (e) {
      sealer.close();
      throw e;
    }
    return store;
  }

  private pathOf(name: string): string {
    assertRecordName(name);
    return join(this.dir, name + SUFFIX);
  }

  private async read(name: string, path: string): Promise<Uint8Array | undefined> {
    let sealed: Uint8Array;
    try {
      sealed = readNoFollow(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP') throw new StoreIntegrityError(path, 'is a symbolic link');
      throw e;
    }
    try {
      return await this.sealer.open(sealed, recordAad(name));
    } catch (e) {
      if (e instanceof SealerError && e.code === 'tampered')
        throw new StoreIntegrityError(path, `record "${name}" failed its integrity check (altered, truncated, or moved from another name)`);
      throw e;
    }
  }

  /**
   * Seals and atomically writes a record, replacing any previous value. Writes of one record land
   * in the order they were called: two overlapping puts could otherwise rename in either order and
   * leave the older value on disk.
   */
  async put(name: string, data: Uint8Array): Promise<void> {
    this.writable();
    const path = this.pathOf(name);
    return this.writes.run(name, async () => writeFileAtomic(path, await this.sealer.seal(data, recordAad(name)), 0o600));
  }

  /** The record's plaintext (the caller should wipe it when done), or undefined if absent. */
  async get(name: string): Promise<Uint8Array | undefined> {
    return this.read(name, this.pathOf(name));
  }

  async has(name: string): Promise<boolean> {
    try {
      await lstat(this.pathOf(name));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** Record names, sorted. */
  async list(): Promise<string[]> {
    return (await readdir(this.dir))
      .filter((e) => e.endsWith(SUFFIX))
      .map((e) => e.slice(0, -SUFFIX.length))
      .filter((n) => NAME_RE.test(n))
      .sort();
  }

  /** Removes a record; returns whether it existed. */
  async delete(name: string): Promise<boolean> {
    this.writable();
    const path = this.pathOf(name);
    return this.writes.run(name, async () => {
      try {
        await unlink(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw e;
      }
      await fsyncDir(this.dir);
      return true;
    });
  }

  private writable(): void {
    if (this.readOnly) throw new StoreError(this.dir, 'is open read-only here; refusing to write');
  }

  /** Wipes the sealing key; the store is unusable afterwards. */
  close(): void {
    this.sealer.close();
  }
}
