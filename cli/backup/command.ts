// The command lines of backups (shared/CONTRACT.md, "Operations"): `custodian init --dir K`,
// `signer backup --dir S --custodian K/custodian.json --out FILE`, `backup verify FILE
// --custodian-dir K [--dir DIR]` and `signer restore --dir S --from FILE --custodian-dir K`. Passphrases on standard input, as for every party; one line,
// or with --json one JSON object. `backup verify` exits 0 only when every share verified (and,
// naming a cluster, every share is current); otherwise 1, the verdict naming why. Verified
// against a cluster (--dir DIR), the backup is recorded in DIR/custody.jsonl (custody-log.ts).
import { readSecretFromStdin } from '../../contract/io/stdin.js';
import { DEFAULT_TCTI } from '../../signers/node/tpm/tools.js';
import { LiveProgress } from '../progress.js';
import { custodianInit } from './custodian.js';
import { appendRecord, custodyLog } from './custody-log.js';
import { examineBackup } from './examine.js';
import { signerBackup } from './make.js';
import { RestoreRefused, signerRestore } from './restore.js';

interface Values {
  dir?: string | undefined;
  name?: string | undefined;
  custodian?: string | undefined;
  'custodian-dir'?: string | undefined;
  out?: string | undefined;
  from?: string | undefined;
  'revive-epoch'?: boolean | undefined;
  json?: boolean | undefined;
  genesis?: string | undefined;
  as?: string | undefined;
  seal?: string | undefined;
  tcti?: string | undefined;
  pcrs?: string | undefined;
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
  // A TPM-sealed store reads no passphrase (signer start alike).
  const { file, header, unrecorded } = await signerBackup({ dir: v.dir!, custodian: v.custodian, out: v.out }, () => passphrase("the signer's store"));
  if (unrecorded) console.error(`signer backup: ${file} was written, but ${unrecorded}`);
  const keys = new Set(header.shares.map((s) => s.keyId)).size;
  say(
    v.json,
    { File: file, ClusterId: header.clusterId, Signer: header.signer.name, Party: header.signer.party, Custodian: header.custodian, Keys: keys, Shares: header.shares.length, Epoch: header.epoch, Created: header.created },
    `${file}: ${header.signer.name}'s ${header.shares.length} share${header.shares.length === 1 ? '' : 's'} of ${keys} key${keys === 1 ? '' : 's'}, sealed to custodian ${header.custodian.slice(0, 16)}… (governance v${header.epoch.governanceVersion}, change ${header.epoch.ledgerSeq})`,
  );
}

/** `mpchsm backup verify FILE --custodian-dir K [--dir DIR]`; the exit status. */
export async function backupVerifyCommand(positionals: string[], v: Values, dirGiven: boolean): Promise<number> {
  const [sub, file] = positionals;
  if (sub !== 'verify' || !file || positionals.length !== 2 || !v['custodian-dir']) throw new Error("backup takes 'verify FILE --custodian-dir K [--dir DIR]'");
  // From another host the keys' current packages come in the signers' signed reports, through the gateway.
  if ((v.genesis === undefined) !== (v.as === undefined)) throw new Error('backup verify from another host takes both --genesis and --as (with --dir, the principal\'s directory)');
  const remote = v.genesis !== undefined && v.as !== undefined ? { genesis: v.genesis, as: v.as, dir: v.dir! } : undefined;
  // The line starts once the passphrase is read: it never draws over the prompt.
  const progress = new LiveProgress();
  const o = await examineBackup(file, v['custodian-dir'], remote ? { remote } : dirGiven ? { dir: v.dir! } : undefined, () => passphrase("the custodian's"), (what) => progress.show(`mpchsm: backup verify: ${what}`)).finally(() => progress.clear());
  for (const r of o.records?.values() ?? []) r.fill(0);
  const h = o.header;
  // Recorded in the cluster's own directory, for `doctor` there; from another host there is none.
  if (o.verdict === 'verified' && !remote && h && o.cluster && o.custodian && o.sha256)
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

/** `mpchsm signer restore --dir S --from FILE --custodian-dir K`; the exit status (1: the backup was refused, its verdict said). */
export async function signerRestoreCommand(v: Values, dirGiven: boolean): Promise<number> {
  if (!dirGiven || !v.from || !v['custodian-dir']) throw new Error('signer restore needs --dir, --from and --custodian-dir');
  try {
    if (v.seal !== undefined && v.seal !== 'software' && v.seal !== 'tpm') throw new Error(`signer restore --seal is software or tpm, not '${v.seal}'`);
    if ((v.tcti !== undefined || v.pcrs !== undefined) && v.seal !== 'tpm') throw new Error('--tcti and --pcrs go with signer restore --seal tpm');
    const seal = v.seal === 'tpm' ? { tcti: v.tcti ?? DEFAULT_TCTI, pcrs: v.pcrs } : undefined;
    const r = await signerRestore({ dir: v.dir!, from: v.from, custodianDir: v['custodian-dir'], reviveEpoch: v['revive-epoch'] ?? false, seal });
    const n = r.restoration.Backup.Shares.length;
    say(
      v.json,
      { File: r.file, ReviveEpoch: r.restoration.ReviveEpoch ?? false, Name: r.restoration.Name, Party: r.restoration.Id, Fingerprint: r.fingerprint, Shares: n, Dropped: r.dropped, ComparedWithCluster: r.compared, Backup: r.restoration.Backup.Sha256 },
      [
        `${v.dir}: ${r.restoration.Name} (party ${r.restoration.Id}) restored with ${n} share${n === 1 ? '' : 's'} and a new identity (fingerprint ${r.fingerprint})`,
        ...(r.dropped.length ? [`  left out (keys deleted since the backup): ${r.dropped.join(', ')}`] : []),
        r.compared ? '  every share is the key\'s current one' : '  not compared with a running cluster here: each signer compares the shares when the restoration is approved',
        `next: start it (mpchsm signer start --dir ${v.dir} --genesis …), then an administrator proposes ${r.file} (mpchsm signer rejoin ${r.file} --as ADMIN) and the quorum approves`,
      ].join('\n'),
    );
    return 0;
  } catch (e) {
    if (!(e instanceof RestoreRefused)) throw e;
    say(v.json, { Verdict: e.verdict, Problem: e.message }, `refused (${e.verdict}): ${e.message}`);
    return 1;
  }
}
