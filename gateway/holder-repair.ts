// Keeps every key on exactly the cluster's active signers without waiting for an
// operator. A resharing that failed during a removal (a holder was down) leaves the retired
// signer's share usable beside the others, and one that failed during an addition leaves the
// newcomer without a share; an approved admission may have stopped half-way; a resharing whose
// adopts did not all land leaves the holders split (journaled). A sweep retries
// each of them, with its own backoff (the sweep interval, doubling up to an hour), and records
// every attempt as the gateway's, as `mpchsm key refresh` and `mpchsm signer admit` do theirs.
import { randomUUID } from 'node:crypto';
import { admitSigner } from './add-signer.js';
import { gatewayPolicy } from './governance.js';
import { resumeReshares } from './reshare-resume.js';
import { reshareKeys, type ReshareCause } from './reshare-keys.js';
import type { GatewayDeps } from './deps.js';

const MAX_DELAY_MS = 3600_000;

/** When each pending repair (`admit:NAME` or a key id) may be tried next. */
type Backoff = Map<string, { at: number; delay: number }>;

/** Sweeps every `repairIntervalMs`; answers a stop function. */
export function startHolderRepair(deps: GatewayDeps): () => void {
  const backoff: Backoff = new Map();
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    repairHolders(deps, backoff)
      .catch((e: Error) => deps.log.error({ err: e.message }, 'holder repair sweep failed'))
      .finally(() => (running = false));
  }, deps.config.repairIntervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** One sweep: admissions first (they change the active set), interrupted resharings, then keys whose holders differ from the active set. */
export async function repairHolders(deps: GatewayDeps, backoff: Backoff, now = Date.now()): Promise<void> {
  const attempt = async (id: string, run: () => Promise<boolean>): Promise<void> => {
    const b = backoff.get(id);
    if (b && b.at > now) return;
    if (await run()) {
      backoff.delete(id);
      return;
    }
    const delay = Math.min(b ? b.delay * 2 : deps.config.repairIntervalMs, MAX_DELAY_MS);
    backoff.set(id, { at: now + delay, delay });
  };
  const cause = (): Omit<ReshareCause, 'detail'> => ({
    principal: 'gateway',
    request: `repair-${randomUUID()}`,
    policy: { version: gatewayPolicy().governance.version, approvals: [] },
  });
  for (const name of gatewayPolicy().awaitingAdmission()) {
    await attempt(`admit:${name}`, async () => {
      // Its keys' resharings, if any fail, are retried below with the other keys.
      return (await admitSigner(deps, name, cause())).Signer.Admitted;
    });
  }
  for (const r of deps.cluster.journal.list()) {
    await attempt(`resume:${r.keyId}`, async () => (await resumeReshares(deps, { keyId: r.keyId, principal: 'gateway' }))[0]?.Error === undefined);
  }
  const active = deps.cluster.active.map((c) => c.id).sort((a, b) => a - b);
  for (const key of deps.cluster.keys.list()) {
    if (key.state === 'PendingDeletion' || deps.cluster.journal.get(key.keyId)) continue;
    if ([...key.holders].sort((a, b) => a - b).join() === active.join()) {
      backoff.delete(key.keyId);
      continue;
    }
    await attempt(key.keyId, async () => {
      const out = await reshareKeys(deps, [key], () => active, { ...cause(), detail: { repair: true } });
      return out.Failed.length === 0;
    });
  }
}
