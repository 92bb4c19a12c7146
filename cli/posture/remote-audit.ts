// `mpchsm audit verify --genesis G --as NAME --dir A`: the audit from an administrator's or
// auditor's own host. Each party's identity is pinned from the genesis; its signed posture
// report (evidence.ts) gives its log's head as of the moment asked; its log is read through the
// gateway in pages and verified like a file (cli/audit.ts verifyAndReport): its chain and
// checkpoints under the pinned key, every head the others and its own report vouch for — so a
// page the gateway cut or a log edited on its host fails. Heads and the cross-check are taken
// from each log up to its reported head: entries written while the check runs are verified as
// a chain but do not count against logs read a moment earlier.
import type { ParsedLog, Finding } from '../../audit/verify.js';
import { verifyAndReport, type PartyLogs } from '../audit.js';
import { consoleIo, EXIT_UNREADABLE, keyOf, type Io } from '../cluster-dir.js';
import { fetchLog, fetchPosture, pinsFor, type Asker, type PartyPosture, type Pins } from './evidence.js';

export interface RemoteAuditOptions {
  genesis: string;
  as: string;
  dir: string;
}

const upTo = (log: ParsedLog, seq: number): ParsedLog => ({ ...log, lines: log.lines.filter((l) => l.entry.seq <= seq) });

/** 0 if every log, head and cross-check holds; 1 if not; 2 if G or A is unusable or the gateway does not answer. */
export async function remoteAuditVerify(o: RemoteAuditOptions, io: Io = consoleIo): Promise<number> {
  const asker: Asker = { dir: o.dir, as: o.as };
  let pins: Pins;
  let posture: PartyPosture[];
  try {
    pins = pinsFor(o.genesis);
    posture = (await fetchPosture(asker, pins)).parties;
  } catch (e) {
    io.err(`audit verify: ${(e as Error).message}`);
    return EXIT_UNREADABLE;
  }
  const problems: Finding[] = [];
  const identities = new Map([['gateway', pins.gateway], ...pins.signers.map((s) => [s.name, s.identity] as const)]);
  const logs: PartyLogs[] = [];
  // The gateway last, as in the report: its entries are cross-checked against the signers'.
  for (const p of [...posture.filter((p) => p.role === 'signer'), ...posture.filter((p) => p.role === 'gateway')]) {
    if (p.problem) problems.push({ party: p.name, severity: p.problem.code === 'forged-report' ? 'error' : 'warning', code: p.problem.code === 'forged-report' ? 'forged-head' : 'unreadable', message: p.problem.message });
    // A signer the gateway does not serve cannot be read through it: said above, as a warning.
    if (p.problem?.code === 'not-listed') continue;
    const label = `${p.name}'s log read through the gateway`;
    const key = keyOf(identities.get(p.name));
    let log: ParsedLog;
    try {
      log = await fetchLog(asker, p.name);
    } catch (e) {
      const message = `${p.name}'s log could not be read through the gateway: ${(e as Error).message}`;
      logs.push({ name: p.name, label, key, log: async () => ({ party: p.name, ok: false, entries: 0, findings: [{ party: p.name, severity: 'error', code: 'unreadable', message }], log: { party: p.name, lines: [], malformed: [] } }) });
      continue;
    }
    const head = p.report?.auditHead;
    logs.push({
      name: p.name,
      label,
      key,
      log,
      ...(head && { headsFrom: upTo(log, head.seq), crossCheck: upTo(log, head.seq), heads: [{ ...head, source: `${p.name}'s signed posture report` }] }),
    });
  }
  io.out(`mpchsm audit verify: as ${o.as}, identities pinned by ${o.genesis}, logs read through the gateway`);
  return verifyAndReport(logs, problems, io);
}
