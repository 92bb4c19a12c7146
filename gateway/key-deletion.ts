// Keys whose approved ScheduleKeyDeletion window has ended are destroyed, as AWS KMS does: each
// holder destroys its share once the deletion is due by its own clock (a gateway cannot hurry
// it: signers/node/service.ts), then the gateway forgets the key's record, aliases and policy.
// A holder that is down keeps its share until a later sweep (5 s later, then each minute), and
// the key stays PendingDeletion (unusable) until every active holder has destroyed its share.
// Retired signers are not asked.
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import { SignerRefusedError } from './signer-client.js';
import type { GatewayDeps } from './deps.js';

const SWEEP_MS = 60_000;
/** A sweep that left a due key (a holder down or just restarting) runs once more this soon. */
const RETRY_MS = 5_000;

type Deps = Pick<GatewayDeps, 'cluster' | 'kmsState' | 'log' | 'audit'>;

/** Sweeps now and every minute (and once 5 s after a sweep that left a due key); answers a stop function. */
export function startKeyDeletion(deps: Deps): () => void {
  let running = false;
  let retry: NodeJS.Timeout | undefined;
  const sweep = (again = false) => {
    if (running) return;
    running = true;
    clearTimeout(retry);
    destroyDueKeys(deps)
      .then((left) => {
        if (left > 0 && !again) retry = setTimeout(() => sweep(true), RETRY_MS).unref();
      })
      .catch((e: Error) => deps.log.error({ err: e.message }, 'key deletion sweep failed'))
      .finally(() => (running = false));
  };
  sweep();
  const timer = setInterval(() => sweep(), SWEEP_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    clearTimeout(retry);
  };
}

/** Destroys every key whose deletion date has passed; answers how many due keys are left (a holder failed). */
export async function destroyDueKeys(deps: Deps, now = Date.now()): Promise<number> {
  let left = 0;
  for (const key of deps.cluster.keys.list()) {
    if (key.state !== 'PendingDeletion' || key.deletionDate === undefined || key.deletionDate > now) continue;
    const startedAt = Date.now();
    const holders = deps.cluster.active.filter((c) => key.holders.includes(c.id));
    const results = await Promise.allSettled(holders.map((c) => c.call(signerRoutes.keys.destroy, { keyId: key.keyId })));
    // A holder with no record of the key destroyed it in an earlier sweep.
    const failed = results.flatMap((r, i) => (r.status === 'rejected' && !(r.reason instanceof SignerRefusedError && r.reason.code === 'no-key') ? [`${holders[i]!.name}: ${(r.reason as Error).message}`] : []));
    if (failed.length) {
      // Logged, not recorded: the sweep retries (once after RETRY_MS, then every minute) until every holder has done it.
      deps.log.warn({ keyId: key.keyId, err: failed.join('; ') }, `key deletion due, but not every holder destroyed its share; retrying in ${RETRY_MS / 1000} s`);
      left++;
      continue;
    }
    await deps.kmsState.exclusive(() => deps.kmsState.forgetKey(key.keyId));
    await deps.cluster.keys.delete(key.keyId);
    deps.cluster.keyDestroyed(key.keyId);
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
  return left;
}
