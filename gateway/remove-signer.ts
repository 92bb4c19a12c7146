// After an approved RemoveSigner (issue #7) was applied by the signers: the gateway stops
// planning with the removed signer, then reshares every key it held (FROST, DKLs23 and Shoup
// RSA alike) among the remaining holders (same threshold, same public key), so that its old
// shares are useless.
import { reshareKeys, type ReshareOutcome } from './reshare-keys.js';
import type { GatewayDeps } from './deps.js';

/** Retires `removed` at the cluster and reshares its keys; one gateway audit entry per key. */
export async function reshareAfterRemoval(deps: GatewayDeps, removed: { name: string; id: number }, by: { principal: string; proposal: string; policy: { version: number; approvals: string[] } }): Promise<ReshareOutcome> {
  deps.cluster.retire([removed.id]);
  const keys = deps.cluster.keys.list().filter((k) => k.holders.includes(removed.id));
  return reshareKeys(deps, keys, () => undefined, { ...by, request: by.proposal, detail: { removed: removed.name } });
}
