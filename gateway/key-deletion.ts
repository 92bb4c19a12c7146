// Keys whose approved ScheduleKeyDeletion window has ended are destroyed, as AWS KMS does: each
// holder destroys its share once the deletion is due by its own clock (a gateway cannot hurry
// it: signers/node/service.ts), then the gateway forgets the key's record, aliases and policy.
// A holder that is down keeps its share until a later sweep, and the key stays PendingDeletion
// (unusable) until every active holder has destroyed its share. Retired signers are not asked.
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import { SignerRefusedError } from './signer-client.js';
import type { GatewayDeps } from './deps.js';

const SWEEP_MS = 60_000;

type Deps = Pick<GatewayDeps, 'cluster' | 'kmsState' | 'log' | 'audit'>;

/** Sweeps now and every minute; answers a stop function. */
export function startKeyDeletion(deps: Deps): () => void {
  let running = false;
  const sweep = () => {
    if (running) return;
    running = true;
    destroyDueKeys(deps)
      .catch((e: Error) => deps.log.error({ err: e.message }, 'key deletion sweep failed'))
      .finally(() => (running = false));
  };
  sweep();
  const timer = setInterval(sweep, SWEEP_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** Destroys every key whose deletion date has passed; answers the ids destroyed. */
export async function destroyDueKeys(deps: Deps, now = Date.now()): Promise<string[]> {
  const destroyed: string[] = [];
  for (const key of deps.cluster.keys.list()) {
    if (key.state !== 'PendingDeletion' || key.deletionDate === undefined || key.deletionDate > now) continue;
    const startedAt = Date.now();
    const holders = deps.cluster.active.filter((c) => key.holders.includes(c.id));
    const results = await Promise.allSettled(holders.map((c) => c.call(signerRoutes.keys.destroy, { keyId: key.keyId })));
    // A holder with no record of the key destroyed it in an earlier sweep.
    const failed = results.flatMap((r, i) => (r.status === 'rejected' && !(r.reason instanceof SignerRefusedError && r.reason.code === 'no-key') ? [`${holders[i]!.name}: ${(r.reason as Error).message}`] : []));
    if (failed.length) {
      // Logged, not recorded: the sweep retries every minute until every holder has done it.
      deps.log.warn({ keyId: key.keyId, err: failed.join('; ') }, 'key deletion due, but not every holder destroyed its share; retrying later');
      continue;
    }
    await deps.kmsState.exclusive(() => deps.kmsState.forgetKey(key.keyId));
    await deps.cluster.keys.delete(key.keyId);
    destroyed.push(key.keyId);
    deps.log.info({ keyId: key.keyId }, 'key destroyed: its deletion window ended');
    await deps.audit.append({
      request: `destroy-${key.keyId}`,
      op: 'DeleteKey',
      keyId: key.keyId,
      signers: holders.filter((_, i) => results[i]!.status === 'fulfilled').map((c) => ({ name: c.name, id: c.id })),
      outcome: 'ok',
      output: 'none',
      startedAt,
    });
  }
  return destroyed;
}
