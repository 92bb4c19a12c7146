// After an approved RemoveSigner (issue #7) was applied by the signers: the gateway stops
// planning with the removed signer, then reshares every FROST and DKLs23 key it held among the
// remaining holders (same threshold, same public key), so that its old shares are useless.
// RSA keys (Shoup shares dealt over the integers) cannot be reshared: they keep working with
// the remaining signers, and the removed signer's RSA shares stay valid — said in the answer.
import type { Trace } from './cluster.js';
import type { GatewayDeps } from './server.js';

export interface RemovalOutcome {
  Reshared: { KeyId: string; Holders: number[] }[];
  Failed: { KeyId: string; Reason: string }[];
  NotReshared: { KeyId: string; KeySpec: string; Note: string }[];
}

const RSA_NOTE = 'RSA keys cannot be reshared: the key keeps working with the remaining signers, but the removed signer still holds a valid share of it (rotate to a new key to revoke it)';

/** Retires `removed` at the cluster and reshares its keys; one gateway audit entry per key. */
export async function reshareAfterRemoval(deps: GatewayDeps, removed: { name: string; id: number }, by: { principal: string; proposal: string; policy: { version: number; approvals: string[] } }): Promise<RemovalOutcome> {
  deps.cluster.retire([removed.id]);
  const out: RemovalOutcome = { Reshared: [], Failed: [], NotReshared: [] };
  for (const key of deps.cluster.keys.list().filter((k) => k.holders.includes(removed.id))) {
    if (key.scheme === 'rsa-shoup') {
      out.NotReshared.push({ KeyId: key.keyId, KeySpec: key.keySpec, Note: RSA_NOTE });
      continue;
    }
    const trace: Trace = { signers: [] };
    const startedAt = Date.now();
    let reason: string | undefined;
    try {
      const next = await deps.cluster.reshare(key, trace);
      out.Reshared.push({ KeyId: key.keyId, Holders: next.holders });
    } catch (e) {
      reason = (e as Error).message.slice(0, 1000);
      out.Failed.push({ KeyId: key.keyId, Reason: reason });
      deps.log.error({ keyId: key.keyId, err: reason }, 'resharing after a signer removal failed; the old shares stay in use');
    }
    await deps.audit.append({
      request: trace.session ?? `${by.proposal}-${key.keyId}`,
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
      detail: { proposal: by.proposal, removed: removed.name },
    });
  }
  return out;
}
