// Resharing the keys a change of signers concerns (a removal, an admission, a repair), one key
// after another, each recorded in the gateway's transcript with the signers that took part. A
// key that fails keeps its old shares and is listed with the reason.
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.js';
import { AuditedRequest } from './audit-intent.js';
import type { Cluster, Trace } from './cluster.js';
import type { KeyRecord } from './keys.js';

/** What a change of signers takes of the gateway's dependencies. */
export interface SignerChangeDeps {
  cluster: Cluster;
  audit: AuditLog;
  log: Logger;
}

export interface ReshareOutcome {
  Reshared: { KeyId: string; Holders: number[] }[];
  Failed: { KeyId: string; Reason: string }[];
}

export interface ReshareCause {
  principal: string;
  /** The approved proposal behind it, if any; otherwise `request` names the request. */
  proposal?: string;
  request: string;
  policy: { version: number; approvals: string[] };
  detail: Record<string, string | number | boolean>;
}

/** Reshares each of `keys` to `to(key)` (undefined: its active holders). */
export async function reshareKeys(deps: SignerChangeDeps, keys: readonly KeyRecord[], to: (k: KeyRecord) => number[] | undefined, by: ReshareCause): Promise<ReshareOutcome> {
  const out: ReshareOutcome = { Reshared: [], Failed: [] };
  for (const key of keys) {
    const trace: Trace = { signers: [] };
    const startedAt = Date.now();
    let reason: string | undefined;
    // Its own audited request, even inside a client's: this entry, not the client's, is its outcome.
    const request = new AuditedRequest(deps.audit, () => ({ op: 'ReshareKey', principal: { name: by.principal }, keyId: key.keyId }));
    try {
      const next = await request.run(() => deps.cluster.reshare(key, trace, to(key)));
      out.Reshared.push({ KeyId: key.keyId, Holders: next.holders });
    } catch (e) {
      reason = (e as Error).message.slice(0, 1000);
      out.Failed.push({ KeyId: key.keyId, Reason: reason });
      deps.log.error({ keyId: key.keyId, err: reason }, 'resharing failed; the old shares stay in use');
    }
    await request.finish({
      request: trace.session ?? `${by.request}-${key.keyId}`,
      op: 'ReshareKey',
      principal: { name: by.principal },
      keyId: key.keyId,
      signers: trace.signers.length ? trace.signers : undefined,
      session: trace.session,
      policy: by.policy,
      outcome: reason === undefined ? 'ok' : 'failed',
      reason,
      output: reason === undefined ? 'key' : 'none',
      startedAt,
      detail: { ...(by.proposal ? { proposal: by.proposal } : {}), ...by.detail },
    }, trace);
  }
  return out;
}
