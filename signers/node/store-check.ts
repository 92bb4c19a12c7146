// Whether this signer can write its store: a signer that cannot record a release must not be
// planned with, and its operator must be told (a full disk, a read-only mount). /health is
// unauthenticated, so it only reads the last result; the check itself (a small file written,
// fdatasync'ed and removed in the store directory) runs on a timer, and sooner — at most once a
// second — after a request failed inside this signer.
import { open, unlink } from 'node:fs/promises';
import path from 'node:path';
import { tempPathFor } from '../../contract/io/atomic.js';

/** How often the store is checked while nothing fails. */
export const STORE_CHECK_EVERY_MS = 5_000;
/** The soonest a failed request makes the next check run. */
const RECHECK_AFTER_FAILURE_MS = 1_000;

export class StoreCheck {
  private result = 'writable';
  private last = 0;
  private running: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly dir: string) {
    void this.run();
    this.timer = setInterval(() => void this.run(), STORE_CHECK_EVERY_MS).unref();
  }

  /** 'writable', or 'not writable: <the error, e.g. ENOSPC: no space left on device>' as of the last check. */
  get status(): string {
    return this.result;
  }

  /** A request failed inside the signer: check again soon, if not checked in the last second. */
  failed(): void {
    if (Date.now() - this.last >= RECHECK_AFTER_FAILURE_MS) void this.run();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private run(): Promise<void> {
    this.running ??= this.check().finally(() => (this.running = undefined));
    return this.running;
  }

  private async check(): Promise<void> {
    this.last = Date.now();
    // A temp file's name (contract/io/atomic.ts): one a crash leaves behind is removed when the store opens.
    const file = tempPathFor(path.join(this.dir, 'health-probe'));
    try {
      const fh = await open(file, 'wx', 0o600);
      try {
        await fh.write(Buffer.alloc(512));
        await fh.datasync();
      } finally {
        await fh.close();
      }
      this.result = 'writable';
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      this.result = `not writable: ${err.message}`.slice(0, 240);
    } finally {
      await unlink(file).catch(() => undefined);
    }
  }
}
