// The gateway's transcript entry for each request, durable before any answer leaves: without
// it, nothing does. Requests no principal stands behind are only counted (gateway/unauthenticated.ts).
import type { AuditEventInput } from '../../../audit/entry.js';
import type { AuditLog } from '../../../audit/log.js';
import { abandonedEntries } from '../../cluster-outcome.js';
import type { GatewayDeps } from '../../deps.js';
import { gatewayPolicy } from '../../governance.js';
import type { Principal } from '../../principals.js';
import type { UnauthenticatedTally } from '../../unauthenticated.js';
import { KmsError } from '../errors.js';
import type { KmsMiddleware, KmsRequest } from './state.js';

const OUTPUT_OF: Record<string, 'signature' | 'plaintext' | 'key'> = { Sign: 'signature', Decrypt: 'plaintext', CreateKey: 'key', RefreshKeyShares: 'key' };

/** One audit entry per KMS request: who, what, on which key, with which signers, and how it ended. */
async function recordRequest(audit: AuditLog, r: KmsRequest, principal: Principal, source: string): Promise<void> {
  const ok = r.status < 300;
  const trace = r.opCtx?.trace;
  const approvedBy = [...(r.opCtx?.approvedBy ?? [])];
  const entry: AuditEventInput = {
    request: trace?.session ?? r.requestId,
    op: r.operation ?? 'unknown',
    principal: { name: principal.name, accessKeyId: principal.accessKeyId, source },
    keyId: r.opCtx?.keyId ?? (r.repeatOf ? r.keyId : undefined),
    algorithm: r.opCtx?.algorithm,
    digest: r.opCtx?.digest,
    signers: trace && trace.signers.length > 0 ? trace.signers : undefined,
    session: trace?.session,
    ...(approvedBy.length ? { policy: { version: gatewayPolicy().governance.version, approvals: approvedBy } } : {}),
    outcome: ok ? 'ok' : r.status < 500 ? 'refused' : 'failed',
    reason: ok ? undefined : r.reason.slice(0, 1024),
    // A repeat released nothing new: it was answered as its first request was.
    output: ok && !r.repeatOf ? (OUTPUT_OF[r.operation ?? ''] ?? 'none') : 'none',
    startedAt: r.started,
    detail: {
      requestId: r.requestId,
      ...((r.opCtx?.proposal ?? r.proposed) ? { proposal: r.opCtx?.proposal ?? r.proposed } : {}),
      ...(r.via ? { via: r.via } : {}),
      ...(r.repeatOf ? { repeatOf: r.repeatOf } : {}),
    },
  };
  for (const e of abandonedEntries(trace, entry)) await audit.append(e);
  await audit.append(entry);
}

/** `unauthenticated` counts requests no principal stands behind (no fsync'd entry each). */
export function audit(deps: Pick<GatewayDeps, 'audit' | 'log'>, unauthenticated: UnauthenticatedTally): KmsMiddleware {
  return async (ctx, next) => {
    await next();
    const s = ctx.state;
    try {
      if (!s.principal) unauthenticated.count(s.outcome.replace(/Exception$/, '').replace(/[^A-Za-z0-9]/g, '').slice(0, 32) || 'failed', ctx.ip);
      else await recordRequest(deps.audit, s, s.principal, `${ctx.ip}`);
    } catch (e) {
      deps.log.error({ requestId: s.requestId, err: (e as Error).message }, 'audit append failed; answer withheld');
      const err = new KmsError('KMSInternalException', 'The request could not be recorded; nothing was released', 500);
      s.status = err.status;
      ctx.status = err.status;
      ctx.body = JSON.stringify(err.body());
    }
  };
}
