// What a restoration (issue #23) leaves for the next resharing of each key. A signer restored from
// a backup made before a key holds no share of it: it is `missing` from the key's dealers, and
// receives a share when the key is next reshared (`mpchsm key refresh`). A backup older than a
// refresh, restored because the quorum approved reviving it (ReviveEpoch), brings back shares of
// the key's earlier sharing: the gateway keeps that sharing's package and the restored holders
// that hold it, and the next resharing starts from it, dealt by those holders, once t of them are
// active — the others, whose shares are of a later sharing, only receive (signers/node/reshare.ts).
// After a resharing every holder holds the same new sharing, and both are cleared.
import { packageDigest, type KeyPackage } from '../signers/protocols/key-package.js';
import type { SignerRestoration } from '../policy/index.js';
import { packageOf } from './key-package.js';
import type { KeyRecord, KeyStore } from './keys.js';

/** Records what an approved restoration leaves for the keys the gateway has; answers the keys the restored signer holds no share of. */
export async function recordRestoration(keys: KeyStore, r: SignerRestoration): Promise<string[]> {
  const lacking: string[] = [];
  for (const k of keys.list()) {
    if (!k.holders.includes(r.Id)) continue;
    const share = r.Backup.Shares.find((s) => s.Record === `key.${k.keyId}`);
    const v = r.ReviveEpoch ? r.Revived?.find((x) => x.KeyId === k.keyId) : undefined;
    // Only a revived package the signers checked (the backup's share's), older than the current one.
    const current = packageOf(k);
    const digest = v ? packageDigest(v.Package) : undefined;
    const before = k.revival?.digest === digest ? (k.revival?.holders ?? []) : [];
    const revived = v && digest && digest === share?.Package && current && digest !== packageDigest(current) ? { package: v.Package, digest, holders: [...new Set([...before, r.Id])].sort((a, b) => a - b) } : k.revival;
    const missing = [...new Set([...(k.missing ?? []).filter((id) => id !== r.Id), ...(share ? [] : [r.Id])])];
    if (!share) lacking.push(k.keyId);
    const { missing: _before, ...rest } = k;
    await keys.put({ ...rest, ...(revived ? { revival: revived } : {}), ...(missing.length ? { missing } : {}) });
  }
  return lacking;
}

/**
 * What a resharing of `k` among `staying` (its active holders that stay) starts from, and who
 * deals: the revived sharing, by its holders, where t of them stay; else the current one, by the
 * holders that hold it (none restored without it or with an older one).
 */
export function resharePlan(k: KeyRecord, staying: readonly number[]): { old: KeyPackage | undefined; dealers?: number[] } {
  const revived = k.revival?.holders.filter((id) => staying.includes(id)) ?? [];
  if (k.revival && revived.length >= k.threshold) return { old: k.revival.package, dealers: revived };
  const without = [...(k.missing ?? []), ...(k.revival?.holders ?? [])];
  return { old: packageOf(k), ...(without.length ? { dealers: staying.filter((id) => !without.includes(id)) } : {}) };
}
