// The gateway's transcript entry for each request, durable before any answer leaves: without
// it, nothing does. Before a signer is asked anything, an intent naming the request is durable
// too (gateway/audit-intent.ts). Requests no principal stands behind are only counted
// (gateway/unauthenticated.ts).
import type { AuditEventInput } from '../../../audit/entry.js';
import { AuditedRequest, type IntentFields } from '../../audit-intent.js';
import type { GatewayDeps } from '../../deps.js';
import { gatewayPolicy } from '../../governance.js';
import type { Principal } from '../../principals.js';
import type { UnauthenticatedTally } from '../../unauthenticated.js';
import { asKmsError, KmsError } from '../errors.js';
import type { KmsMiddleware, KmsRequest } from './state.js';

const OUTPUT_OF: Record<string, 'signature' | 'plaintext' | 'key'> = {
  Sign: 'signature',
  Decrypt: 'plaintext',
  GenerateRandom: 'plaintext',
  GenerateDataKey: 'plaintext',
  GenerateDataKeyPair: 'plaintext',
  CreateKey: 'key',
  RefreshKeyShares: 'key',
  RotateKeyOnDemand: 'key',
};

/** Who asked what, on which key and message: the intent's account, and the outcome's. */
const described = (r: KmsRequest, principal: Principal | undefined, source: string) =>
  ({
    // An approval that runs a proposal fans out as the operation it runs.
    op: r.opCtx?.operation ?? r.operation ?? 'unknown',
    ...(principal && { principal: { name: principal.name, accessKeyId: principal.accessKeyId, source } }),
    keyId: r.opCtx?.keyId ?? r.opCtx?.trace?.keyId ?? (r.repeatOf ? r.keyId : undefined),
    algorithm: r.opCtx?.algorithm,
    digest: r.opCtx?.digest,
  }) satisfies IntentFields;

/** One audit entry per KMS request: who, what, on which key, with which signers, and how it ended. */
async function recordRequest(request: AuditedRequest, r: KmsRequest, principal: Principal, source: string): Promise<void> {
  const ok = r.status < 300;
  const trace = r.opCtx?.trace;
  const approvedBy = [...(r.opCtx?.approvedBy ?? [])];
  const entry: AuditEventInput = {
    ...described(r, principal, source),
    request: trace?.session ?? r.requestId,
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
      ...(r.opCtx?.sourceKeyId ? { sourceKeyId: r.opCtx.sourceKeyId } : {}),
    },
  };
  await request.finish(entry, trace);
}

/**
 * Runs `f` as request `s` of `s.principal` from `source` outside the KMS API (the approval
 * console): audited as a KMS request is — intents before its signer calls, then its entry with
 * the outcome — and its answer withheld (KMSInternalException) if the entry cannot be written.
 */
export async function audited<T>(deps: Pick<GatewayDeps, 'audit'>, s: KmsRequest & { principal: Principal }, source: string, f: () => Promise<T>): Promise<T> {
  const request = new AuditedRequest(deps.audit, () => ({ ...described(s, s.principal, source), detail: { requestId: s.requestId } }));
  let out: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    out = { ok: true, value: await request.run(f) };
  } catch (e) {
    const err = asKmsError(e);
    Object.assign(s, { status: err.status, outcome: err.type, reason: `${err.type}: ${err.message}` });
    out = { ok: false, error: err };
  }
  try {
    await recordRequest(request, s, s.principal, source);
  } catch {
    throw new KmsError('KMSInternalException', 'The request could not be recorded; nothing was released', 500);
  }
  if (!out.ok) throw out.error;
  return out.value;
}

/** `unauthenticated` counts requests no principal stands behind (no fsync'd entry each). */
export function audit(deps: Pick<GatewayDeps, 'audit' | 'log'>, unauthenticated: UnauthenticatedTally): KmsMiddleware {
  return async (ctx, next) => {
    const s = ctx.state;
    const request = new AuditedRequest(deps.audit, () => ({ ...described(s, s.principal, ctx.ip), detail: { requestId: s.requestId } }));
    await request.run(next);
    try {
      if (!s.principal) unauthenticated.count(s.outcome.replace(/Exception$/, '').replace(/[^A-Za-z0-9]/g, '').slice(0, 32) || 'failed', ctx.ip);
      else await recordRequest(request, s, s.principal, `${ctx.ip}`);
    } catch (e) {
      deps.log.error({ requestId: s.requestId, err: (e as Error).message }, 'audit append failed; answer withheld');
      const err = new KmsError('KMSInternalException', 'The request could not be recorded; nothing was released', 500);
      s.status = err.status;
      ctx.status = err.status;
      ctx.body = JSON.stringify(err.body());
    }
  };
}
