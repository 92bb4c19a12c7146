// A backup file examined as `backup verify` and `signer restore` both need it: parsed, its
// custodian checked, its cluster compared with the cluster directory named (if any), opened with
// the custodian's key and every share checked against its public package; naming a running
// cluster, each share compared with the key's current package and the epoch with the signers'.
// The verdict says the first thing wrong; the opened records are the caller's to wipe.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { readGenesis } from '../../policy/index.js';
import { compareRemotely, compareWithCluster, clusterIdOf, type ClusterComparison } from './cluster-state.js';
import { custodianPaths, openCustodian, readCustodianFile, type CustodianFile } from './custodian.js';
import { BackupFileError, openBackup, parseBackup, type BackupHeader } from './format.js';
import { verifyShares, type ShareResult } from './verify.js';

export type Verdict = 'verified' | 'bad' | 'stale' | 'epoch-unknown' | 'tampered' | 'malformed' | 'unsupported-version' | 'other-custodian' | 'other-cluster';

export interface Examined {
  verdict: Verdict;
  problem?: string;
  header?: BackupHeader;
  shares?: ShareResult[];
  cluster?: ClusterComparison;
  /** The custodian whose key opened the file, and the SHA-256 of the bytes examined. */
  custodian?: CustodianFile;
  sha256?: string;
  /** The opened records (share and other), when the file opened: the caller wipes them. */
  records?: Map<string, Uint8Array>;
}

/** The running cluster a backup is compared with: `mpchsm up`'s directory, or from another host its genesis and a principal's directory. */
export type ClusterTarget = { dir: string } | { remote: { genesis: string; as: string; dir: string } };

/**
 * Examines FILE with the custodian in K (its passphrase asked only once the file is found to be
 * for it). `stage` is told each step after the passphrase (for a command's progress line).
 */
export async function examineBackup(file: string, K: string, cluster: ClusterTarget | undefined, custodianSecret: () => Promise<Uint8Array>, stage: (what: string) => void = () => undefined): Promise<Examined> {
  let parsed;
  let mine: CustodianFile;
  const bytes = new Uint8Array(await readFile(file));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  try {
    parsed = parseBackup(bytes);
    mine = readCustodianFile(custodianPaths(K).file);
    if (parsed.header.custodian !== mine.Fingerprint)
      throw new BackupFileError('other-custodian', `the backup was sealed to custodian ${parsed.header.custodian.slice(0, 16)}…, not to ${mine.Name} in ${K} (${mine.Fingerprint.slice(0, 16)}…)`);
  } catch (e) {
    if (e instanceof BackupFileError) return { verdict: e.code, problem: e.message };
    throw e;
  }
  const header = parsed.header;
  if (cluster !== undefined) {
    const [id, where] = 'dir' in cluster ? [clusterIdOf(cluster.dir), `the cluster in ${cluster.dir}`] : [readGenesis(cluster.remote.genesis).clusterId, `the cluster of ${cluster.remote.genesis}`];
    if (id !== header.clusterId) return { verdict: 'other-cluster', header, problem: `the backup is of cluster ${header.clusterId}, not of ${where} (${id})` };
  }
  const secret = await custodianSecret();
  stage('opening the backup with the custodian key');
  let records: Map<string, Uint8Array>;
  try {
    const { privateKey } = await openCustodian(K, secret);
    records = await openBackup(parsed, privateKey);
  } catch (e) {
    if (e instanceof BackupFileError) return { verdict: e.code, header, problem: e.message };
    throw e;
  } finally {
    secret.fill(0);
  }
  stage(`verifying its shares${cluster === undefined ? '' : ' and comparing them with the running cluster'}`);
  const shares = verifyShares(header, records);
  const compared = cluster === undefined ? undefined : 'dir' in cluster ? await compareWithCluster(cluster.dir, header, shares) : await compareRemotely(cluster.remote, header, shares);
  // Naming a cluster, a backup is current only if its epoch is known to be: a gateway hiding the reports fails closed.
  const verdict: Verdict = shares.some((s) => s.status === 'bad')
    ? 'bad'
    : shares.some((s) => s.status === 'stale') || compared?.epochStatus === 'older'
      ? 'stale'
      : compared && compared.epochStatus !== 'current'
        ? 'epoch-unknown'
        : 'verified';
  return { verdict, header, shares, ...(compared ? { cluster: compared } : {}), custodian: mine, sha256, records };
}
