// Resharing the keys a change of signers concerns (a removal, an admission, a repair), one key
// after another, each recorded in the gateway's transcript with the signers that took part. A
// key that fails keeps its old shares and is listed with the reason.
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.js';
import { auditedGatewayRequest } from './gateway-request.js';
import type { Cluster } from './cluster.js';
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
    // Its own audited request, even inside a client's: this entry, not the client's, is its outcome.
    const done = await auditedGatewayRequest(
      deps.audit,
      { op: 'ReshareKey', principal: { name: by.principal }, keyId: key.keyId },
      (trace) => deps.cluster.reshare(key, trace, to(key)),
      { request: `${by.request}-${key.keyId}`, policy: by.policy, detail: { ...(by.proposal ? { proposal: by.proposal } : {}), ...by.detail } },
    );
    if (done.ok) out.Reshared.push({ KeyId: key.keyId, Holders: done.value.holders });
    else {
      out.Failed.push({ KeyId: key.keyId, Reason: done.reason });
      deps.log.error({ keyId: key.keyId, err: done.reason }, 'resharing failed; the old shares stay in use');
    }
  }
  return out;
}
