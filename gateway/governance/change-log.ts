// The numbered log of changes the signers keep their own copy of (keys, aliases, principals,
// governance, signers), in DIR/signer-changes.json: each recorded in the gateway's transcript
// under its number before any signer sees it, pushed to every active signer in order with its
// proposal and approvals, kept until every one processed it, and pushed again to a signer that
// was down. A damaged log stops the gateway: renumbering from 1 would make every signer take
// new changes for ones it already processed.
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AuditLog } from '../../audit/log.js';
import { writeFileAtomic } from '../../contract/io/atomic.js';
import type { SignerChange, UnnumberedChange } from '../../contract/signer-rpc/authority.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { SerialQueue } from '../../contract/serial-queue.js';
import { SignerRefusedError, type SignerClient } from '../signer-client.js';
import { readJson } from './chain.js';
import { refusal, type SignerRoster } from './signers.js';

const RESYNC_MS = 15_000;

export const changeLogFile = (dir: string) => path.join(dir, 'signer-changes.json');

const changeLogSchema = z.object({
  next: z.number().int().min(1),
  /** Per signer id: the last change it processed. */
  acked: z.record(z.string(), z.number().int().min(0)),
  pending: z.array(z.object({ seq: z.number().int() }).passthrough()),
});
type ChangeLogFile = { next: number; acked: Record<string, number>; pending: SignerChange[] };

/**
 * Starts a lost log again where the signers are (gateway/gateway-recovery.ts): the next change
 * after the last any of them processed, each signer's last as its acknowledgement. A log that
 * exists (a recovery interrupted after this) is never replaced: answers its next number.
 */
export async function seedChangeLog(dir: string, acked: Record<number, number>): Promise<number> {
  const saved = readJson(changeLogFile(dir));
  if (saved !== undefined) return changeLogSchema.parse(saved).next;
  const next = Math.max(0, ...Object.values(acked)) + 1;
  await writeFileAtomic(changeLogFile(dir), Buffer.from(JSON.stringify({ next, acked, pending: [] }) + '\n'), 0o600);
  return next;
}

/** How one signer took a forwarded change. */
export interface ChangeResult {
  signer: string;
  applied: boolean;
  reason?: string;
}

export class ChangeLog {
  private changes: ChangeLogFile;
  /** Forwarding, resync and admissions, one at a time. */
  private readonly queue = new SerialQueue();
  private readonly timer: NodeJS.Timeout;
  private readonly file: string;

  constructor(
    dir: string,
    private readonly signers: Pick<SignerRoster, 'active'>,
    private readonly audit: AuditLog,
    private readonly log: Logger,
  ) {
    this.file = changeLogFile(dir);
    const saved = readJson(this.file);
    this.changes = saved === undefined ? { next: 1, acked: {}, pending: [] } : (changeLogSchema.parse(saved) as ChangeLogFile);
    this.timer = setInterval(() => void this.resync(), RESYNC_MS);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /**
   * Forwards an executed change (with its proposal and approvals when under quorum) to every
   * signer, in order. A signer that is down gets it later (resync); one that refuses says why.
   */
  forward(change: UnnumberedChange, principal: string): Promise<ChangeResult[]> {
    return this.queue.run(async () => {
      const entry = { ...change, seq: this.changes.next } as SignerChange;
      // Recorded under the number each signer's own entry for it carries, before any signer sees it.
      await this.audit.append({
        request: `change-${entry.seq}`,
        op: `change.${entry.operation}`,
        operation: entry.operation,
        principal: { name: principal },
        keyId: 'keyId' in entry ? entry.keyId : undefined,
        signers: this.signers.active().map((c) => ({ name: c.name, id: c.id })),
        outcome: 'ok',
        startedAt: Date.now(),
      });
      this.changes = { ...this.changes, next: entry.seq + 1, pending: [...this.changes.pending, entry] };
      await this.save();
      const results = await Promise.all(this.signers.active().map((c) => this.push(c, entry.seq)));
      await this.prune();
      return results;
    });
  }

  /** Pushes changes signers missed (they were down), oldest first. */
  resync(): Promise<unknown> {
    if (this.changes.pending.length === 0) return Promise.resolve();
    return this.queue.run(async () => {
      await Promise.all(this.signers.active().map((c) => this.push(c)));
      await this.prune();
    }).catch((e: Error) => this.log.warn({ err: e.message }, 'resync failed'));
  }

  /** Runs `f` with no change forwarded meanwhile. */
  exclusive<T>(f: () => Promise<T>): Promise<T> {
    return this.queue.run(f);
  }

  /** Within `exclusive`: signer `id` processed every change up to `seq`. */
  async acknowledged(id: number, seq: number): Promise<void> {
    this.changes.acked[id] = seq;
    await this.save();
  }

  /** Forgets changes every active signer processed: after a removal, the removed signer's acknowledgements no longer hold any back. */
  settle(): Promise<void> {
    return this.queue.run(() => this.prune());
  }

  /** Sends `c` every pending change after its last; answers how it took change `target`. */
  private async push(c: SignerClient, target?: number): Promise<ChangeResult> {
    let result: ChangeResult = { signer: c.name, applied: false, reason: 'not sent' };
    for (const change of this.changes.pending) {
      if (change.seq <= (this.changes.acked[c.id] ?? 0)) continue;
      let outcome: ChangeResult;
      try {
        const r = await c.call(signerRoutes.policy.apply, change);
        outcome = { signer: c.name, applied: r.applied, ...(r.applied ? {} : { reason: 'already applied' }) };
      } catch (e) {
        if (e instanceof SignerRefusedError && e.code !== 'out-of-order' && e.code !== 'unauthenticated') {
          outcome = { signer: c.name, applied: false, reason: refusal(e) };
          this.log.error({ signer: c.name, seq: change.seq, operation: change.operation, reason: outcome.reason }, 'a signer refused a change');
        } else {
          this.log.warn({ signer: c.name, seq: change.seq, err: (e as Error).message }, 'change not delivered; will retry');
          return { signer: c.name, applied: false, reason: (e as Error).message };
        }
      }
      this.changes.acked[c.id] = change.seq;
      if (change.seq === target) result = outcome;
    }
    return result;
  }

  private async prune(): Promise<void> {
    const done = Math.min(...this.signers.active().map((c) => this.changes.acked[c.id] ?? 0));
    this.changes = { ...this.changes, pending: this.changes.pending.filter((c) => c.seq > done) };
    await this.save();
  }

  private save(): Promise<void> {
    return writeFileAtomic(this.file, Buffer.from(JSON.stringify(this.changes) + '\n'), 0o600);
  }
}
