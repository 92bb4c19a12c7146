// PKCS#11 requests that no login stands behind, and connections cut before a login: counted
// and written to the audit log as one summary entry per interval instead of one fsync'd line
// each, so a flood of them costs the log a line per interval and the disk nothing per frame.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../../audit/log.js';
import { CKR } from './ck.js';
import type { RequestLog } from './handlers.js';

export type UnauthenticatedEvent =
  | 'loginFailed'
  | 'noLogin'
  | 'malformed'
  | 'publicKeyOps'
  | 'otherFailed'
  | 'oversizedFrames'
  | 'idleClosed'
  | 'evicted'
  | 'refusedAtCap';

/** Distinct source addresses are counted up to this many per interval. */
const MAX_SOURCES = 10_000;

/** Which count an unauthenticated request's outcome goes to. */
export function classify(log: RequestLog): UnauthenticatedEvent {
  if (log.op === 'login') return 'loginFailed';
  if (log.rv === CKR.OK) return 'publicKeyOps';
  if (log.rv === CKR.USER_NOT_LOGGED_IN) return 'noLogin';
  if (log.rv === CKR.GENERAL_ERROR) return 'malformed';
  return 'otherFailed';
}

export class UnauthenticatedTally {
  private counts = new Map<UnauthenticatedEvent, number>();
  private sources = new Set<string>();
  private since = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly audit: AuditLog,
    private readonly log: Logger,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  count(event: UnauthenticatedEvent, source: string | undefined): void {
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
    const onlyOk = Object.keys(detail).every((k) => k === 'publicKeyOps' || k === 'sources');
    const seconds = Math.round((this.since - started) / 1000);
    try {
      await this.audit.append({
        request: randomUUID(),
        op: 'pkcs11.unauthenticated',
        principal: { source: 'pkcs11' },
        outcome: onlyOk ? 'ok' : 'refused',
        reason: onlyOk ? undefined : `requests and connections without a login in ${seconds} s, counted in detail`,
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
