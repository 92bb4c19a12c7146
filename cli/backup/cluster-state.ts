// `backup verify --dir DIR`: a backup compared with the running cluster `mpchsm up` made in DIR.
//  - the cluster: the backup's cluster id must be the genesis's (else: a backup of another cluster);
//  - each share: the key must still exist with the public package the backup holds, as the
//    signers report it (asked over their authenticated channel with the gateway's identity, as
//    `mpchsm doctor` does: doctor/inventory.ts). A refresh or resharing since gives the key new
//    verifying shares: the backed-up share is then stale (it no longer combines with the others);
//  - the epoch: the signers' signed posture reports (asked as DIR's auditor, checked against the
//    identities DIR pins) give the governance version and ledger seq now in force; a backup from
//    before a governance change is older than the cluster's epoch.
import { canonicalJson } from '../../contract/canonical.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { SignerClient } from '../../gateway/signer-client.js';
import { readGenesis } from '../../policy/index.js';
import { readCluster } from '../cluster-dir.js';
import { gatewayIdentity, signerEntries } from '../doctor/inventory.js';
import { fetchPosture, pinsFromDir } from '../posture/evidence.js';
import type { BackupHeader, Epoch } from './format.js';
import type { ShareResult } from './verify.js';

const SIGNER_TIMEOUT_MS = 5000;
/** A share's reason when its key was deleted since the backup. */
export const NO_LONGER_HELD = 'the cluster no longer holds this key';

export interface ClusterComparison {
  clusterId: string;
  /** The cluster's epoch now (the highest a signer reports), when the reports could be had. */
  epoch?: Epoch;
  /** 'current', 'older' (a governance change since), or why it could not be compared. */
  epochStatus: string;
}

/** The backup's cluster id against the genesis in DIR; throws when DIR is no cluster directory. */
export function clusterIdOf(dir: string): string {
  const c = readCluster(dir);
  if (typeof c === 'string') throw new Error(c);
  return readGenesis(c.L.genesis).clusterId;
}

/** Marks stale every verified share whose key the cluster no longer holds with the same public package. */
export async function compareWithCluster(dir: string, header: BackupHeader, results: ShareResult[]): Promise<ClusterComparison> {
  const c = readCluster(dir);
  if (typeof c === 'string') throw new Error(c);
  const clusterId = readGenesis(c.L.genesis).clusterId;
  const identity = await gatewayIdentity(c);
  if (typeof identity === 'string') throw new Error(`the signers' current key packages cannot be asked: ${identity}`);
  const signers = await signerEntries(c);
  // The backed-up signer first: its own package is the one its share must match; the others stand in if it is gone.
  signers.sort((a, b) => Number(b.id === header.signer.party) - Number(a.id === header.signer.party));
  // undefined: no signer holds the key; null: no signer answered (nothing is judged then).
  const current = new Map<string, string | undefined | null>();
  const packageNow = async (keyId: string): Promise<string | undefined | null> => {
    if (current.has(keyId)) return current.get(keyId);
    let found: string | undefined | null = null;
    for (const s of signers) {
      const client = new SignerClient(s, identity, SIGNER_TIMEOUT_MS);
      try {
        const entry = (await client.call(signerRoutes.keys.inventory, { keyId })).keys.find((k) => k.keyId === keyId);
        found = entry?.publicPackage === undefined ? undefined : canonicalJson(entry.publicPackage);
        if (entry) break;
      } catch {
        continue; // unreachable: ask the next holder
      } finally {
        client.close();
      }
    }
    current.set(keyId, found);
    return found;
  };
  for (const r of results) {
    if (r.status !== 'verified') continue;
    const entry = header.shares.find((e) => e.record === r.record)!;
    const now = await packageNow(r.keyId);
    if (now === null) continue;
    if (now === undefined) Object.assign(r, { status: 'stale', reason: NO_LONGER_HELD });
    else if (entry.material === undefined && now !== canonicalJson(entry.publicPackage))
      Object.assign(r, { status: 'stale', reason: "the key's shares were refreshed or reshared since: its public package differs from the backup's" });
  }
  return { clusterId, ...(await epochNow(c.L.root, c.signers, c.threshold, header)) };
}

async function epochNow(root: string, names: string[], threshold: number | undefined, header: BackupHeader): Promise<Omit<ClusterComparison, 'clusterId'>> {
  try {
    const got = await fetchPosture({ dir: root, as: 'auditor' }, pinsFromDir(root, names, threshold));
    const epochs = got.parties.flatMap((p) => (p.role === 'signer' && p.report?.epoch.ledgerSeq !== undefined ? [{ governanceVersion: p.report.epoch.governanceVersion, ledgerSeq: p.report.epoch.ledgerSeq }] : []));
    if (epochs.length === 0) return { epochStatus: 'unknown: no signer gave a signed report' };
    const epoch = epochs.reduce((a, b) => (b.governanceVersion > a.governanceVersion || (b.governanceVersion === a.governanceVersion && b.ledgerSeq > a.ledgerSeq) ? b : a));
    const older = header.epoch.governanceVersion < epoch.governanceVersion || header.epoch.ledgerSeq < epoch.ledgerSeq;
    return { epoch, epochStatus: older ? 'older' : 'current' };
  } catch (e) {
    return { epochStatus: `unknown: ${(e as Error).message}` };
  }
}
