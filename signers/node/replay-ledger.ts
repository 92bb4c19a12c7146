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
  bucket: z.strictObject({ keyId: z.string().max(64), tokens: z.number(), at: z.number() }).optional(),
});
type Line = z.infer<typeof lineSchema>;

/** How long a rate bucket's last state is worth keeping: a minute refills any bucket. */
const BUCKET_TTL_MS = 60_000;

export class ReplayLedger {
  private readonly seen = new Map<string, SeenRequest>();
  private readonly buckets = new Map<string, BucketState>();
  private queue: { text: string; done: () => void; fail: (e: Error) => void }[] = [];
  private writing = false;

  private constructor(private readonly fh: FileHandle) {}

  static async open(file: string, now = Date.now()): Promise<ReplayLedger> {
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
      if (line.until > now || (line.bucket && line.bucket.at > now - BUCKET_TTL_MS)) kept.push(line);
    }
    await writeFileAtomic(file, Buffer.from(kept.map((l) => JSON.stringify(l) + '\n').join('')));
    const ledger = new ReplayLedger(await open(file, 'a', 0o600));
    for (const l of kept) ledger.remember(l);
    return ledger;
  }

  /** The earlier release of request `id`, while its window is open. */
  get(id: string, now: number): SeenRequest | undefined {
    const s = this.seen.get(id);
    return s && s.until > now ? s : undefined;
  }

  bucket(keyId: string): BucketState | undefined {
    return this.buckets.get(keyId);
  }

  /** Records a first release (and the bucket it drew on), durably, before its output leaves. */
  record(id: string, seen: SeenRequest, bucket?: { keyId: string; state: BucketState }): Promise<void> {
    const line: Line = { id, ...seen, ...(bucket ? { bucket: { keyId: bucket.keyId, ...bucket.state } } : {}) };
    this.remember(line);
    return new Promise((done, fail) => {
      this.queue.push({ text: JSON.stringify(line) + '\n', done, fail });
      void this.drain();
    });
  }

  /** Forgets requests whose window closed. */
  sweep(now: number): void {
    for (const [id, s] of this.seen) if (s.until <= now) this.seen.delete(id);
  }

  close(): Promise<void> {
    return this.fh.close();
  }

  private remember(l: Line): void {
    this.seen.set(l.id, { fingerprint: l.fingerprint, until: l.until, nonces: l.nonces });
    if (l.bucket) this.buckets.set(l.bucket.keyId, { tokens: l.bucket.tokens, at: l.bucket.at });
  }

  private async drain(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.queue.length) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.fh.write(batch.map((b) => b.text).join(''));
          await this.fh.datasync();
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
