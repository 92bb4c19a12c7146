// The command lines of backups (shared/CONTRACT.md, "Operations"): `custodian init --dir K`,
// `signer backup --dir S --custodian K/custodian.json --out FILE` and `backup verify FILE
// --custodian-dir K [--dir DIR]`. Passphrases on standard input, as for every party; one line,
// or with --json one JSON object. `backup verify` exits 0 only when every share verified (and,
// naming a cluster, every share is current); otherwise 1, the verdict naming why. Verified
// against a cluster (--dir DIR), the backup is recorded in DIR/custody.jsonl (custody-log.ts).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { readSecretFromStdin } from '../../contract/io/stdin.js';
import { compareWithCluster, clusterIdOf, type ClusterComparison } from './cluster-state.js';
import { custodianInit, custodianPaths, openCustodian, readCustodianFile, type CustodianFile } from './custodian.js';
import { appendRecord, custodyLog } from './custody-log.js';
import { BackupFileError, openBackup, parseBackup, type BackupHeader } from './format.js';
import { signerBackup } from './make.js';
import { verifyShares, type ShareResult } from './verify.js';

interface Values {
  dir?: string | undefined;
  name?: string | undefined;
  custodian?: string | undefined;
  'custodian-dir'?: string | undefined;
  out?: string | undefined;
  json?: boolean | undefined;
  genesis?: string | undefined;
  as?: string | undefined;
}

const say = (json: boolean | undefined, obj: object, line: string) => console.log(json ? JSON.stringify(obj) : line);
const passphrase = (whose: string) => readSecretFromStdin(`${whose} passphrase (on standard input)`);

/** `mpchsm custodian init --dir K [--name NAME]`. */
export async function custodianCommand(positionals: string[], v: Values, dirGiven: boolean): Promise<void> {
  if (positionals[0] !== 'init' || positionals.length !== 1 || !dirGiven) throw new Error("custodian takes 'init --dir K [--name NAME]'");
  const secret = await passphrase("the custodian's");
  try {
    const { file, custodian } = await custodianInit(v.dir!, v.name ?? 'custodian', secret);
    say(v.json, { Name: custodian.Name, File: file, Fingerprint: custodian.Fingerprint }, `${file}: custodian ${custodian.Name}'s public file (fingerprint ${custodian.Fingerprint}); the private key stays sealed in ${v.dir}`);
  } finally {
    secret.fill(0);
  }
}

/** `mpchsm signer backup --dir S --custodian K/custodian.json --out FILE`. */
export async function signerBackupCommand(v: Values, dirGiven: boolean): Promise<void> {
  if (!dirGiven || !v.custodian || !v.out) throw new Error('signer backup needs --dir, --custodian and --out');
  const secret = await passphrase("the signer's store");
  try {
    const { file, header, unrecorded } = await signerBackup({ dir: v.dir!, custodian: v.custodian, out: v.out }, secret);
    if (unrecorded) console.error(`signer backup: ${file} was written, but ${unrecorded}`);
    const keys = new Set(header.shares.map((s) => s.keyId)).size;
    say(
      v.json,
      { File: file, ClusterId: header.clusterId, Signer: header.signer.name, Party: header.signer.party, Custodian: header.custodian, Keys: keys, Shares: header.shares.length, Epoch: header.epoch, Created: header.created },
      `${file}: ${header.signer.name}'s ${header.shares.length} share${header.shares.length === 1 ? '' : 's'} of ${keys} key${keys === 1 ? '' : 's'}, sealed to custodian ${header.custodian.slice(0, 16)}… (governance v${header.epoch.governanceVersion}, change ${header.epoch.ledgerSeq})`,
    );
  } finally {
    secret.fill(0);
  }
}

type Verdict = 'verified' | 'bad' | 'stale' | 'epoch-unknown' | 'tampered' | 'malformed' | 'unsupported-version' | 'other-custodian' | 'other-cluster';

interface Outcome {
  verdict: Verdict;
  problem?: string;
  header?: BackupHeader;
  shares?: ShareResult[];
  cluster?: ClusterComparison;
  /** The custodian whose key opened the file, and the SHA-256 of the bytes verified. */
  custodian?: CustodianFile;
  sha256?: string;
}

async function verify(file: string, v: Values, clusterDir: string | undefined): Promise<Outcome> {
  const K = v['custodian-dir']!;
  let parsed;
  let mine: CustodianFile;
  const bytes = new Uint8Array(await readFile(file));
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
  if (clusterDir !== undefined) {
    const id = clusterIdOf(clusterDir);
    if (id !== header.clusterId) return { verdict: 'other-cluster', header, problem: `the backup is of cluster ${header.clusterId}, not of the cluster in ${clusterDir} (${id})` };
  }
  const secret = await passphrase("the custodian's");
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
  let shares: ShareResult[];
  try {
    shares = verifyShares(header, records);
  } finally {
    for (const r of records.values()) r.fill(0);
  }
  const cluster = clusterDir === undefined ? undefined : await compareWithCluster(clusterDir, header, shares);
  // Naming a cluster, a backup is current only if its epoch is known to be: a gateway hiding the reports fails closed.
  const verdict: Verdict = shares.some((s) => s.status === 'bad')
    ? 'bad'
    : shares.some((s) => s.status === 'stale') || cluster?.epochStatus === 'older'
      ? 'stale'
      : cluster && cluster.epochStatus !== 'current'
        ? 'epoch-unknown'
        : 'verified';
  return { verdict, header, shares, ...(cluster ? { cluster } : {}), custodian: mine, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** `mpchsm backup verify FILE --custodian-dir K [--dir DIR]`; the exit status. */
export async function backupVerifyCommand(positionals: string[], v: Values, dirGiven: boolean): Promise<number> {
  const [sub, file] = positionals;
  if (sub !== 'verify' || !file || positionals.length !== 2 || !v['custodian-dir']) throw new Error("backup takes 'verify FILE --custodian-dir K [--dir DIR]'");
  // From another host the keys' current packages would have to come through the gateway, signed by
  // the signers: no such answer exists yet, and the gateway's own word is not evidence.
  if (v.genesis !== undefined || v.as !== undefined)
    throw new Error('backup verify against a cluster from another host (--genesis … --as …) is not available yet: verify on the cluster\'s host with --dir DIR, or without a cluster');
  const o = await verify(file, v, dirGiven ? v.dir : undefined);
  const h = o.header;
  if (o.verdict === 'verified' && h && o.cluster && o.custodian && o.sha256)
    await appendRecord(custodyLog(v.dir!), {
      Event: 'verified',
      Signer: h.signer.name,
      Party: h.signer.party,
      Custodian: h.custodian,
      CustodianName: o.custodian.Name,
      Created: h.created,
      Epoch: h.epoch,
      Sha256: o.sha256,
      ClusterId: o.cluster.clusterId,
      Shares: o.shares?.length ?? 0,
      Verified: new Date().toISOString(),
    }).catch((e: Error) => console.error(`backup verify: the backup verified, but it could not be recorded in ${custodyLog(v.dir!)} (${e.message}): \`mpchsm doctor\` will not know of it`));
  if (v.json) {
    console.log(
      JSON.stringify({
        File: file,
        Verdict: o.verdict,
        ...(o.problem ? { Problem: o.problem } : {}),
        ...(h ? { ClusterId: h.clusterId, Signer: h.signer.name, Party: h.signer.party, Custodian: h.custodian, Created: h.created, Epoch: h.epoch } : {}),
        ...(o.cluster ? { Cluster: { ClusterId: o.cluster.clusterId, Epoch: o.cluster.epoch, EpochStatus: o.cluster.epochStatus } } : {}),
        ...(o.shares ? { Shares: o.shares.map((s) => ({ KeyId: s.keyId, Record: s.record, KeySpec: s.keySpec, Status: s.status, ...(s.reason ? { Reason: s.reason } : {}) })) } : {}),
      }),
    );
  } else {
    if (h) console.log(`${file}: ${h.signer.name} (party ${h.signer.party}) of cluster ${h.clusterId}, made ${h.created}, governance v${h.epoch.governanceVersion}, change ${h.epoch.ledgerSeq}`);
    for (const s of o.shares ?? []) console.log(`  ${s.status.padEnd(8)} ${s.record}${s.keySpec ? ` (${s.keySpec})` : ''}${s.reason ? `: ${s.reason}` : ''}`);
    if (o.cluster) console.log(`  cluster epoch: ${o.cluster.epochStatus}${o.cluster.epoch ? ` (governance v${o.cluster.epoch.governanceVersion}, change ${o.cluster.epoch.ledgerSeq})` : ''}`);
    console.log(`${o.verdict}${o.problem ? `: ${o.problem}` : ''}`);
  }
  return o.verdict === 'verified' ? 0 : 1;
}
