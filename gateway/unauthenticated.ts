// Requests that no principal stands behind (a PKCS#11 frame without a login, a KMS request
// whose signature did not verify) and connections cut before one: counted per facade and
// written to the audit log as one summary entry per interval instead of one fsync'd line each,
// so a flood of them costs the log a line per interval and the disk nothing per request.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.js';

/** Distinct source addresses are counted up to this many per interval. */
const MAX_SOURCES = 10_000;
/** Counts that are answers, not refusals (PKCS#11 public-key operations and public-object searches without a login). */
const NOT_REFUSALS = new Set(['publicKeyOps', 'publicFinds', 'sources']);

export class UnauthenticatedTally {
  private counts = new Map<string, number>();
  private sources = new Set<string>();
  private since = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly audit: AuditLog,
    private readonly log: Logger,
    intervalMs: number,
    /** Which listener: names the summary entry (`pkcs11.unauthenticated`, `kms.unauthenticated`). */
    private readonly facade: 'pkcs11' | 'kms',
  ) {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** `event`: a name for the count (a detail field: letters and digits). */
  count(event: string, source: string | undefined): void {
    this.counts.set(event, (this.counts.get(event) ?? 0) + 1);
    if (source && this.sources.size < MAX_SOURCES) this.sources.add(source);
  }

  /** Writes the interval's summary, if anything happened in it. */
  async flush(): Promise<void> {
    if (this.counts.size === 0) return;
    const detail: Record<string, number> = Object.fromEntries(this.counts);
    detail.sources = this.sources.size;
    const started = this.since;
    this.counts = new Map();
    this.sources = new Set();
    this.since = Date.now();
    const onlyOk = Object.keys(detail).every((k) => NOT_REFUSALS.has(k));
    const seconds = Math.round((this.since - started) / 1000);
    try {
      await this.audit.append({
        request: randomUUID(),
        op: `${this.facade}.unauthenticated`,
        principal: { source: this.facade },
        outcome: onlyOk ? 'ok' : 'refused',
        reason: onlyOk ? undefined : `requests and connections no principal stood behind in ${seconds} s, counted in detail`,
        startedAt: started,
        durationMs: this.since - started,
        detail,
      });
    } catch (e) {
      this.log.error({ err: (e as Error).message, ...detail }, 'audit append of the unauthenticated summary failed');
    }
  }

  /** Stops the timer and writes what is left (appended before the audit log closes). */
  close(): void {
    clearInterval(this.timer);
    void this.flush();
  }
}
