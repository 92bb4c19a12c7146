// Rotation of symmetric keys: a new key material by DKG with every signer (gateway/tprf.ts),
// recorded with the key; the newest seals, every older one still opens what it sealed (a blob's
// header names its material). On demand (RotateKeyOnDemand) or automatically: a sweep rotates
// each key whose rotation is enabled and due, then schedules the next one a period later.
import { randomInt, randomUUID } from 'node:crypto';
import { auditedGatewayRequest } from './gateway-request.js';
import type { Trace } from './cluster-outcome.js';
import type { GatewayDeps } from './deps.js';
import type { KeyRecord } from './keys.js';

/** How often the sweep looks for keys due for rotation. */
export const ROTATION_SWEEP_MS = 60_000;
export const DAY_MS = 86_400_000;

/** A material id no material of the key has (1 is the key's first). */
function freshMaterialId(key: KeyRecord): number {
  const used = new Set([1, ...(key.materials ?? []).map((m) => m.id)]);
  for (;;) {
    const id = randomInt(2, 0xffffffff);
    if (!used.has(id)) return id;
  }
}

/** Makes and records a new material for `key`; answers the updated record. */
export async function rotateKey(deps: Pick<GatewayDeps, 'cluster' | 'kmsState' | 'log'>, key: KeyRecord, rotationType: 'AUTOMATIC' | 'ON_DEMAND', trace: Trace): Promise<KeyRecord> {
  const id = freshMaterialId(key);
  const frost = await deps.cluster.prf.makeMaterial(key, id, trace);
  const record = await deps.kmsState.exclusive(() =>
    deps.kmsState.updateKey(key.keyId, (k) => ({
      ...k,
      materials: [...(k.materials ?? []), { id, frost, createdAt: Date.now(), rotationType }],
      ...(rotationType === 'AUTOMATIC' && k.rotation ? { rotation: { ...k.rotation, next: Date.now() + k.rotation.periodDays * DAY_MS } } : {}),
    })),
  );
  deps.log.info({ keyId: key.keyId, material: id, rotationType }, 'key rotated');
  return record;
}

/** An automatic rotation, audited as the gateway's own request (each signer records its share of it). */
async function rotateAudited(deps: Pick<GatewayDeps, 'cluster' | 'kmsState' | 'log' | 'audit'>, key: KeyRecord): Promise<void> {
  const described = { op: 'RotateKeyOnDemand', principal: { name: 'gateway' }, keyId: key.keyId };
  const r = await auditedGatewayRequest(deps.audit, described, (trace) => rotateKey(deps, key, 'AUTOMATIC', trace), { request: `rotation-${randomUUID()}`, detail: { rotationType: 'AUTOMATIC' } });
  if (!r.ok) deps.log.error({ keyId: key.keyId, err: r.reason }, 'automatic key rotation failed; the next sweep tries again');
}

/** Rotates every Enabled key whose automatic rotation is due; answers a stop function. */
export function startKeyRotation(deps: Pick<GatewayDeps, 'cluster' | 'kmsState' | 'log' | 'audit'>): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void (async () => {
      for (const key of deps.cluster.keys.list()) {
        if (key.state !== 'Enabled' || !key.rotation?.enabled || (key.rotation.next ?? Infinity) > Date.now()) continue;
        await rotateAudited(deps, key);
      }
    })().finally(() => (running = false));
  }, ROTATION_SWEEP_MS);
  timer.unref();
  return () => clearInterval(timer);
}
