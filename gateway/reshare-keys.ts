// Resharing the keys a change of signers concerns (a removal, an admission, a repair), one key
// after another, each recorded in the gateway's transcript with the signers that took part. A
// key that fails keeps its old shares and is listed with the reason.
import type { Trace } from './cluster-outcome.js';
import type { KeyRecord } from './keys.js';
import type { GatewayDeps } from './deps.js';

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
export async function reshareKeys(deps: GatewayDeps, keys: readonly KeyRecord[], to: (k: KeyRecord) => number[] | undefined, by: ReshareCause): Promise<ReshareOutcome> {
  const out: ReshareOutcome = { Reshared: [], Failed: [] };
  for (const key of keys) {
    const trace: Trace = { signers: [] };
    const startedAt = Date.now();
    let reason: string | undefined;
    try {
      const next = await deps.cluster.reshare(key, trace, to(key));
      out.Reshared.push({ KeyId: key.keyId, Holders: next.holders });
    } catch (e) {
      reason = (e as Error).message.slice(0, 1000);
      out.Failed.push({ KeyId: key.keyId, Reason: reason });
      deps.log.error({ keyId: key.keyId, err: reason }, 'resharing failed; the old shares stay in use');
    }
    await deps.audit.append({
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
    });
  }
  return out;
}
