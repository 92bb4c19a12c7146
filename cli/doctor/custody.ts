// `mpchsm doctor`'s custody section: each signer's last backup (when, to which custodian) and
// whether it was verified, from the two logs cli/backup/custody-log.ts describes — a backup is
// called verified only when DIR/custody.jsonl records `backup verify --dir DIR` passing on the
// very file (its SHA-256); a line of S/backups.jsonl alone is "made, not verified". A custodian
// holding backups of t or more signers could rebuild every key in them: a finding. Every backup
// recorded counts, not only each signer's latest: a custodian keeps what it was given, and
// shares of one sharing combine with each other for good (a refresh only stops them combining
// with the new shares). There is no record of a copy destroyed: that is the custodian's word.
import { list, type Cluster } from '../cluster-dir.js';
import { custodyLog, verifiedSchema } from '../backup/custody-log.js';
import { madeLog, madeSchema, readRecords } from '../../contract/posture/backups.js';
import { columns } from './reports.js';

interface Backup {
  created: string;
  custodian: string;
  custodianName: string;
  /** When `backup verify --dir` passed on this file, if it did (the latest time). */
  verified?: string;
}

export interface CustodySection {
  table: string[];
  findings: { code: string; message: string }[];
  /** Informational: no effect on the exit status or the verdict. */
  notes: { code: string; message: string }[];
}

const short = (b: Backup) => `${b.custodianName} (${b.custodian.slice(0, 12)}…)`;

/** The custody section of the cluster in `c`; damaged log lines go to `refused`. */
export function custodySection(c: Cluster, refused: (message: string) => void): CustodySection {
  const verified = readRecords(custodyLog(c.L.root), verifiedSchema, refused);
  const bySigner = new Map<string, Map<string, Backup>>();
  for (const name of c.signers) {
    const backups = new Map<string, Backup>();
    for (const m of readRecords(madeLog(c.L.signer(name)), madeSchema, refused)) backups.set(m.Sha256, { created: m.Created, custodian: m.Custodian, custodianName: m.CustodianName });
    for (const v of verified.filter((v) => v.Signer === name)) {
      const b = backups.get(v.Sha256) ?? { created: v.Created, custodian: v.Custodian, custodianName: v.CustodianName };
      if (b.verified === undefined || v.Verified > b.verified) b.verified = v.Verified;
      backups.set(v.Sha256, b);
    }
    bySigner.set(name, backups);
  }

  const notes: CustodySection['notes'] = [];
  const rows = c.signers.map((name) => {
    const all = [...bySigner.get(name)!.values()].sort((a, b) => a.created.localeCompare(b.created));
    const last = all.at(-1);
    if (!last) {
      notes.push({ code: 'no-backup', message: `${name} has no backup recorded: if its host is lost, its shares are gone with it` });
      return [name, 'none', '-', '-'];
    }
    const lastVerified = all.filter((b) => b.verified !== undefined).at(-1);
    const status = last.verified
      ? `verified ${last.verified}`
      : `made, not verified${lastVerified ? ` (last verified: made ${lastVerified.created} for ${short(lastVerified)}, verified ${lastVerified.verified})` : ''}`;
    return [name, last.created, short(last), status];
  });

  const findings: CustodySection['findings'] = [];
  const t = c.threshold;
  const holders = new Map<string, { name: string; signers: Set<string> }>();
  for (const [signer, backups] of bySigner)
    for (const b of backups.values()) {
      const h = holders.get(b.custodian) ?? { name: b.custodianName, signers: new Set<string>() };
      h.signers.add(signer);
      holders.set(b.custodian, h);
    }
  for (const [fp, h] of holders)
    if (t !== undefined && h.signers.size >= t)
      findings.push({
        code: 'custodian-holds-threshold',
        message: `custodian ${h.name} (${fp.slice(0, 12)}…) holds backups of ${list([...h.signers].sort())}: ${h.signers.size} of ${c.signers.length}, at least the threshold ${t} — ${h.name} could rebuild every key in them (a later refresh does not undo that: shares of one sharing combine for good)`,
      });

  const header = ['SIGNER', 'LAST BACKUP', 'CUSTODIAN', 'VERIFIED AGAINST THIS CLUSTER'];
  return { table: columns([header, ...rows]), findings, notes };
}
