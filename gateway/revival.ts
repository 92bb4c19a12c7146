// Older sharings revived by approved restorations (issue #23): restoring signers from backups
// older than a refresh, when the quorum approved reviving them (ReviveEpoch), brings back shares
// of a key's earlier sharing. The gateway keeps, per key, that sharing's package and the restored
// holders that hold it; the next resharing of the key (`mpchsm key refresh`) starts from it,
// dealt by those holders, once t of them are active — the others, whose shares are of a later
// sharing, only receive (signers/node/reshare.ts) — and then everyone holds the same new sharing.
// Until then the key is reshared from its current sharing, dealt by its other holders.
import { packageDigest, type KeyPackage } from '../signers/protocols/key-package.js';
import type { SignerRestoration } from '../policy/index.js';
import { packageOf } from './key-package.js';
import type { KeyRecord, KeyStore } from './keys.js';

/** Records the sharings an approved restoration revived, for the keys the gateway has. */
export async function recordRevivals(keys: KeyStore, r: SignerRestoration): Promise<void> {
  if (!r.ReviveEpoch) return;
  for (const v of r.Revived ?? []) {
    const k = keys.get(v.KeyId);
    const digest = packageDigest(v.Package);
    // Only a package the signers checked: one of the backup's shares'.
    if (!k || !r.Backup.Shares.some((s) => s.KeyId === v.KeyId && s.Package === digest)) continue;
    const holders = k.revival?.digest === digest ? k.revival.holders : [];
    await keys.put({ ...k, revival: { package: v.Package, digest, holders: [...new Set([...holders, r.Id])].sort((a, b) => a - b) } });
  }
}

/**
 * What a resharing of `k` among `staying` (its active holders that stay) starts from: the revived
 * sharing, dealt by its holders, where t of them stay; else the current one, dealt by the others.
 */
export function resharePlan(k: KeyRecord, staying: readonly number[]): { old: KeyPackage | undefined; dealers?: number[] } {
  if (!k.revival) return { old: packageOf(k) };
  const revived = k.revival.holders.filter((id) => staying.includes(id));
  if (revived.length >= k.threshold) return { old: k.revival.package, dealers: revived };
  return { old: packageOf(k), dealers: staying.filter((id) => !k.revival!.holders.includes(id)) };
}
