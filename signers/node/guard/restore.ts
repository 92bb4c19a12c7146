// Restoring a lost signer (issue #23) under an approved RestoreSigner: its party — name and id
// unchanged, for its shares are bound to the id — gets the new identity its operator made on the
// new host, in place of the lost one, whose envelopes are no longer opened. Each signer checks
// the backup itself against its own records: of this cluster, and every share in it of the key's
// current package (this signer's own share of that key was made in the same generation). A
// backup older than a refresh or a removal is refused: its shares belong to an epoch the cluster
// has left, and old shares beside a removed party's (or another old backup's) can make a
// threshold of that old polynomial — a key anyone holding them could rebuild — so the cluster
// never takes an old epoch back into use (docs/operations.md, "Restoring a signer") — unless the
// quorum approved reviving it (ReviveEpoch): then each such key's revived package is recorded
// here, and this signer, whose own share is of a later sharing, takes part in the resharing from
// the revived one as a receiver (signers/node/reshare.ts), after which its record is cleared.
import { parsePublicIdentity, type PublicIdentity } from '../../../contract/identity/identity.js';
import { signerRestorationSchema, type Proposal } from '../../../policy/index.js';
import { recordPackageDigest } from '../key-records.js';
import { checkRequiredAttestation } from '../tpm/admission.js';
import { allPeers, awaitActivation } from './peers.js';
import { ADMITTED, changeSealed, denied, firstIssue, REVIVED, type GuardState } from './state.js';

/** Re-admits a lost party with its new identity, once its backup is found current here. */
export async function restoreSigner(s: GuardState, proposal: Proposal): Promise<string> {
  const r = signerRestorationSchema.safeParse(proposal.parameters);
  if (!r.success) throw denied(`malformed signer restoration in proposal ${proposal.id}: ${firstIssue(r.error)}`);
  const { Name, Id, Backup } = r.data;
  let identity: PublicIdentity;
  try {
    identity = parsePublicIdentity(r.data.Identity);
  } catch (e) {
    throw denied(`proposal ${proposal.id}: ${(e as Error).message}`);
  }
  // A restored signer is a new identity pinned for a party: admitted under require_attestation only as AddSigner would be.
  if (s.governance.requireAttestation)
    await checkRequiredAttestation(Name, identity, r.data.Attestation).catch((e: Error) => {
      throw denied(`proposal ${proposal.id}: ${e.message}`);
    });
  const peers = allPeers(s);
  const party = peers.find((p) => p.id === Id);
  if (!party || party.name !== Name) throw denied(`${Name} (party ${Id}) is not a signer of this cluster: only a lost signer is restored`);
  if (s.retiredIds.has(Id)) throw denied(`signer ${Name} was removed: a removed signer is never restored`);
  if (Id === s.self.party) throw denied(`this signer is ${Name}: a running signer is not restored in its own place`);
  if (peers.some((p) => p.identity.signPublicKey === identity.signPublicKey || p.identity.kexPublicKey === identity.kexPublicKey))
    throw denied(`the restored ${Name}'s identity is already a signer's: a restored signer makes a new one`);
  if (Backup.ClusterId !== s.registry.clusterId) throw denied(`the backup is of cluster ${Backup.ClusterId}, not of this cluster (${s.registry.clusterId})`);
  const stale = await staleShares(s, Backup.Shares);
  if (stale.length && r.data.ReviveEpoch) {
    await changeSealed(s, REVIVED, 'revived', (current) => {
      const revived = { ...current };
      for (const share of Backup.Shares) if (stale.includes(share.Record) && share.Record === `key.${share.KeyId}`) revived[share.KeyId] = share.Package;
      return revived;
    });
  } else if (stale.length)
    throw denied(`the backup of ${Name} made ${Backup.Created} is stale: ${stale.slice(0, 5).join(', ')}${stale.length > 5 ? ` and ${stale.length - 5} more` : ''} changed since (a refresh or a removal); an older epoch's shares are never taken back`);
  if (s.governance.requireAttestation) await awaitActivation(s, Id, r.data.Attestation);
  await changeSealed(s, ADMITTED, 'admittedPeers', (admitted) => [...admitted.filter((p) => p.id !== Id), { name: Name, id: Id, identity }]);
  return Name;
}

/** The backup's shares whose package is not the one this signer holds for that record now. */
async function staleShares(s: GuardState, shares: readonly { Record: string; KeyId: string; Package: string }[]): Promise<string[]> {
  const stale: string[] = [];
  for (const share of shares) {
    if (!s.keys.has(share.KeyId)) continue; // deleted since: nothing of it is taken back
    const raw = await s.store.get(share.Record);
    // A key this signer holds no share of (made by other holders) it cannot judge: its holders do.
    if (!raw) continue;
    if (recordPackageDigest(raw) !== share.Package) stale.push(share.Record);
  }
  return stale;
}

/** The digest of `keyId`'s package a restoration revived here, if one did. */
export const revivedDigest = (s: GuardState, keyId: string): string | undefined => s.revived[keyId];

/** Once `keyId` is reshared (from its revived sharing or otherwise), no revival of it remains. */
export async function forgetRevived(s: GuardState, keyId: string): Promise<void> {
  await changeSealed(s, REVIVED, 'revived', ({ [keyId]: gone, ...revived }) => (gone === undefined ? undefined : revived));
}
