// `mpchsm doctor`: how independent the signers really are. Threshold signing only helps if no
// one person, account or machine controls t signers; the dev cluster, which keeps every
// operator secret in one directory, must and does report itself as a single administrative
// domain. Facts come from the cluster directory, /proc, /etc/passwd and each signer's /health;
// the verdict comes from the parties' signed posture reports, asked through the gateway as the
// directory's auditor and checked against the identities pinned in the directory
// (doctor/reports.ts), and from the local facts only when no report can be had. The same
// doctor runs from another host with --genesis/--as (doctor/remote.ts).
// It also compares the keys the gateway records with those every signer holds (doctor/inventory.ts):
// any difference is a finding and makes the exit status 1. It reports each signer's last backup,
// whether it was verified, and custodians holding t or more signers' backups (doctor/custody.ts).

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { EXIT_UNREADABLE, consoleIo, keyOf, list, readCluster, readJsonOr, type Cluster, type Io } from './cluster-dir.js';
import { getJson } from './processes.js';
import { custodySection } from './doctor/custody.js';
import { checkInventories } from './doctor/inventory.js';
import { columns, signedReports, type ReportsSection } from './doctor/reports.js';
import { pinsFromDir } from './posture/evidence.js';
import { userNames } from '../contract/posture/host.js';
import { TPM_SEALER_KIND } from '../contract/io/seal.js';
import { fingerprint, parsePublicIdentity } from '../contract/identity/identity.js';
import { verifyTpmQuote } from '../signers/node/tpm/attestation.js';

const operatorSchema = z.object({ operator: z.string().min(1).max(128) });
// Only names and roles: the file also holds credentials, which are never read into output.
const principalsSchema = z.object({ principals: z.array(z.object({ name: z.string(), role: z.string() })) });
const sealerSchema = z.object({ kind: z.string(), device: z.string().max(200).optional() });

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
  attestation: string;
  health: string;
  reachable: boolean;
}

export interface DoctorFinding {
  code: string;
  message: string;
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

/** The local finding that states what a reported one does (doctor/reports.ts). */
const SAID_LOCALLY: Record<string, string> = {
  'reported-same-operator': 'same-process-user',
  'reported-same-admin': 'same-data-owner',
  'reported-same-host': 'same-host',
  'reported-gateway-operator': 'gateway-user-runs-signer',
  'reported-software-sealing': 'software-sealing',
  'reported-software-tpm': 'software-tpm',
};

/** Groups names by a value; only groups of two or more, for values that are known. */
function shared<T>(facts: SignerFacts[], value: (f: SignerFacts) => T | undefined): [T, string[]][] {
  const m = new Map<T, string[]>();
  for (const f of facts) {
    const v = value(f);
    if (v !== undefined) m.set(v, [...(m.get(v) ?? []), f.name]);
  }
  return [...m].filter(([, names]) => names.length > 1);
}

/** Reports how independent the signers are and whether their key inventories agree with the gateway's; a damaged file, a difference between inventories, or with `strict` any finding, makes the exit status 1. */
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
  // Files that cannot be read or are refused: each a finding naming it, and the exit status 1.
  const damaged: string[] = [];
  const refused = (message: string) => damaged.push(message);
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
      const op = readJsonOr(path.join(dataDir, 'operator.json'), operatorSchema, refused);
      const secretFile = c.L.operatorSecret(name);
      const header = readJsonOr(path.join(dataDir, 'store', 'sealer.json'), sealerSchema, refused);
      // A TPM seal with what its TPM was shown to be (signers/node/tpm/ek.ts): never hardware on its own say.
      const sealer = header === undefined ? 'unknown' : header.kind === TPM_SEALER_KIND ? `tpm2 on a ${header.device ?? 'TPM of unknown kind'}` : header.kind;
      const attestation = await attestationOf(path.join(dataDir, `${name}.signer.json`), refused);
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
        attestation,
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
  const admins = readJsonOr(path.join(c.L.gateway, 'principals.json'), principalsSchema, refused)?.principals.filter((p) => p.role === 'admin').map((p) => p.name) ?? [];
  for (const f of facts.filter((f) => f.operatorDeclared && admins.includes(f.operator)))
    find('admin-is-operator', `${f.operator} is a key administrator and also operates ${f.name}: one person in two domains`);
  const gwOperator = readJsonOr(path.join(c.L.gateway, 'operator.json'), operatorSchema, refused)?.operator;
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
  for (const f of facts.filter((f) => f.attestation.startsWith('refused'))) find('attestation-refused', `${f.name}'s attestation does not verify: ${f.attestation}`);
  for (const f of facts) {
    if (f.sealer.startsWith('software/')) find('software-sealing', `${f.name}'s share store is sealed in software (${f.sealer}), not by hardware: anyone with its operator secret and a copy of its files has its shares`);
    else if (f.sealer.startsWith('tpm2 on a ') && !f.sealer.startsWith('tpm2 on a hardware TPM'))
      find('software-tpm', `${f.name}'s share store is sealed to a ${f.sealer.slice('tpm2 on a '.length)}: a software TPM is a file on its host, not hardware; whoever has that host's root has its shares`);
    else if (f.sealer === 'unknown') find('unknown-sealing', `${f.name}'s share store sealing is unknown (no store/sealer.json)`);
  }
  if (n === 1) singleDomain.push('there is only one signer');
  const inventory = await checkInventories(c, refused);
  // An unreachable signer is reported above; what it holds is simply unknown, not a difference.
  const differences = inventory.findings.filter((f) => f.code !== 'inventory-unavailable');
  for (const f of inventory.findings) find(f.code, f.message);
  const custody = custodySection(c, refused);
  for (const f of custody.findings) find(f.code, f.message);
  for (const message of damaged) find('damaged-file', message);
  const reports = await localReports(c, admins);
  // A reported finding the local facts already state (the same host, account, sealing) is not said twice.
  const local = new Set(findings.map((f) => f.code));
  if (typeof reports !== 'string') for (const f of reports.findings) if (!local.has(SAID_LOCALLY[f.code] ?? '')) find(f.code, f.message);

  io.out(`mpchsm doctor: ${c.L.root}: ${n} signer${n === 1 ? '' : 's'}, threshold ${c.threshold ?? 'unknown'}, ${reachable} reachable`);
  const header = ['SIGNER', 'HOST', 'PROCESS USER', 'DATA OWNER', 'OPERATOR', 'SEALING', 'ATTESTATION', 'HEALTH'];
  const rows = facts.map((f) => [f.name, f.host, f.processUid === undefined ? 'not running' : user(f.processUid), user(f.dataOwner), f.operator, f.sealer, f.attestation, f.health]);
  for (const line of columns([header, ...rows])) io.out(line);
  if (typeof reports === 'string') io.out(`signed reports: none (${reports}); the verdict below is from this directory's files`);
  else {
    io.out(`signed reports (asked through the gateway as auditor, checked against the identities in ${c.L.root}): ${reports.reported} of ${n} signers`);
    for (const line of reports.table) io.out(line);
  }
  io.out(
    inventory.skipped
      ? `keys: not compared (${inventory.skipped})`
      : `keys: ${inventory.counts.map((k) => `${k.party} ${k.keys}`).join(', ')}; ${differences.length === 0 ? 'the inventories agree' : `${differences.length} difference${differences.length === 1 ? '' : 's'}`}`,
  );
  io.out(`backups (made: signers/NAME/backups.jsonl, by \`signer backup\`; verified: custody.jsonl, by \`backup verify --dir\`):`);
  for (const line of custody.table) io.out(line);
  io.out(findings.length === 0 ? 'findings: none' : `findings (${findings.length}):`);
  for (const f of findings) io.out(`  - [${f.code}] ${f.message}`);
  if (custody.notes.length > 0) io.out(`notes (${custody.notes.length}):`);
  for (const f of custody.notes) io.out(`  - [${f.code}] ${f.message}`);
  if (typeof reports !== 'string') io.out(reports.verdict);
  else if (singleDomain.length > 0)
    io.out(`verdict: this deployment is a SINGLE ADMINISTRATIVE DOMAIN: ${singleDomain.join('; ')}. Whoever controls that controls every share; the threshold protects nothing against them.`);
  else if (findings.length > 0) io.out('verdict: the signers are not fully independent (see the findings above).');
  else io.out('verdict: no shared operator, secret, host, account or data directory found among the signers.');
  const forged = typeof reports === 'string' ? 0 : reports.refused;
  return damaged.length > 0 || differences.length > 0 || forged > 0 || (opts.strict && findings.length > 0) ? 1 : 0;
}

const signerFileSchema = z.object({ Identity: z.unknown(), Attestation: z.unknown().optional() });

/** What a signer's public file attests, checked here (signers/node/tpm/attestation.ts): `none`, `TPM quote: software TPM (…)`, or `refused: why`. */
async function attestationOf(file: string, refused: (message: string) => void): Promise<string> {
  const pub = existsSync(file) ? readJsonOr(file, signerFileSchema, refused) : undefined;
  if (pub?.Attestation === undefined) return 'none';
  try {
    return `TPM quote: ${(await verifyTpmQuote(pub.Attestation, fingerprint(parsePublicIdentity(pub.Identity)))).label}`;
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  }
}

/** The signed reports, asked as DIR's auditor (DIR/principals/auditor.env) with the identities DIR pins; or why there are none. */
async function localReports(c: Cluster, admins: string[]): Promise<ReportsSection | string> {
  if (!existsSync(c.L.principalEnv('auditor'))) return `no auditor credentials at ${c.L.principalEnv('auditor')}`;
  let pins;
  try {
    pins = { ...pinsFromDir(c.L.root, c.signers, c.threshold), administrators: admins };
  } catch (e) {
    return `the pinned identities cannot be read: ${(e as Error).message}`;
  }
  const s = await signedReports({ dir: c.L.root, as: 'auditor' }, pins);
  return typeof s === 'string' ? `the gateway gave none: ${s}` : s;
}
