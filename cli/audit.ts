// `mpchsm audit verify|show` and `mpchsm doctor`.
//
// audit verify: every party's log (DIR/gateway/audit.jsonl, DIR/signers/NAME/audit.jsonl) is
// checked against the identity the other side pinned for it — the gateway's config pins each
// signer, each signer's config pins the gateway — then the logs are cross-checked.
//
// doctor: how independent the signers really are. Threshold signing only helps if no one
// person, account or machine controls t signers; the dev cluster, which keeps every operator
// secret in one directory, must and does report itself as a single administrative domain.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { collectKnownHeads, crossCheck } from '../audit/crosscheck.js';
import type { AuditKey } from '../audit/chain.js';
import { gatewayAuditPath, signerAuditPath } from '../audit/paths.js';
import { readLog, verifyLog, verifyParsedLog, type Finding, type ParsedLog, type VerifyResult } from '../audit/verify.js';
import { fingerprint, parsePublicIdentity } from '../contract/identity/identity.js';
import { layout, type Layout } from './layout.js';
import { getJson } from './processes.js';

export interface Io {
  out(line: string): void;
  err(line: string): void;
}
const consoleIo: Io = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** Exit status when DIR is not a readable cluster directory. */
const EXIT_UNREADABLE = 2;

// ---- reading the cluster directory ------------------------------------------------------

const gatewayConfigSchema = z.object({
  threshold: z.number().int().optional(),
  signers: z.array(z.object({ name: z.string(), url: z.string().optional(), identity: z.unknown() })).default([]),
});
const signerConfigSchema = z.object({ gateway: z.unknown() });
const clusterJsonSchema = z.object({
  gateway: z.object({ pid: z.number().int(), url: z.string() }).optional(),
  signers: z.array(z.object({ name: z.string(), pid: z.number().int(), url: z.string() })).default([]),
  threshold: z.number().int().optional(),
});
const operatorSchema = z.object({ operator: z.string().min(1).max(128) });
// Only names and roles: the file also holds credentials, which are never read into output.
const principalsSchema = z.object({ principals: z.array(z.object({ name: z.string(), role: z.string() })) });
const sealerSchema = z.object({ kind: z.string() });

function readJson<T>(file: string, schema: z.ZodType<T>): T | undefined {
  if (!existsSync(file)) return undefined;
  return schema.parse(JSON.parse(readFileSync(file, 'utf8')));
}

const keyOf = (doc: unknown): AuditKey => {
  const id = parsePublicIdentity(doc);
  return { fingerprint: fingerprint(id), signPublicKey: id.signPublicKey };
};
/** identity.json carries the signer's numeric id next to the public identity document. */
const identityFile = (file: string): unknown => {
  const { id: _id, ...doc } = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  return doc;
};

interface Cluster {
  L: Layout;
  signers: string[];
  threshold?: number;
  urls: Map<string, string>;
  pids: Map<string, number>;
  gatewayPid?: number;
  gatewayConfig?: z.infer<typeof gatewayConfigSchema>;
}

function readCluster(dir: string): Cluster | string {
  const L = layout(dir);
  if (!existsSync(L.root)) return `${L.root} does not exist`;
  try {
    const gatewayConfig = readJson(path.join(L.gateway, 'config.json'), gatewayConfigSchema);
    const cluster = readJson(L.clusterJson, clusterJsonSchema);
    const signersDir = path.join(L.root, 'signers');
    const dirs = existsSync(signersDir) ? readdirSync(signersDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name) : [];
    const signers = [...new Set([...(gatewayConfig?.signers.map((s) => s.name) ?? []), ...(cluster?.signers.map((s) => s.name) ?? []), ...dirs])].sort();
    if (signers.length === 0 && !existsSync(L.gateway)) return `${L.root} holds no gateway and no signers: not an mpchsm cluster directory`;
    const urls = new Map<string, string>();
    for (const s of gatewayConfig?.signers ?? []) if (s.url) urls.set(s.name, s.url);
    for (const s of cluster?.signers ?? []) urls.set(s.name, s.url);
    return {
      L,
      signers,
      threshold: gatewayConfig?.threshold ?? cluster?.threshold,
      urls,
      pids: new Map(cluster?.signers.map((s) => [s.name, s.pid])),
      gatewayPid: cluster?.gateway?.pid,
      gatewayConfig,
    };
  } catch (e) {
    return `cannot read ${L.root}: ${(e as Error).message}`;
  }
}

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
  if (existsSync(gwIdentity)) gwCandidates.push({ source: gwIdentity, doc: identityFile(gwIdentity) });
  const signerParties: Party[] = [];
  for (const name of c.signers) {
    const dir = c.L.signer(name);
    const candidates: { source: string; doc: unknown }[] = [];
    const pinned = c.gatewayConfig?.signers.find((s) => s.name === name);
    if (pinned) candidates.push({ source: 'the gateway config', doc: pinned.identity });
    if (existsSync(path.join(dir, 'identity.json'))) candidates.push({ source: `${name}/identity.json`, doc: identityFile(path.join(dir, 'identity.json')) });
    const sc = readJson(path.join(dir, 'config.json'), signerConfigSchema);
    if (sc) gwCandidates.push({ source: `${name}'s config`, doc: sc.gateway });
    signerParties.push({ name, log: signerAuditPath(c.L.root, name), key: pick(name, candidates) });
  }
  return { parties: [{ name: 'gateway', log: gatewayAuditPath(c.L.root), key: pick('gateway', gwCandidates) }, ...signerParties], problems };
}

const list = (names: string[]) => (names.length < 3 ? names.join(' and ') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`);

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
  const parsed = new Map<string, ParsedLog>();
  for (const p of ps) {
    try {
      parsed.set(p.name, await readLog(p.log, p.name));
    } catch {
      // verifyLog below reports the unreadable log.
    }
  }
  const heads = collectKnownHeads([...parsed.values()]);
  const results: VerifyResult[] = [];
  for (const p of ps) {
    const log = parsed.get(p.name);
    // Without a pinned key, check against the log's own claim so the chain is still examined.
    const own = log?.lines[0]?.entry;
    const key = p.key ?? (own?.kind === 'open' ? own : { fingerprint: '0'.repeat(64), signPublicKey: '0'.repeat(64) });
    const opts = { party: p.name, knownHeads: heads.get(p.name) ?? [] };
    results.push(log ? verifyParsedLog(log, key, opts) : await verifyLog(p.log, key, opts));
  }
  const gateway = parsed.get('gateway');
  const cross = gateway ? crossCheck(gateway, c.signers.flatMap((n) => parsed.get(n) ?? [])) : [];

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
      if (opts.key !== undefined && (entry.kind !== 'event' || entry.keyId !== opts.key)) continue;
      rows.push({ party: p.name, at: entry.kind === 'event' ? entry.startedAt : entry.time, entry });
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
    if (e.kind === 'recovered') return [[at, party, String(e.seq), '', '(recovered)', '', '', '', `cut a torn line of ${e.droppedBytes} bytes`]];
    return [];
  });
  const header = ['TIME', 'PARTY', 'SEQ', 'REQUEST', 'OPERATION', 'PRINCIPAL', 'KEY', 'SIGNERS', 'OUTCOME'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  for (const r of [header, ...table]) io.out(r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!))).join('  '));
  if (table.length === 0) io.out(opts.key ? `(no entries for key ${opts.key})` : '(no entries)');
  return 0;
}

// ---- doctor -----------------------------------------------------------------------------

export interface DoctorOptions {
  strict: boolean;
}

interface SignerFacts {
  name: string;
  host: string;
  processUid?: number;
  dataOwner?: number;
  dataId?: string;
  operator: string;
  operatorDeclared: boolean;
  secretHash?: string;
  sealer: string;
  health: string;
  reachable: boolean;
}

export interface DoctorFinding {
  code: string;
  message: string;
}

function userNames(): Map<number, string> {
  const m = new Map<number, string>();
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && /^\d+$/.test(f[2]!)) m.set(Number(f[2]), f[0]!);
    }
  } catch {
    // Names are a courtesy; uids are what is compared.
  }
  return m;
}

function processUid(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[?::1\]?)$/;
function hostOf(url: string | undefined): string {
  if (!url) return 'unknown';
  let h: string;
  try {
    h = new URL(url).hostname;
  } catch {
    return 'unknown';
  }
  const local = new Set(Object.values(os.networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address)));
  return LOOPBACK.test(h) || local.has(h.replace(/^\[|\]$/g, '')) ? 'this machine' : h;
}

const sha256File = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Groups names by a value; only groups of two or more, for values that are known. */
function shared<T>(facts: SignerFacts[], value: (f: SignerFacts) => T | undefined): [T, string[]][] {
  const m = new Map<T, string[]>();
  for (const f of facts) {
    const v = value(f);
    if (v !== undefined) m.set(v, [...(m.get(v) ?? []), f.name]);
  }
  return [...m].filter(([, names]) => names.length > 1);
}


/** Reports how independent the signers are; with `strict`, any finding makes the exit status 1. */
export async function doctor(dir: string, opts: DoctorOptions, io: Io = consoleIo): Promise<number> {
  const c = readCluster(dir);
  if (typeof c === 'string') {
    io.err(`doctor: ${c}`);
    return EXIT_UNREADABLE;
  }
  if (c.signers.length === 0) {
    io.err(`doctor: ${c.L.root} lists no signers`);
    return EXIT_UNREADABLE;
  }
  const users = userNames();
  const user = (uid: number | undefined) => (uid === undefined ? 'unknown' : `${users.get(uid) ?? 'uid'} (${uid})`);
  const pinned = new Map(
    (c.gatewayConfig?.signers ?? []).flatMap((s) => {
      try {
        return [[s.name, keyOf(s.identity).fingerprint] as const];
      } catch {
        return [];
      }
    }),
  );

  const facts: SignerFacts[] = await Promise.all(
    c.signers.map(async (name): Promise<SignerFacts> => {
      const dataDir = c.L.signer(name);
      let dataOwner: number | undefined;
      let dataId: string | undefined;
      try {
        const st = statSync(realpathSync(dataDir));
        dataOwner = st.uid;
        dataId = `${st.dev}:${st.ino}`;
      } catch {
        // A missing data directory shows as unknown.
      }
      const op = readJson(path.join(dataDir, 'operator.json'), operatorSchema);
      const secretFile = c.L.operatorSecret(name);
      const sealer = readJson(path.join(dataDir, 'store', 'sealer.json'), sealerSchema)?.kind ?? 'unknown';
      const url = c.urls.get(name);
      let health = 'no URL known';
      let reachable = false;
      if (url) {
        try {
          const h = z.object({ fingerprint: z.string().optional() }).parse(await getJson(`${url}/health`, 2000));
          reachable = true;
          health = h.fingerprint && pinned.has(name) && h.fingerprint !== pinned.get(name) ? 'answers with a different identity than the gateway pinned' : 'ok';
        } catch (e) {
          health = `unreachable (${(e as Error).message})`;
        }
      }
      return {
        name,
        host: hostOf(url),
        processUid: processUid(c.pids.get(name)),
        dataOwner,
        dataId,
        operator: op ? op.operator : `local user ${user(dataOwner)}`,
        operatorDeclared: op !== undefined,
        secretHash: existsSync(secretFile) ? sha256File(secretFile) : undefined,
        sealer,
        health,
        reachable,
      };
    }),
  );

  const findings: DoctorFinding[] = [];
  const find = (code: string, message: string) => findings.push({ code, message });
  const n = facts.length;
  const everyone = (names: string[]) => names.length === n;
  const singleDomain: string[] = [];

  for (const [operator, names] of shared(facts, (f) => f.operator)) {
    find('shared-operator', `${list(names)} are run by the same operator (${operator})`);
    if (everyone(names)) singleDomain.push(`one operator (${operator}) runs every signer`);
  }
  for (const f of facts.filter((f) => !f.operatorDeclared)) find('unknown-operator', `${f.name} declares no operator (no ${path.join('signers', f.name, 'operator.json')}); taken to be the ${f.operator}`);
  for (const [, names] of shared(facts, (f) => f.secretHash)) find('shared-operator-secret', `${list(names)} are unlocked by the same operator secret`);
  const together = facts.filter((f) => f.secretHash !== undefined).map((f) => f.name);
  if (together.length > 1) {
    find('operator-secrets-together', `the operator secrets of ${list(together)} are all kept in ${c.L.operators}: whoever can read that directory can unlock each of them`);
    if (everyone(together)) singleDomain.push(`every signer's operator secret is in ${c.L.operators}`);
  }
  const admins = readJson(path.join(c.L.gateway, 'principals.json'), principalsSchema)?.principals.filter((p) => p.role === 'admin').map((p) => p.name) ?? [];
  for (const f of facts.filter((f) => f.operatorDeclared && admins.includes(f.operator)))
    find('admin-is-operator', `${f.operator} is a key administrator and also operates ${f.name}: one person in two domains`);
  const gwOperator = readJson(path.join(c.L.gateway, 'operator.json'), operatorSchema)?.operator;
  for (const f of facts.filter((f) => f.operatorDeclared && f.operator === gwOperator))
    find('gateway-operator-is-signer-operator', `${f.operator} operates the gateway and also ${f.name}`);

  for (const [host, names] of shared(facts, (f) => (f.host === 'unknown' ? undefined : f.host))) {
    find('same-host', `${list(names)} run on the same host (${host})`);
    if (everyone(names)) singleDomain.push(`every signer runs on ${host}`);
  }
  const gatewayUid = processUid(c.gatewayPid);
  for (const [uid, names] of shared(facts, (f) => f.processUid)) {
    find('same-process-user', `the processes of ${list(names)} run as the same user ${user(uid)}`);
    if (everyone(names)) singleDomain.push(`one account (${user(uid)}) runs every signer process`);
  }
  const withGateway = facts.filter((f) => gatewayUid !== undefined && f.processUid === gatewayUid).map((f) => f.name);
  if (withGateway.length > 0) find('gateway-user-runs-signer', `the gateway runs as ${user(gatewayUid)}, the same user as ${list(withGateway)}`);
  for (const [uid, names] of shared(facts, (f) => f.dataOwner)) {
    find('same-data-owner', `the data directories of ${list(names)} belong to the same user ${user(uid)}`);
    if (everyone(names)) singleDomain.push(`one account (${user(uid)}) owns every signer's data directory`);
  }
  for (const [, names] of shared(facts, (f) => f.dataId)) find('shared-data-dir', `${list(names)} use the same data directory`);

  const reachable = facts.filter((f) => f.reachable).length;
  if (c.threshold !== undefined && reachable < c.threshold) find('too-few-reachable', `only ${reachable} of ${n} signers answer, fewer than the threshold ${c.threshold}: no key can be used`);
  for (const f of facts.filter((f) => f.health.startsWith('answers'))) find('identity-mismatch', `${f.name} ${f.health}`);
  for (const f of facts) {
    if (f.sealer.startsWith('software/')) find('software-sealing', `${f.name}'s share store is sealed in software (${f.sealer}), not by hardware: anyone with its operator secret and a copy of its files has its shares`);
    else if (f.sealer === 'unknown') find('unknown-sealing', `${f.name}'s share store sealing is unknown (no store/sealer.json)`);
  }
  if (n === 1) singleDomain.push('there is only one signer');

  io.out(`mpchsm doctor: ${c.L.root}: ${n} signer${n === 1 ? '' : 's'}, threshold ${c.threshold ?? 'unknown'}, ${reachable} reachable`);
  const header = ['SIGNER', 'HOST', 'PROCESS USER', 'DATA OWNER', 'OPERATOR', 'SEALING', 'HEALTH'];
  const rows = facts.map((f) => [f.name, f.host, f.processUid === undefined ? 'not running' : user(f.processUid), user(f.dataOwner), f.operator, f.sealer, f.health]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) io.out('  ' + r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!))).join('  '));
  io.out(findings.length === 0 ? 'findings: none' : `findings (${findings.length}):`);
  for (const f of findings) io.out(`  - [${f.code}] ${f.message}`);
  if (singleDomain.length > 0)
    io.out(`verdict: this deployment is a SINGLE ADMINISTRATIVE DOMAIN: ${singleDomain.join('; ')}. Whoever controls that controls every share; the threshold protects nothing against them.`);
  else if (findings.length > 0) io.out('verdict: the signers are not fully independent (see the findings above).');
  else io.out('verdict: no shared operator, secret, host, account or data directory found among the signers.');
  return opts.strict && findings.length > 0 ? 1 : 0;
}
