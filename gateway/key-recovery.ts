// Recovering the gateway's record of a key the signers hold committed but the gateway has no
// record of (its key file DIR/gateway/keys/KEYID.json deleted or lost), at the gateway's start
// after the interrupted creations are finished and the pending shares swept. Without it such a
// key has no way out: it is absent from the API (NotFoundException), so it can be neither used
// nor scheduled for deletion, and a signer never forgets a committed key on the gateway's word.
// Recovered, it is back in the API, and the operator keeps it or removes it under governance
// with an approved ScheduleKeyDeletion.
//
// The record is rebuilt only from what the signers agree on: at least the key's threshold of
// them must hold it committed with the same public package and the same policy record (spec,
// usage, origin, state, policy), and no signer holding a share of it may report it otherwise; its
// holders are the signers that reported a share, and those of its package's participants that
// could not be asked (a signer down now is not struck off). Anything less is left alone, for
// `mpchsm doctor` to keep naming. Recovery only reads at the signers: it changes nothing there.
// Each recovered key is one gateway audit entry (op RecoverKey) naming the signers it was
// rebuilt from, and a warning in the log. The description, tags and a symmetric key's rotated
// materials and automatic rotation setting come back as the holders agree on them too; after the loss of the whole gateway
// directory (gateway/gateway-recovery.ts) every key is recovered this way, each read recorded
// at the signers (`recovery`).
import { randomUUID } from 'node:crypto';
import { canonicalJson } from '../contract/canonical.js';
import { isKeySpec, SYMMETRIC_KEY_SPEC } from '../contract/keys/specs.js';
import type { InventoryEntry } from '../contract/signer-rpc/keys.js';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import { publicPackageSchema } from '../signers/protocols/dkg.js';
import { keyPackageSchema } from '../signers/protocols/key-package.js';
import { recordOfCreation, schemeOfSpec } from './create-journal.js';
import type { GatewayDeps } from './deps.js';
import { DAY_MS } from './key-rotation.js';
import type { KeyRecord } from './keys.js';
import type { SignerClient } from './signer-client.js';

type Deps = Pick<GatewayDeps, 'cluster' | 'audit' | 'log' | 'kmsState'>;

export interface RecoveryOutcome {
  keyId: string;
  /** Recovered, or why not. */
  recovered: boolean;
  why?: string;
}

/**
 * Recovers the record of every committed key the signers hold and the gateway lacks; one audit
 * entry per key recovered. `recovery`: the gateway's directory was lost, the signers record the reads.
 */
export async function recoverKeys(deps: Deps, recovery = false): Promise<RecoveryOutcome[]> {
  const asked = recovery ? { recovery: true as const } : {};
  const { cluster, log } = deps;
  const lacking = new Map<string, SignerClient[]>();
  const unasked: number[] = [];
  // Read in parallel (a hung signer costs one call's bound), then taken in the signers' order.
  const active = cluster.active;
  const inventories = await Promise.allSettled(active.map((c) => c.call(signerRoutes.keys.inventory, asked)));
  active.forEach((c, i) => {
    const inventory = inventories[i]!;
    if (inventory.status === 'rejected') {
      unasked.push(c.id);
      log.warn({ signer: c.name, err: (inventory.reason as Error).message }, "a signer's key inventory could not be read: keys only it holds are not recovered now");
      return;
    }
    for (const k of inventory.value.keys) {
      // A policy record without a share (an admitted signer never dealt one, a share lost) holds nothing to recover from.
      if (!k.share || cluster.keys.get(k.keyId) || cluster.creations.get(k.keyId)) continue;
      lacking.set(k.keyId, [...(lacking.get(k.keyId) ?? []), c]);
    }
  });
  const out: RecoveryOutcome[] = [];
  for (const [keyId, reporting] of lacking) {
    try {
      const why = await recover(deps, keyId, reporting, unasked, asked);
      out.push(why === undefined ? { keyId, recovered: true } : { keyId, recovered: false, why });
      if (why !== undefined) log.error({ keyId, why }, "the signers hold a key the gateway has no record of, and it cannot be recovered; doctor names it");
    } catch (e) {
      out.push({ keyId, recovered: false, why: (e as Error).message });
      log.error({ keyId, err: (e as Error).message }, 'the record of a key the signers hold could not be recovered');
    }
  }
  return out;
}

/** Recovers one key; answers why not, if not. */
async function recover(deps: Deps, keyId: string, reporting: SignerClient[], unasked: readonly number[], asked: { recovery?: true }): Promise<string | undefined> {
  const startedAt = Date.now();
  const entries = await Promise.all(reporting.map(async (c) => ({ c, e: (await c.call(signerRoutes.keys.inventory, { keyId, ...asked })).keys.find((k) => k.keyId === keyId) })));
  const names = (cs: { c: SignerClient }[]) => cs.map((x) => x.c.name).join(', ');
  const unusable = entries.filter(({ e }) => !e || e.state !== 'committed' || !e.share || !e.policy || e.publicPackage === undefined || !e.key);
  if (unusable.length > 0) return `${names(unusable)} hold(s) it not committed, unreadable or without its policy record`;
  const agreed = new Set(entries.map(({ e }) => canonicalJson(agreedPart(e!))));
  if (agreed.size > 1) return `the signers holding it (${names(entries)}) disagree about its public package or policy record`;
  const first = entries[0]!.e!;
  const key = first.key!;
  const pkg = keyPackageSchema.parse(first.publicPackage);
  const reporters = entries.map(({ c }) => c.id);
  if (reporters.length < pkg.threshold) return `only ${names(entries)} hold(s) it, fewer than its threshold of ${pkg.threshold}`;
  const strangers = reporters.filter((id) => !pkg.participants.includes(id));
  if (strangers.length > 0) return `parties ${strangers.join(', ')} hold(s) it but are not among its package's participants`;
  const scheme = isKeySpec(key.keySpec) || key.keySpec === SYMMETRIC_KEY_SPEC ? schemeOfSpec(key.keySpec) : undefined;
  if (!scheme) return `its key spec ${key.keySpec} is not one this gateway makes`;
  const holders = [...reporters, ...unasked.filter((id) => pkg.participants.includes(id))].sort((a, b) => a - b);
  const creationDate = Math.min(...entries.map(({ e }) => e!.key!.createdAt));
  const deletionDates = entries.flatMap(({ e }) => e!.key!.deletionDate ?? []);
  const rotation = rotationOf(key, Date.now());
  const materials = (first.materials ?? []).map((m) => ({ id: m.id, frost: publicPackageSchema.parse(m.publicPackage), createdAt: creationDate, rotationType: 'ON_DEMAND' as const }));
  const record: KeyRecord = {
    ...recordOfCreation({ keyId, scheme, keySpec: key.keySpec, keyUsage: key.keyUsage, origin: key.origin, description: key.description ?? '', creationDate, participants: holders, threshold: pkg.threshold }, pkg),
    state: key.state,
    tags: key.tags ?? [],
    // Rotated materials, under the ids their ciphertexts name; when and how each was made the signers do not keep.
    ...(materials.length > 0 ? { materials } : {}),
    ...(rotation ? { rotation } : {}),
    // The latest a holder may destroy its share: the deletion is not due before then anywhere.
    ...(deletionDates.length > 0 ? { deletionDate: Math.max(...deletionDates) } : {}),
  };
  await deps.cluster.keys.put(record);
  // The policy the signers enforce is the one the gateway shows.
  if (deps.kmsState.policy(keyId) !== key.policy) await deps.kmsState.exclusive(() => deps.kmsState.putPolicy(keyId, key.policy));
  const signers = entries.map(({ c }) => ({ name: c.name, id: c.id }));
  deps.log.warn({ keyId, keySpec: key.keySpec, state: key.state, signers: signers.map((s) => s.name) }, "the gateway had no record of a key the signers hold committed: recovered from them; keep it, or remove it with ScheduleKeyDeletion under governance");
  await deps.audit.append({
    request: randomUUID(),
    op: 'RecoverKey',
    keyId,
    signers,
    outcome: 'ok',
    output: 'none',
    startedAt,
    detail: { recovered: true, keySpec: key.keySpec, state: key.state },
  });
  return undefined;
}

/** What every holder must report alike: the public package, the policy record (but not its own clock's dates), the rotated materials. */
const agreedPart = (e: InventoryEntry) => {
  const { createdAt: _c, deletionDate: _d, ...key } = e.key!;
  return { publicPackage: e.publicPackage, key, materials: e.materials ?? [] };
};

/** The automatic rotation the holders keep; when the next falls due they do not know: a whole period from now. */
function rotationOf(r: InventoryEntry['key'] & object, now: number): KeyRecord['rotation'] {
  if (!r.rotation) return undefined;
  return { ...r.rotation, ...(r.rotation.enabled ? { next: now + r.rotation.periodDays * DAY_MS } : {}) };
}
