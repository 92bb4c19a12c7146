// What a signer remembers of the requests it released for, and of each key's rate bucket,
// across restarts: a repeat of a request within its validity window is known as a repeat after
// a crash too (served again, counted once toward rate limits and approvals), and a restart does
// not refill a drained bucket. Nothing here is secret (request signatures, nonces of approvals
// already spent, token counts), so it is a plain append-only file beside the sealed store.
//
// Durability: `record` resolves once its line is written and fdatasync'ed; lines queued while a
// write is in flight go out together with one fdatasync. Opening drops expired lines and
// rewrites the file atomically; a torn last line (a crash mid-write: no newline after it) was
// never acknowledged and is dropped. Any other line that does not parse is damage, and the
// ledger is refused naming the file and line: dropping it would forget a release.
//
// Bounded: a signer that runs for months must not fill its disk with expired lines. Once as
// much has been appended as the file held when last rewritten (and at least
// COMPACT_AFTER_BYTES), the next write rewrites it atomically from what is still live instead
// of appending: the file stays within about twice its live lines, each line written a bounded
// number of times.
import { writeSync } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { z } from 'zod';
import type { BucketState } from '../../policy/index.js';
import { writeFileAtomic } from '../../contract/io/atomic.js';

/** A request released for, until its window closes. */
export interface SeenRequest {
  /** Names the first release's output (an RSA partial's input), or the session that made it. */
  fingerprint: string;
  until: number;
  /** Per-signature approval nonces it consumed. */
  nonces: string[];
}

const lineSchema = z.strictObject({
  id: z.string().min(1).max(256),
  fingerprint: z.string().max(256),
  until: z.number(),
  nonces: z.array(z.string().max(128)).max(64),
  bucket: z.strictObject({ keyId: z.string().max(64), tokens: z.number(), at: z.number(), fullAt: z.number().optional() }).optional(),
});
type Line = z.infer<typeof lineSchema>;

/**
 * A rate bucket's last state is kept until the bucket would be full again (fullAt), and at least
 * this long: a line written before fullAt was recorded is kept this long only.
 */
const BUCKET_TTL_MS = 60_000;
/** Appended bytes below which the file is never rewritten while open. */
export const COMPACT_AFTER_BYTES = 8 << 20;

const lineText = (l: Line) => JSON.stringify(l) + '\n';
/** Whether a line still counts: its request's window is open, or the bucket it carries is not full yet. */
const isLive = (l: Line, now: number) => l.until > now || (l.bucket !== undefined && Math.max(l.bucket.fullAt ?? 0, l.bucket.at + BUCKET_TTL_MS) > now);

export class ReplayLedger {
  private readonly seen = new Map<string, SeenRequest>();
  /** Each key's rate bucket, with the line that last carried it (rewritten as is when compacting). */
  private readonly buckets = new Map<string, Line & { bucket: BucketState }>();
  private queue: { text: string; done: () => void; fail: (e: Error) => void }[] = [];
  private writing = false;
  /** Settles when the writes under way are done. */
  private written: Promise<void> = Promise.resolve();
  /** Bytes appended since the file was last rewritten, and its size then. */
  private appended = 0;
  private rewritten = 0;
  /** Opened by the first `rewrite`, in `open`. */
  private fh!: FileHandle;

  private constructor(
    private readonly file: string,
    private readonly compactAfterBytes: number,
  ) {}

  static async open(file: string, now = Date.now(), compactAfterBytes = COMPACT_AFTER_BYTES): Promise<ReplayLedger> {
    const kept: Line[] = [];
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const lines = text.split('\n');
    for (const [i, raw] of lines.entries()) {
      if (!raw) continue;
      let line: Line;
      try {
        line = lineSchema.parse(JSON.parse(raw));
      } catch (e) {
        if (i === lines.length - 1) continue; // a torn last line: never acknowledged
        throw new Error(`${file}: line ${i + 1} is damaged (${e instanceof SyntaxError ? e.message : 'not a replay ledger line'}); a signer will not forget a release it recorded`);
      }
      if (isLive(line, now)) kept.push(line);
    }
    const ledger = new ReplayLedger(file, compactAfterBytes);
    for (const l of kept) ledger.remember(l);
    await ledger.rewrite(now);
    return ledger;
  }

  /** The earlier release of request `id`, while its window is open. */
  get(id: string, now: number): SeenRequest | undefined {
    const s = this.seen.get(id);
    return s && s.until > now ? s : undefined;
  }

  bucket(keyId: string): BucketState | undefined {
    const b = this.buckets.get(keyId)?.bucket;
    return b && { tokens: b.tokens, at: b.at };
  }

  /** Records a first release (and the bucket it drew on), durably, before its output leaves. */
  record(id: string, seen: SeenRequest, bucket?: { keyId: string; state: BucketState }): Promise<void> {
    const line: Line = { id, ...seen, ...(bucket ? { bucket: { keyId: bucket.keyId, ...bucket.state } } : {}) };
    this.remember(line);
    return new Promise((done, fail) => {
      this.queue.push({ text: lineText(line), done, fail });
      this.drain();
    });
  }

  /** Forgets requests whose window closed. */
  sweep(now: number): void {
    for (const [id, s] of this.seen) if (s.until <= now) this.seen.delete(id);
  }

  /** Closes the file once the writes under way are done. */
  async close(): Promise<void> {
    await this.written;
    await this.fh.close();
  }

  private remember(l: Line): void {
    this.seen.set(l.id, { fingerprint: l.fingerprint, until: l.until, nonces: l.nonces });
    if (l.bucket) this.buckets.set(l.bucket.keyId, { ...l, bucket: l.bucket });
  }

  /**
   * Puts the live lines (the queued ones are remembered already) in the file's place, and appends
   * from there on: each bucket's last line, and each other request still in its window.
   */
  private async rewrite(now: number): Promise<void> {
    const lines: Line[] = [...this.buckets.values()];
    const carried = new Set(lines.map((l) => l.id));
    for (const [id, s] of this.seen) if (!carried.has(id)) lines.push({ id, ...s });
    const live = Buffer.from(lines.filter((l) => isLive(l, now)).map(lineText).join(''));
    await writeFileAtomic(this.file, live);
    const old = this.fh as FileHandle | undefined;
    this.fh = await open(this.file, 'a', 0o600);
    this.rewritten = live.length;
    this.appended = 0;
    await old?.close();
  }

  /**
   * Writes one batch: appended, or the whole live ledger put in the file's place. After a failed
   * write (a full disk) the file may end in a torn line that later appends would bury, so the
   * next batch rewrites it.
   */
  private async write(text: string): Promise<void> {
    const data = Buffer.from(text);
    try {
      if (this.appended + data.length < Math.max(this.compactAfterBytes, this.rewritten)) {
        // As the audit log's appends (audit/log.ts): written in place, only the fdatasync off the event loop.
        const bytesWritten = writeSync(this.fh.fd, data);
        if (bytesWritten !== data.length) throw new Error(`${this.file}: short write (${bytesWritten} of ${data.length} bytes)`);
        await this.fh.datasync();
        this.appended += data.length;
        return;
      }
      await this.rewrite(Date.now());
    } catch (e) {
      this.appended = Infinity;
      throw e;
    }
  }

  private drain(): void {
    if (this.writing) return;
    this.writing = true;
    this.written = this.writeQueued();
  }

  private async writeQueued(): Promise<void> {
    try {
      while (this.queue.length) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.write(batch.map((b) => b.text).join(''));
          for (const b of batch) b.done();
        } catch (e) {
          for (const b of batch) b.fail(e as Error);
        }
      }
    } finally {
      this.writing = false;
    }
  }
}
