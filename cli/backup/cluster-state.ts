// `backup verify --dir DIR`: a backup compared with the running cluster `mpchsm up` made in DIR.
//  - the cluster: the backup's cluster id must be the genesis's (else: a backup of another cluster);
//  - each share: the key must still exist with the public package the backup holds, as the
//    signers report it (asked over their authenticated channel with the gateway's identity, as
//    `mpchsm doctor` does: doctor/inventory.ts). A refresh or resharing since gives the key new
//    verifying shares: the backed-up share is then stale (it no longer combines with the others);
//  - the epoch: the signers' signed posture reports (asked as DIR's auditor, checked against the
//    identities DIR pins) give the governance version and ledger seq now in force; a backup from
//    before a governance change is older than the cluster's epoch.
// From another host (`--genesis … --as … --dir A`) both come from the signers' posture reports,
// relayed by the gateway and checked against the genesis's pins: each lists the package digest
// of every key share its signer holds, under its signature, so the gateway can neither invent
// nor hide a change (a report it withholds leaves the key unjudged, and the epoch unknown).
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { SignerClient } from '../../gateway/signer-client.js';
import { readGenesis } from '../../policy/index.js';
import { readCluster } from '../cluster-dir.js';
import { gatewayIdentity, signerEntries } from '../doctor/inventory.js';
import { fetchPosture, pinsFor, pinsFromDir, type PartyPosture } from '../posture/evidence.js';
import type { PostureReport } from '../../contract/posture/report.js';
import { packageDigest } from '../../signers/protocols/key-package.js';
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

/**
 * Marks stale every verified share whose key the cluster holds no more or, a key's own share, under
 * another package. `now`: the key's current package digests as the signers report them ([]: none
 * holds it; null: none could say, and nothing is judged).
 */
async function markStale(header: BackupHeader, results: ShareResult[], now: (keyId: string) => Promise<readonly string[] | null>): Promise<void> {
  for (const r of results) {
    if (r.status !== 'verified') continue;
    const entry = header.shares.find((e) => e.record === r.record)!;
    const digests = await now(r.keyId);
    if (digests === null) continue;
    if (digests.length === 0) Object.assign(r, { status: 'stale', reason: NO_LONGER_HELD });
    else if (entry.material === undefined && digests.some((d) => d !== packageDigest(entry.publicPackage)))
      Object.assign(r, { status: 'stale', reason: "the key's shares were refreshed or reshared since: its public package differs from the backup's" });
  }
}

/** Compares the backup with the cluster `mpchsm up` runs in DIR, asking its signers over the gateway's channel. */
export async function compareWithCluster(dir: string, header: BackupHeader, results: ShareResult[]): Promise<ClusterComparison> {
  const c = readCluster(dir);
  if (typeof c === 'string') throw new Error(c);
  const clusterId = readGenesis(c.L.genesis).clusterId;
  const identity = await gatewayIdentity(c);
  if (typeof identity === 'string') throw new Error(`the signers' current key packages cannot be asked: ${identity}`);
  const signers = await signerEntries(c);
  // The backed-up signer first: its own package is the one its share must match; the others stand in if it is gone.
  signers.sort((a, b) => Number(b.id === header.signer.party) - Number(a.id === header.signer.party));
  // The key's package digest as the first signer holding it reports it; [] none holds it; null none answered.
  const current = new Map<string, string[] | null>();
  const packageNow = async (keyId: string): Promise<string[] | null> => {
    if (current.has(keyId)) return current.get(keyId)!;
    let found: string[] | null = null;
    for (const s of signers) {
      const client = new SignerClient(s, identity, SIGNER_TIMEOUT_MS);
      try {
        const entry = (await client.call(signerRoutes.keys.inventory, { keyId })).keys.find((k) => k.keyId === keyId);
        found = entry?.package === undefined ? [] : [entry.package];
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
  await markStale(header, results, packageNow);
  return { clusterId, ...(await epochNow(c.L.root, c.signers, c.threshold, header)) };
}

async function epochNow(root: string, names: string[], threshold: number | undefined, header: BackupHeader): Promise<Omit<ClusterComparison, 'clusterId'>> {
  try {
    return epochOf(signerReports(await fetchPosture({ dir: root, as: 'auditor' }, pinsFromDir(root, names, threshold))), header);
  } catch (e) {
    return { epochStatus: `unknown: ${(e as Error).message}` };
  }
}

const signerReports = (got: { parties: PartyPosture[] }): PostureReport[] => got.parties.flatMap((p) => (p.role === 'signer' && p.report ? [p.report] : []));

/** The cluster's epoch (the highest a signer reports, signed) against the backup's. */
function epochOf(reports: readonly PostureReport[], header: BackupHeader): Omit<ClusterComparison, 'clusterId'> {
  const epochs = reports.flatMap((r) => (r.epoch.ledgerSeq !== undefined ? [{ governanceVersion: r.epoch.governanceVersion, ledgerSeq: r.epoch.ledgerSeq }] : []));
  if (epochs.length === 0) return { epochStatus: 'unknown: no signer gave a signed report' };
  const epoch = epochs.reduce((a, b) => (b.governanceVersion > a.governanceVersion || (b.governanceVersion === a.governanceVersion && b.ledgerSeq > a.ledgerSeq) ? b : a));
  const older = header.epoch.governanceVersion < epoch.governanceVersion || header.epoch.ledgerSeq < epoch.ledgerSeq;
  return { epoch, epochStatus: older ? 'older' : 'current' };
}

/** As compareWithCluster, from another host: the keys' packages and the epoch from the signers' signed reports. */
export async function compareRemotely(remote: { genesis: string; as: string; dir: string }, header: BackupHeader, results: ShareResult[]): Promise<ClusterComparison> {
  const clusterId = readGenesis(remote.genesis).clusterId;
  let reports: PostureReport[];
  try {
    reports = signerReports(await fetchPosture({ dir: remote.dir, as: remote.as }, pinsFor(remote.genesis), { packages: true }));
  } catch (e) {
    return { clusterId, epochStatus: `unknown: ${(e as Error).message}` };
  }
  const listing = reports.filter((r) => r.packages !== undefined);
  await markStale(header, results, async (keyId) => (listing.length === 0 ? null : listing.flatMap((rep) => rep.packages![`key.${keyId}`] ?? [])));
  return { clusterId, ...(listing.length ? epochOf(reports, header) : { epochStatus: 'unknown: no signer listed its key packages in a signed report' }) };
}
