// `mpchsm doctor`'s section built from the parties' signed posture reports (cli/posture/): asks
// them through the gateway, checks each against its pinned identity and the nonce drawn here,
// and turns them into findings, a table and the segmentation verdict. Shared by the local form
// (pins from the cluster directory, asked as its auditor) and the remote one (pins from the genesis).
import { fingerprint } from '../../contract/identity/identity.js';
import { verifyTpmQuote } from '../../signers/node/tpm/attestation.js';
import { fetchPosture, type Asker, type PartyPosture, type Pins } from '../posture/evidence.js';
import { ROW_HEADER, segmentation } from '../posture/segmentation.js';

export interface ReportsSection {
  findings: { code: string; message: string }[];
  verdict: string;
  /** Reports refused (forged, replayed, another party's): each makes the exit status 1. */
  refused: number;
  /** Signers that gave a valid report. */
  reported: number;
  table: string[];
  /** Each reporting signer's last backup made, by its own signed word (never verified by it). */
  backups: string[];
}

/** Formats rows as aligned columns, two spaces apart, the last column unpadded. */
export function columns(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => '  ' + r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!))).join('  '));
}

/** The report section, or why the reports could not be asked (the gateway unreachable, no credentials). */
export async function signedReports(asker: Asker, pins: Pins): Promise<ReportsSection | string> {
  let got: Awaited<ReturnType<typeof fetchPosture>>;
  try {
    got = await fetchPosture(asker, pins);
  } catch (e) {
    return (e as Error).message;
  }
  const findings: ReportsSection['findings'] = [];
  for (const p of got.parties) if (p.problem) findings.push({ code: p.problem.code === 'forged-report' ? 'forged-report' : 'no-report', message: p.problem.message });
  for (const name of got.unpinned) findings.push({ code: 'unpinned-signer', message: `the gateway lists a signer ${name} that ${pins.source} does not pin: its report cannot be checked` });
  findings.push(...(await pcrFindings(got.parties, pins)));
  const signers = got.parties.flatMap((p) => (p.role === 'signer' && p.report ? [p.report] : []));
  const gateway = got.parties.find((p) => p.role === 'gateway')?.report;
  const t = pins.threshold;
  if (t !== undefined && signers.length < t) findings.push({ code: 'too-few-reports', message: `only ${signers.length} of ${pins.signers.length} signers gave a signed report, fewer than the threshold ${t}` });
  const seg = segmentation({ signers, gateway, total: pins.signers.length, threshold: t, administrators: pins.administrators });
  return {
    findings: [...findings, ...seg.findings],
    verdict: seg.verdict,
    refused: got.parties.filter((p) => p.problem?.code === 'forged-report').length,
    reported: signers.length,
    table: seg.rows.length > 0 ? columns([ROW_HEADER, ...seg.rows]) : [],
    backups: signers.length > 0 ? columns([['SIGNER', 'LAST BACKUP MADE', 'CUSTODIAN'], ...signers.map((r) => (r.lastBackup ? [r.party, r.lastBackup.created, `${r.lastBackup.custodianName} (${r.lastBackup.custodian.slice(0, 12)}…)`] : [r.party, 'none recorded', '-']))]) : [],
  };
}

/**
 * A TPM signer whose PCRs, read for its signed report, are not those its attestation quoted at
 * init: its firmware, boot chain or their configuration changed since, or it runs on another TPM.
 * An attestation that does not verify is reported with the signer's files, not here.
 */
async function pcrFindings(parties: readonly PartyPosture[], pins: Pins): Promise<ReportsSection['findings']> {
  const out: ReportsSection['findings'] = [];
  for (const p of parties) {
    const now = p.report?.pcrs;
    const pin = pins.signers.find((s) => s.name === p.name);
    if (!now || pin?.attestation === undefined) continue;
    const quoted = await verifyTpmQuote(pin.attestation, fingerprint(pin.identity)).catch(() => undefined);
    if (quoted && (quoted.pcrs !== now.selection || quoted.pcrDigest !== now.digest))
      out.push({ code: 'pcr-changed', message: `${p.name}'s PCRs ${now.selection} read now (digest ${now.digest.slice(0, 16)}…) are not those its attestation quoted (${quoted.pcrs}, ${quoted.pcrDigest.slice(0, 16)}…): its firmware, boot chain or their configuration changed since, or it runs on another TPM` });
  }
  return out;
}
