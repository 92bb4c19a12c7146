// After an approved RemoveSigner (issue #7) was applied by the signers: the gateway stops
// planning with the removed signer, then reshares every FROST and DKLs23 key it held among the
// remaining holders (same threshold, same public key), so that its old shares are useless.
// RSA keys (Shoup shares dealt over the integers) cannot be reshared: they keep working with
// the remaining signers, and the removed signer's RSA shares stay valid — said in the answer.
import { reshareKeys, type ReshareOutcome } from './reshare-keys.js';
import type { GatewayDeps } from './server.js';

const RSA_NOTE = 'RSA keys cannot be reshared: the key keeps working with the remaining signers, but the removed signer still holds a valid share of it (rotate to a new key to revoke it)';

/** Retires `removed` at the cluster and reshares its keys; one gateway audit entry per key. */
export async function reshareAfterRemoval(deps: GatewayDeps, removed: { name: string; id: number }, by: { principal: string; proposal: string; policy: { version: number; approvals: string[] } }): Promise<ReshareOutcome> {
  deps.cluster.retire([removed.id]);
  const keys = deps.cluster.keys.list().filter((k) => k.holders.includes(removed.id));
  return reshareKeys(deps, keys, () => undefined, RSA_NOTE, { ...by, request: by.proposal, detail: { removed: removed.name } });
}
