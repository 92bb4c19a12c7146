// Finishing the resharings left in the journal (gateway/reshare-journal.ts): at the gateway's
// start, in the repair sweep, and before MpcHsm.RefreshKeyShares reshares a key again. Each is
// one gateway audit entry under the resharing's session.
import { AuditedRequest } from './audit-intent.js';
import type { Trace } from './cluster-outcome.js';
import type { GatewayDeps } from './deps.js';

export interface Resumed {
  KeyId: string;
  Session: string;
  /** Why it could not be finished (the record stays journaled). */
  Error?: string;
}

/**
 * Finishes the journaled resharings (all, or only `keyId`'s), one gateway audit entry each under
 * the resharing's session — the request id the signers recorded their adopts under.
 */
export async function resumeReshares(deps: Pick<GatewayDeps, 'cluster' | 'audit' | 'log'>, opts: { keyId?: string; principal?: string } = {}): Promise<Resumed[]> {
  const records = opts.keyId === undefined ? deps.cluster.journal.list() : [deps.cluster.journal.get(opts.keyId)].filter((r) => r !== undefined);
  const out: Resumed[] = [];
  for (const r of records) {
    const trace: Trace = { signers: [] };
    const startedAt = Date.now();
    let reason: string | undefined;
    const principal = opts.principal ? { principal: { name: opts.principal } } : {};
    const request = new AuditedRequest(deps.audit, () => ({ op: 'ReshareKey', ...principal, keyId: r.keyId }));
    try {
      await request.run(() => deps.cluster.resumeReshare(r, trace));
      deps.log.info({ keyId: r.keyId, session: r.session }, 'interrupted resharing finished');
    } catch (e) {
      reason = (e as Error).message.slice(0, 1000);
      deps.log.error({ keyId: r.keyId, session: r.session, err: reason }, 'finishing an interrupted resharing failed; it stays journaled for the next attempt');
    }
    out.push({ KeyId: r.keyId, Session: r.session, ...(reason === undefined ? {} : { Error: reason }) });
    await request.finish({
      request: r.session,
      op: 'ReshareKey',
      ...principal,
      keyId: r.keyId,
      signers: trace.signers.length ? trace.signers : undefined,
      session: r.session,
      outcome: reason === undefined ? 'ok' : 'failed',
      reason,
      output: reason === undefined ? 'key' : 'none',
      startedAt,
      detail: { resumed: true },
    }, trace);
  }
  return out;
}
