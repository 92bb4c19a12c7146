// `mpchsm audit verify|show` (`mpchsm doctor` is doctor.ts; the cluster directory, cluster-dir.ts).
//
// audit verify: every party's log (DIR/gateway/audit.jsonl, DIR/signers/NAME/audit.jsonl) is
// checked against the identity the other side pinned for it — the gateway's config pins each
// signer, each signer's config pins the gateway — then the logs are cross-checked.
//
// audit show: every party's entries merged by time, as a table or JSON lines.

import path from 'node:path';
import { z } from 'zod';
import { collectKnownHeads, crossCheck } from '../audit/crosscheck.js';
import type { AuditKey } from '../audit/chain.js';
import { gatewayAuditPath, signerAuditPath } from '../audit/paths.js';
import { readLog, verifyLog, verifyParsedLog, type Finding, type KnownHead, type ParsedLog, type VerifyOptions, type VerifyResult } from '../audit/verify.js';
import { EXIT_UNREADABLE, consoleIo, identitySchema, keyOf, list, readCluster, readJsonOr, type Cluster, type Io } from './cluster-dir.js';

const signerConfigSchema = z.object({ gateway: z.unknown() });

// ---- audit verify -----------------------------------------------------------------------

interface Party {
  name: string;
  log: string;
  key?: AuditKey;
}

/** Each party with the key others pinned for it; disagreements between pins are findings. */
function parties(c: Cluster): { parties: Party[]; problems: Finding[] } {
  const problems: Finding[] = [];
  const problem = (party: string, message: string) => problems.push({ party, severity: 'error', code: 'wrong-party', message });
  // A pinned file that cannot be read is a finding naming it; the party is checked without it.
  const damaged = (party: string) => (message: string) => problems.push({ party, severity: 'error', code: 'unreadable', message });
  const pinnedIdentity = (party: string, file: string): unknown => readJsonOr(file, identitySchema, damaged(party));
  // When pins disagree, the identity most sources agree on is checked; each dissenter is named.
  const pick = (party: string, candidates: { source: string; doc: unknown }[]): AuditKey | undefined => {
    const groups = new Map<string, { key: AuditKey; sources: string[] }>();
    for (const c of candidates) {
      try {
        const key = keyOf(c.doc);
        const g = groups.get(key.fingerprint) ?? { key, sources: [] };
        g.sources.push(c.source);
        groups.set(key.fingerprint, g);
      } catch (e) {
        problem(party, `${c.source}: ${(e as Error).message}`);
      }
    }
    const ranked = [...groups.values()].sort((a, b) => b.sources.length - a.sources.length);
    const best = ranked[0];
    if (!best) problem(party, 'no identity is pinned for this party: its signed heads cannot be checked');
    for (const g of ranked.slice(1))
      for (const source of g.sources) problem(party, `${source} names a different identity (${g.key.fingerprint.slice(0, 16)}…) than ${list(best!.sources)}`);
    return best?.key;
  };

  const gwCandidates: { source: string; doc: unknown }[] = [];
  const gwIdentity = path.join(c.L.gateway, 'identity.json');
  const gwDoc = pinnedIdentity('gateway', gwIdentity);
  if (gwDoc) gwCandidates.push({ source: gwIdentity, doc: gwDoc });
  const signerParties: Party[] = [];
  for (const name of c.signers) {
    const dir = c.L.signer(name);
    const candidates: { source: string; doc: unknown }[] = [];
    const pinned = c.gatewayConfig?.signers.find((s) => s.name === name);
    if (pinned) candidates.push({ source: 'the gateway config', doc: pinned.identity });
    const doc = pinnedIdentity(name, path.join(dir, 'identity.json'));
    if (doc) candidates.push({ source: `${name}/identity.json`, doc });
    const sc = readJsonOr(path.join(dir, 'config.json'), signerConfigSchema, damaged(name));
    if (sc) gwCandidates.push({ source: `${name}'s config`, doc: sc.gateway });
    signerParties.push({ name, log: signerAuditPath(c.L.root, name), key: pick(name, candidates) });
  }
  return { parties: [{ name: 'gateway', log: gatewayAuditPath(c.L.root), key: pick('gateway', gwCandidates) }, ...signerParties], problems };
}


const where = (f: Finding) => (f.seq !== undefined ? ` entry ${f.seq}` : f.line !== undefined ? ` line ${f.line}` : '');
const describe = (f: Finding) => `${f.severity === 'error' ? '' : `(${f.severity}) `}${f.party}${where(f)}: [${f.code}] ${f.message}`;

/** Verifies every chain and signed head in DIR and cross-checks them: 0 if all holds, 1 if not, 2 if DIR cannot be read. */
export async function auditVerify(dir: string, io: Io = consoleIo): Promise<number> {
  const c = readCluster(dir);
  if (typeof c === 'string') {
    io.err(`audit verify: ${c}`);
    return EXIT_UNREADABLE;
  }
  const { parties: ps, problems } = parties(c);
  const logs: PartyLogs[] = [];
  for (const p of ps) {
    // verifyLog reports an unreadable log.
    const log = await readLog(p.log, p.name).catch(() => undefined);
    logs.push({ name: p.name, label: p.log, key: p.key, log: log ?? ((key, opts) => verifyLog(p.log, key, opts)) });
  }
  return verifyAndReport(logs, problems, io);
}

/**
 * A party's log to verify: parsed, or how to report it unreadable. `headsFrom`: its entries that
 * vouch for other parties' heads (default all); `crossCheck`: its entries to cross-check (default
 * all); `heads`: heads of this log vouched for elsewhere (a signed posture report).
 */
export interface PartyLogs {
  name: string;
  label: string;
  key?: AuditKey | undefined;
  log: ParsedLog | ((key: AuditKey, opts: VerifyOptions) => Promise<VerifyResult>);
  headsFrom?: ParsedLog;
  crossCheck?: ParsedLog;
  heads?: KnownHead[];
}

/** Verifies each party's chain and heads against the others', cross-checks gateway and signers, prints the result: 0 if all holds, else 1. */
export async function verifyAndReport(ps: PartyLogs[], problems: Finding[], io: Io): Promise<number> {
  const parsed = (p: PartyLogs) => (typeof p.log === 'function' ? undefined : p.log);
  const heads = collectKnownHeads(ps.flatMap((p) => p.headsFrom ?? parsed(p) ?? []));
  const results: VerifyResult[] = [];
  for (const p of ps) {
    const log = parsed(p);
    // Without a pinned key, check against the log's own claim so the chain is still examined.
    const own = log?.lines[0]?.entry;
    const key = p.key ?? (own?.kind === 'open' ? own : { fingerprint: '0'.repeat(64), signPublicKey: '0'.repeat(64) });
    const opts = { party: p.name, file: p.label, knownHeads: [...(heads.get(p.name) ?? []), ...(p.heads ?? [])] };
    results.push(log ? verifyParsedLog(log, key, opts) : await (p.log as Exclude<PartyLogs['log'], ParsedLog>)(key, opts));
  }
  const checked = (p: PartyLogs) => p.crossCheck ?? parsed(p);
  const gatewayParty = ps.find((p) => p.name === 'gateway');
  const gateway = gatewayParty && checked(gatewayParty);
  const cross = gateway ? crossCheck(gateway, ps.filter((p) => p !== gatewayParty).flatMap((p) => checked(p) ?? [])) : [];

  const width = Math.max(...ps.map((p) => p.name.length));
  for (const r of results) {
    const signed = r.signedHead ? `, signed through entry ${r.signedHead.seq}` : '';
    io.out(`${r.party.padEnd(width)}  ${r.ok ? 'ok    ' : 'FAILED'}  ${r.entries} entries${signed}`);
  }
  io.out(`cross-check  ${cross.some((f) => f.severity === 'error') ? 'FAILED' : 'ok'}  ${cross.length} finding${cross.length === 1 ? '' : 's'}`);
  const all = [...problems, ...results.flatMap((r) => r.findings), ...cross];
  if (all.length > 0) io.out('findings:');
  for (const f of all) io.out(`  ${describe(f)}`);
  const errors = all.filter((f) => f.severity === 'error').length;
  const interrupted = all.filter((f) => f.code === 'interrupted').length;
  if (interrupted > 0)
    io.out(`audit verify: ${interrupted} interrupted request${interrupted === 1 ? '' : 's'} (information): the gateway stopped between recording its intent and its outcome — a crash or kill, not tampering; the signers' records under ${interrupted === 1 ? 'it agree' : 'them agree'} with the intent`);
  if (errors === 0) io.out('audit verify: every chain, signed head and cross-check holds');
  else io.out(`audit verify: FAILED (${errors} error${errors === 1 ? '' : 's'})`);
  return errors === 0 ? 0 : 1;
}

// ---- audit show -------------------------------------------------------------------------

export interface ShowOptions {
  key?: string | undefined;
  json: boolean;
}

/** Prints the parties' entries merged by time: a table for people, JSON lines with --json. */
export async function auditShow(dir: string, opts: ShowOptions, io: Io = consoleIo): Promise<number> {
  const c = readCluster(dir);
  if (typeof c === 'string') {
    io.err(`audit show: ${c}`);
    return EXIT_UNREADABLE;
  }
  const rows: { party: string; at: string; entry: ParsedLog['lines'][number]['entry'] }[] = [];
  for (const p of parties(c).parties) {
    let log: ParsedLog;
    try {
      log = await readLog(p.log, p.name);
    } catch {
      io.err(`audit show: ${p.name} has no readable log at ${p.log}`);
      continue;
    }
    for (const { entry } of log.lines) {
      if (opts.key !== undefined && ((entry.kind !== 'event' && entry.kind !== 'intent') || entry.keyId !== opts.key)) continue;
      rows.push({ party: p.name, at: entry.kind === 'event' || entry.kind === 'intent' ? entry.startedAt : entry.time, entry });
    }
  }
  rows.sort((a, b) => (a.at === b.at ? (a.party === b.party ? a.entry.seq - b.entry.seq : a.party < b.party ? -1 : 1) : a.at < b.at ? -1 : 1));
  if (opts.json) {
    for (const r of rows) io.out(JSON.stringify({ party: r.party, ...r.entry }));
    return 0;
  }
  const table = rows.flatMap(({ party, at, entry: e }) => {
    if (e.kind === 'event') {
      const who = e.principal ? [e.principal.name, e.principal.source && `@${e.principal.source}`].filter(Boolean).join('') : e.caller ? `via ${e.caller.slice(0, 12)}` : '';
      const outcome = e.outcome === 'ok' ? `ok${e.output === 'none' ? '' : ` (${e.output})`}` : `${e.outcome}: ${e.reason}`;
      const signers = e.signers?.map((s) => s.name).join(',') ?? '';
      return [[at, party, String(e.seq), e.request, e.op, who, e.keyId ?? '', signers, outcome]];
    }
    if (e.kind === 'intent') return [[at, party, String(e.seq), e.request, e.op, e.principal?.name ?? '', e.keyId ?? '', '', '(intent)']];
    if (e.kind === 'recovered') return [[at, party, String(e.seq), '', '(recovered)', '', '', '', `cut a torn line of ${e.droppedBytes} bytes`]];
    return [];
  });
  const header = ['TIME', 'PARTY', 'SEQ', 'REQUEST', 'OPERATION', 'PRINCIPAL', 'KEY', 'SIGNERS', 'OUTCOME'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  for (const r of [header, ...table]) io.out(r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!))).join('  '));
  if (table.length === 0) io.out(opts.key ? `(no entries for key ${opts.key})` : '(no entries)');
  return 0;
}
