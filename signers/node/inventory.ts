// What a signer holds, for the gateway resuming an interrupted key creation and for
// `mpchsm doctor` comparing inventories: every key it keeps a policy record or a share of,
// read from the sealed store as it is now (a record deleted behind the signer's back shows),
// with the hashes of its public key and public package; for one key asked for, also its public
// package and policy record (what a gateway that lost its record of the key rebuilds it from),
// and a symmetric key's rotated materials. Asked for a gateway's recovery (`recovery`), it also
// answers this signer's aliases and the last numbered change it processed, and records the read.
import { createHash } from 'node:crypto';
import { keys as keyRoutes, type InventoryEntry } from '../../contract/signer-rpc/keys.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';
import { keyPackageSchema, packageDigest, publicKeyOfPackage } from '../protocols/key-package.js';
import type { PolicyGuard } from './guard/index.js';
import { recordPackage } from './key-records.js';
import { keyRecordName } from './relay.js';
import type { Answer } from './rpc.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const SHARE_PREFIX = keyRecordName('');
const materialPrefix = (keyId: string) => `material.${keyId}.`;

/** The inventory route's answer; for a recovery, with the aliases and change number, and recorded in this signer's audit log. */
export async function inventoryAnswer(store: ShareStore, guard: PolicyGuard, body: unknown): Promise<Answer<typeof keyRoutes.inventory>> {
  const req = keyRoutes.inventory.request.parse(body);
  const keys = await inventory(store, guard, req);
  if (!req.recovery) return { keys };
  const state = guard.recoveryState();
  const seq = guard.epoch.ledgerSeq;
  const detail: Record<string, number | string> = req.keyId === undefined ? { keys: keys.length, aliases: Object.keys(state.aliases).length, seq } : { keyId: req.keyId };
  return { keys, ...state, seq, recorded: { request: 'gateway-recovery', ...(req.keyId === undefined ? {} : { keyId: req.keyId }), detail } };
}

/**
 * Every key held here (or only `keyId`, then with its public package; or, `pending`, only those
 * not committed, without hashes). A share without a policy record (a signer stopped between
 * storing one and the other) was never committed: pending.
 */
export async function inventory(store: ShareStore, guard: PolicyGuard, req: { keyId?: string | undefined; pending?: true | undefined }): Promise<InventoryEntry[]> {
  const records = new Map(guard.inventory().map((k) => [k.keyId, k.pending]));
  const shares = new Set((await store.list()).filter((n) => n.startsWith(SHARE_PREFIX)).map((n) => n.slice(SHARE_PREFIX.length)));
  const ids = req.keyId === undefined ? [...new Set([...records.keys(), ...shares])].sort() : [req.keyId].filter((id) => records.has(id) || shares.has(id));
  const out: InventoryEntry[] = [];
  for (const id of ids) {
    const entry: InventoryEntry = { keyId: id, state: records.get(id) === false ? 'committed' : 'pending', share: shares.has(id), policy: records.has(id) };
    if (req.pending && entry.state === 'committed') continue;
    const raw = entry.share && !req.pending ? await store.get(keyRecordName(id)) : undefined;
    if (raw) {
      try {
        const pkg = keyPackageSchema.parse(recordPackage(raw));
        Object.assign(entry, { publicKey: sha256(publicKeyOfPackage(pkg)), package: packageDigest(pkg) }, req.keyId === undefined ? {} : { publicPackage: pkg });
      } catch {
        // A share this signer cannot read has no package to report: `share` stays true, the hashes absent.
      } finally {
        raw.fill(0);
      }
    }
    const key = req.keyId === undefined ? undefined : guard.keyRecord(id);
    if (key) entry.key = key;
    if (req.keyId !== undefined) {
      const materials = await materialsOf(store, id);
      if (materials.length > 0) entry.materials = materials;
    }
    out.push(entry);
  }
  return out;
}

/** A symmetric key's rotated materials held here (signers/node/tprf.ts `materialRecordName`), by id, with their public packages. */
async function materialsOf(store: ShareStore, keyId: string): Promise<NonNullable<InventoryEntry['materials']>> {
  const out: NonNullable<InventoryEntry['materials']> = [];
  for (const name of (await store.list()).filter((n) => n.startsWith(materialPrefix(keyId)))) {
    const id = Number(name.slice(materialPrefix(keyId).length));
    const raw = await store.get(name);
    if (!raw || !Number.isInteger(id) || id < 2) continue;
    try {
      out.push({ id, publicPackage: keyPackageSchema.parse(recordPackage(raw)) });
    } catch {
      // A material this signer cannot read is not reported: recovery then lacks this holder's word for it.
    } finally {
      raw.fill(0);
    }
  }
  return out.sort((a, b) => a.id - b.id);
}
