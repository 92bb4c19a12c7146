// Finishing the resharings left in the journal (gateway/reshare-journal.ts): at the gateway's
// start, in the repair sweep, and before MpcHsm.RefreshKeyShares reshares a key again. Each is
// one gateway audit entry under the resharing's session.
import { auditedGatewayRequest } from './gateway-request.js';
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
    const principal = opts.principal ? { principal: { name: opts.principal } } : {};
    const done = await auditedGatewayRequest(deps.audit, { op: 'ReshareKey', ...principal, keyId: r.keyId }, (trace) => deps.cluster.resumeReshare(r, trace), { request: r.session, detail: { resumed: true } });
    if (done.ok) deps.log.info({ keyId: r.keyId, session: r.session }, 'interrupted resharing finished');
    else deps.log.error({ keyId: r.keyId, session: r.session, err: done.reason }, 'finishing an interrupted resharing failed; it stays journaled for the next attempt');
    out.push({ KeyId: r.keyId, Session: r.session, ...(done.ok ? {} : { Error: done.reason }) });
  }
  return out;
}
