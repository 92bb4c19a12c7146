// A party's append-only audit log (one JSON line per entry, see entry.ts and chain.ts).
//
// Durability: `append` resolves only after the entry's bytes are written and fdatasync'ed, so
// an acknowledged entry survives a crash or power cut. Appends that arrive while a write is in
// flight are written together with one fdatasync (group commit). A crash can leave at most a
// torn final line, never a torn entry in the middle: on open that line is cut off, its bytes
// saved next to the log, and a `recovered` entry records the fact.
//
// Signing: a checkpoint entry signs the head at least every `checkpointEvery` entries (the
// count is fixed at creation and recorded in the `open` entry, so the verifier can tell a
// removed checkpoint), every `checkpointIntervalMs` while entries are unsigned, and on close.
// The log is created with its `open` entry already signed, so a log rewritten from scratch
// cannot pass as the party's.
//
// One writer per file: the party's own process. The log holds a copy of the signing key and
// wipes it on close.

import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { link, open, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ed25519PublicKey, forgetSecretKey } from '../contract/identity/curve25519.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { GENESIS_PREV, lineHash, signHead } from './chain.js';
import { AUDIT_VERSION, AuditError, parseEntry, toAuditEvent, toAuditIntent, type AuditEventInput, type AuditIntentInput, type Head, type LogEntry, type SignedHead } from './entry.js';

/** The party's identity as the log needs it; `IdentitySecrets` (contract/identity/identity.ts) fits. */
export interface AuditSigner {
  readonly fingerprint: string;
  readonly signSecretKey: Uint8Array;
  readonly public: { readonly name: string; readonly signPublicKey: string };
}

export interface AuditLogOptions {
  /** Entries between signed checkpoints, fixed when the log is created (default 64). */
  checkpointEvery?: number;
  /** Sign unsigned entries after this long (default 10 s; 0: only by count and on close). */
  checkpointIntervalMs?: number;
  /** Clock for entry times (tests). */
  now?: () => Date;
}

const NL = Buffer.from('\n');
const DEFAULT_EVERY = 64;
const DEFAULT_INTERVAL_MS = 10_000;
const TAIL_CHUNK = 64 * 1024;

type Fields = Record<string, unknown>;
interface Party {
  name: string;
  fingerprint: string;
  key: Uint8Array;
}
interface Pending {
  /** null: a checkpoint request. */
  fields: Fields | null;
  resolve: (r: Head & Partial<SignedHead>) => void;
  reject: (e: Error) => void;
}

export class AuditLog {
  private readonly queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private broken: Error | undefined;

  private constructor(
    readonly file: string,
    private readonly fh: FileHandle,
    private readonly party: Party,
    private readonly every: number,
    private readonly now: () => Date,
    /** Durable state: bytes, last entry, entries since the last checkpoint, last signed head. */
    private size: number,
    private last: Head,
    private since: number,
    private signed: SignedHead | undefined,
  ) {}

  /**
   * Opens `file`, creating it (with a signed `open` entry) if absent. A torn final line is
   * cut off and recorded before this resolves. Refuses a log that belongs to another key.
   */
  static async open(file: string, signer: AuditSigner, opts: AuditLogOptions = {}): Promise<AuditLog> {
    const every = opts.checkpointEvery ?? DEFAULT_EVERY;
    if (!Number.isInteger(every) || every < 1 || every > 1_000_000) throw new AuditError('invalid-event', 'checkpointEvery must be 1..1000000');
    const now = opts.now ?? (() => new Date());
    if (bytesToHex(ed25519PublicKey(signer.signSecretKey)) !== signer.public.signPublicKey)
      throw new AuditError('wrong-party', 'the signing key does not match the identity given');
    const party: Party = { name: signer.public.name, fingerprint: signer.fingerprint, key: Uint8Array.from(signer.signSecretKey) };

    let fh: FileHandle;
    try {
      fh = await open(file, 'r+');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await create(file, party, signer.public.signPublicKey, every, now());
      fh = await open(file, 'r+');
    }
    try {
      const log = await AuditLog.resume(file, fh, party, now);
      log.startTimer(opts.checkpointIntervalMs ?? DEFAULT_INTERVAL_MS);
      return log;
    } catch (e) {
      await fh.close();
      forgetSecretKey(party.key);
      party.key.fill(0);
      throw e;
    }
  }

  /** The last durable entry. Signers return this (for their own entry) to the gateway. */
  head(): Head {
    return { ...this.last };
  }

  /** The last head this party signed. */
  signedHead(): SignedHead | undefined {
    return this.signed && { ...this.signed };
  }

  /**
   * Validates `event` (refusing secret-looking fields), appends it durably and resolves with
   * its head: its seq and the hash of its line.
   */
  async append(event: AuditEventInput): Promise<Head> {
    const e = toAuditEvent(event, this.now());
    const { seq, hash } = await this.enqueue({ kind: 'event', ...e });
    return { seq, hash };
  }

  /**
   * Appends an intent (entry.ts): what the party is about to ask others under `request`,
   * durable before it asks. Its outcome is a later `append` with the same `request`.
   */
  async intend(intent: AuditIntentInput): Promise<Head> {
    const { seq, hash } = await this.enqueue({ kind: 'intent', ...toAuditIntent(intent) });
    return { seq, hash };
  }

  /** Signs the current head now (a no-op when it is already signed). */
  async checkpoint(): Promise<SignedHead> {
    return (await this.enqueue(null)) as SignedHead;
  }

  /** Signs any unsigned entries, closes the file and wipes the key copy. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.timer);
    try {
      if (!this.broken) await this.enqueue(null);
    } finally {
      this.closed = true;
      await this.flushing;
      await this.fh.close();
      forgetSecretKey(this.party.key);
      this.party.key.fill(0);
    }
  }

  private startTimer(ms: number): void {
    if (ms <= 0) return;
    this.timer = setInterval(() => {
      if (this.since > 0 && !this.closed && !this.broken) this.enqueue(null).catch(() => undefined);
    }, ms);
    this.timer.unref();
  }

  private enqueue(fields: Fields | null): Promise<Head & Partial<SignedHead>> {
    if (this.closed) return Promise.reject(new AuditError('closed', `audit log ${this.file} is closed`));
    if (this.broken) return Promise.reject(new AuditError('io', `audit log ${this.file} is unusable after a failed write: ${this.broken.message}`));
    return new Promise((resolve, reject) => {
      this.queue.push({ fields, resolve, reject });
      this.flushing ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        await this.writeBatch(batch).catch((e: Error) => batch.forEach((p) => p.reject(e)));
      }
    } finally {
      // In the same tick as the empty-queue check, so no append can be left waiting.
      this.flushing = undefined;
    }
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    if (this.broken) {
      for (const p of batch) p.reject(new AuditError('io', `audit log ${this.file} is unusable: ${this.broken.message}`));
      return;
    }
    // Build every line of the batch against a scratch copy of the state; commit after fsync.
    let { last, since, signed } = this;
    const chunks: Buffer[] = [];
    const add = (fields: Fields) => {
      const seq = last.seq + 1;
      const bytes = Buffer.from(JSON.stringify({ v: AUDIT_VERSION, seq, prev: last.hash, time: this.now().toISOString(), ...fields }));
      chunks.push(bytes, NL);
      last = { seq, hash: lineHash(bytes) };
    };
    const checkpoint = () => {
      const head = last;
      const sig = signHead(head, this.party.fingerprint, this.party.key);
      add({ kind: 'checkpoint', sig });
      since = 0;
      signed = { ...head, sig };
    };
    const results: (Head & Partial<SignedHead>)[] = [];
    for (const p of batch) {
      if (p.fields === null) {
        if (since > 0 || !signed) checkpoint();
        results.push(signed!);
        continue;
      }
      if (since >= this.every) checkpoint();
      add(p.fields);
      since++;
      results.push(last);
      if (since >= this.every) checkpoint();
    }
    const data = Buffer.concat(chunks);
    try {
      writeAt(this.fh, data, this.size);
      await this.fh.datasync();
    } catch (e) {
      // Take back a partial write so the file stays a valid chain; if even that fails, stop.
      await this.fh
        .truncate(this.size)
        .then(() => this.fh.datasync())
        .catch(() => (this.broken = e as Error));
      const err = new AuditError('io', `audit log ${this.file}: write failed: ${(e as Error).message}`);
      for (const p of batch) p.reject(err);
      return;
    }
    this.size += data.length;
    this.last = last;
    this.since = since;
    this.signed = signed;
    batch.forEach((p, i) => p.resolve(results[i]!));
  }

  /** Opens an existing log: checks whose it is, cuts a torn tail, restores the writer's state. */
  private static async resume(file: string, fh: FileHandle, party: Party, now: () => Date): Promise<AuditLog> {
    const { size } = await fh.stat();
    const headBuf = Buffer.alloc(Math.min(size, 4096));
    await fh.read(headBuf, 0, headBuf.length, 0);
    const firstNl = headBuf.indexOf(0x0a);
    const first = firstNl < 0 ? undefined : parseEntry(headBuf.subarray(0, firstNl).toString('utf8'));
    if (!first || !('entry' in first) || first.entry.kind !== 'open')
      throw new AuditError('corrupt', `${file} does not start with an audit log's open entry; refusing to append to it`);
    if (first.entry.fingerprint !== party.fingerprint)
      throw new AuditError('wrong-party', `${file} belongs to ${first.entry.party} (${first.entry.fingerprint.slice(0, 16)}…), not to this identity`);
    const every = first.entry.checkpointEvery;

    const { lines, tornAt } = await readTail(fh, size);
    let keep = tornAt;
    // An acknowledged entry was fsynced whole, so a final line that does not parse is torn too.
    if (lines.length > 1 && lines.at(-1)!.entry === undefined) keep = lines.pop()!.offset;
    const lastLine = lines.at(-1);
    if (!lastLine?.entry) throw new AuditError('corrupt', `${file} has no valid final entry`);

    let cpIndex = lines.length - 1;
    while (cpIndex >= 0 && lines[cpIndex]!.entry?.kind !== 'checkpoint') cpIndex--;
    const cp = lines[cpIndex]?.entry;
    const signed = cp?.kind === 'checkpoint' ? { seq: cp.seq - 1, hash: cp.prev, sig: cp.sig } : undefined;
    const since = lines.length - 1 - cpIndex;

    let recovered: Fields | undefined;
    if (keep < size) {
      const dropped = Buffer.alloc(size - keep);
      await fh.read(dropped, 0, dropped.length, keep);
      // Keep the cut bytes for forensics before they leave the log.
      const savedAs = `${file}.torn-${lastLine.entry.seq + 1}-${now().getTime()}`;
      const side = await open(savedAs, 'wx', 0o640);
      try {
        await side.writeFile(dropped);
        await side.sync();
      } finally {
        await side.close();
      }
      await fsyncDir(dirname(file));
      await fh.truncate(keep);
      await fh.datasync();
      recovered = { kind: 'recovered', droppedBytes: dropped.length, droppedSha256: lineHash(dropped), savedAs: basename(savedAs) };
    }
    const log = new AuditLog(file, fh, party, every, now, keep, { seq: lastLine.entry.seq, hash: lineHash(lastLine.bytes) }, since, signed);
    if (recovered) await log.enqueue(recovered);
    return log;
  }
}

/**
 * Synchronous: a batch of lines lands in the page cache in microseconds, where a thread-pool round
 * trip costs ~50 µs of CPU per append; only the fdatasync after it is worth leaving the event loop.
 */
function writeAt(fh: FileHandle, data: Buffer, position: number): void {
  for (let off = 0; off < data.length; ) off += writeSync(fh.fd, data, off, data.length - off, position + off);
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes the `open` entry and its checkpoint to a temp file and links it into place. */
async function create(file: string, party: Party, signPublicKey: string, every: number, now: Date): Promise<void> {
  const time = now.toISOString();
  const first = Buffer.from(
    JSON.stringify({ v: AUDIT_VERSION, seq: 0, prev: GENESIS_PREV, time, kind: 'open', party: party.name, fingerprint: party.fingerprint, signPublicKey, checkpointEvery: every }),
  );
  const head = { seq: 0, hash: lineHash(first) };
  const second = Buffer.from(JSON.stringify({ v: AUDIT_VERSION, seq: 1, prev: head.hash, time, kind: 'checkpoint', sig: signHead(head, party.fingerprint, party.key) }));
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o640);
  try {
    await fh.writeFile(Buffer.concat([first, NL, second, NL]));
    await fh.sync();
  } finally {
    await fh.close();
  }
  // link() rather than rename(): never replaces a log another process created meanwhile.
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    await unlink(tmp);
  }
  await fsyncDir(dirname(file));
}

interface TailLine {
  offset: number;
  bytes: Buffer;
  entry: LogEntry | undefined;
}

/**
 * Reads the end of the file: the complete lines back to the last checkpoint (or the start),
 * and where a torn final line begins (`size` when there is none).
 */
async function readTail(fh: FileHandle, size: number): Promise<{ lines: TailLine[]; tornAt: number }> {
  for (let chunk = TAIL_CHUNK; ; chunk *= 4) {
    const start = Math.max(0, size - chunk);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    const lastNl = buf.lastIndexOf(0x0a);
    if (lastNl < 0 && start > 0) continue;
    const lines: TailLine[] = [];
    // Before the first newline of a chunk that does not start the file, the line is partial.
    let from = start === 0 ? 0 : buf.indexOf(0x0a) + 1;
    for (let nl = buf.indexOf(0x0a, from); nl >= 0 && nl <= lastNl; nl = buf.indexOf(0x0a, from)) {
      const bytes = buf.subarray(from, nl);
      const p = parseEntry(bytes.toString('utf8'));
      lines.push({ offset: start + from, bytes, entry: 'entry' in p ? p.entry : undefined });
      from = nl + 1;
    }
    const tornAt = lastNl < 0 ? 0 : start + lastNl + 1;
    if (start === 0 || lines.slice(0, -1).some((l) => l.entry?.kind === 'checkpoint')) return { lines, tornAt };
  }
}

