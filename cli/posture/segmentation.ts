// `mpchsm doctor`'s verdict on segmentation, computed from the parties' signed posture reports
// (evidence.ts): which signers share an operator (the account running the process, on its
// host), an admin (the account owning its files) or a host, whether any t of them do — then
// they can act without anyone else — and otherwise which parties are independent. The reports
// are each party's own word about its host: the verdict is as true as they are.
import type { PostureReport } from '../../contract/posture/report.js';
import { list } from '../cluster-dir.js';

export interface SegmentationFinding {
  code: string;
  message: string;
}

export interface Segmentation {
  findings: SegmentationFinding[];
  /** One line: "verdict: …". */
  verdict: string;
  /** For the table: each reporting signer's host, operator, admin, sealing, epoch and log head. */
  rows: string[][];
}

export const ROW_HEADER = ['PARTY', 'HOST', 'OPERATOR', 'ADMIN', 'SEALING', 'EPOCH', 'AUDIT HEAD'];

const account = (a: PostureReport['operator'], r: PostureReport) => `${a.user} (${a.uid}) on ${r.hostname}`;
const hostKey = (r: PostureReport) => r.hostId;
const operatorKey = (r: PostureReport) => `${r.hostId}:${r.operator.uid}`;
const adminKey = (r: PostureReport) => `${r.hostId}:${r.admin.uid}`;

/** Groups of two or more reports sharing a value. */
function shared(reports: PostureReport[], key: (r: PostureReport) => string): PostureReport[][] {
  const m = new Map<string, PostureReport[]>();
  for (const r of reports) m.set(key(r), [...(m.get(key(r)) ?? []), r]);
  return [...m.values()].filter((g) => g.length > 1);
}

const row = (r: PostureReport) => [
  r.party,
  `${r.hostname} (${r.hostId.slice(0, 12)})`,
  `${r.operator.user} (${r.operator.uid})`,
  `${r.admin.user} (${r.admin.uid})`,
  r.seal,
  `governance v${r.epoch.governanceVersion}${r.epoch.ledgerSeq === undefined ? '' : `, change ${r.epoch.ledgerSeq}`}`,
  `${r.auditHead.seq} ${r.auditHead.hash.slice(0, 12)}`,
];

/**
 * The verdict from the signers' reports (`signers`, all of the cluster's signers that reported)
 * and the gateway's; `total` signers are pinned, `threshold` of them sign.
 */
export function segmentation(o: { signers: PostureReport[]; gateway?: PostureReport | undefined; total: number; threshold?: number | undefined; administrators?: string[] | undefined }): Segmentation {
  const findings: SegmentationFinding[] = [];
  const find = (code: string, message: string) => findings.push({ code, message });
  const { signers } = o;
  const t = o.threshold ?? 2;
  const names = (g: PostureReport[]) => list(g.map((r) => r.party));
  const enough = (g: PostureReport[]) => (g.length >= t ? `: ${g.length} of them, at least the threshold ${t}, can act without anyone else` : '');
  const everyone = (g: PostureReport[]) => g.length === o.total && o.total > 0;
  const single: string[] = [];

  for (const g of shared(signers, operatorKey)) {
    find('reported-same-operator', `${names(g)} report running as the same account ${account(g[0]!.operator, g[0]!)}${enough(g)}`);
    if (everyone(g)) single.push(`one operator (${account(g[0]!.operator, g[0]!)}) runs every signer`);
  }
  for (const g of shared(signers, adminKey)) {
    find('reported-same-admin', `${names(g)} report data directories owned by the same account ${account(g[0]!.admin, g[0]!)}, who can replace their files${enough(g)}`);
    if (everyone(g)) single.push(`one account (${account(g[0]!.admin, g[0]!)}) owns every signer's files`);
  }
  const hosts = shared(signers, hostKey);
  for (const g of hosts) find('reported-same-host', `${names(g)} report the same host ${g[0]!.hostname} (${g[0]!.hostId.slice(0, 12)}…): its root controls them all${enough(g)}`);
  const gw = o.gateway;
  if (gw) {
    const withGateway = signers.filter((r) => operatorKey(r) === operatorKey(gw) || adminKey(r) === adminKey(gw));
    if (withGateway.length > 0) find('reported-gateway-operator', `the gateway's account ${account(gw.operator, gw)} also runs or owns ${names(withGateway)}`);
  }
  for (const r of signers.filter((r) => r.seal.startsWith('software/')))
    find('reported-software-sealing', `${r.party} reports its store sealed in software (${r.seal}), not by hardware: whoever has its files and its operator's passphrase has its shares`);
  for (const r of signers.filter((r) => r.seal.endsWith('; software TPM')))
    find('reported-software-tpm', `${r.party} reports its store sealed to a software TPM (${r.seal}): its TPM is not shown to be hardware (swtpm, or an EK certificate no known manufacturer CA issued)`);
  const versions = new Set(signers.map((r) => r.epoch.governanceVersion));
  if (versions.size > 1) find('reported-epoch-differs', `the signers report different governance versions (${signers.map((r) => `${r.party} v${r.epoch.governanceVersion}`).join(', ')}): one has not applied the latest change, or its store was rolled back`);
  const admins = new Set(o.administrators ?? []);
  for (const r of signers.filter((r) => admins.has(r.operator.user) || admins.has(r.admin.user)))
    find('reported-admin-is-operator', `${r.party} runs as or is owned by ${admins.has(r.operator.user) ? r.operator.user : r.admin.user}, the name of a key administrator: one person in two roles`);

  let verdict: string;
  if (signers.length === 0) verdict = 'verdict: unknown: no signer gave a signed report';
  else if (single.length > 0 || o.total === 1)
    verdict = `verdict: this deployment is a SINGLE ADMINISTRATIVE DOMAIN: ${[...single, ...(o.total === 1 ? ['there is only one signer'] : [])].join('; ')}. Whoever controls that controls every share; the threshold protects nothing against them.`;
  else {
    const dependent = findings.filter((f) => /^reported-same-(operator|admin)$/.test(f.code) && f.message.includes('at least the threshold'));
    const who = signers.map((r) => `${r.party} (operator ${account(r.operator, r)}, admin ${r.admin.user} (${r.admin.uid}))`).join('; ');
    const oneHost =
      hosts.length === 1 && hosts[0]!.length === signers.length
        ? `; one host (${hosts[0]![0]!.hostname}): its root controls all`
        : hosts.filter((g) => g.length >= t).map((g) => `; but ${names(g)} share the host ${g[0]!.hostname}: its root controls them`).join('');
    const partial = signers.length < o.total ? ` (${o.total - signers.length} of ${o.total} signers did not report)` : '';
    verdict =
      dependent.length > 0
        ? `verdict: NOT SEGMENTED: ${dependent.map((f) => f.message).join('; ')}${partial}.`
        : `verdict: independent operators and admins among the reporting signers${partial}: ${who}${oneHost}. No ${t} of them share an operator or admin${oneHost ? '' : ' or host'}, by their own signed reports.`;
  }
  return { findings, verdict, rows: [...(gw ? [row(gw)] : []), ...signers.map(row)] };
}
