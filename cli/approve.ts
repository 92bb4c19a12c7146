// Administrators' approvals: the `mpchsm approve` / `mpchsm approve-sign` commands.
//
// Each administrator has an Ed25519 approval key pair; the secret stays in that principal's
// own file (DIR/principals/NAME.approval.key, mode 0600), the public key is in the governance
// document every signer holds. `approve` fetches a proposal from the gateway, shows what it
// does, signs it with the administrator's approval key and submits the signature under the
// administrator's own KMS credentials (a SigV4-signed POST, X-Amz-Target: MpcHsm.Approve).
// `approve-sign` signs one signature's digest (key, algorithm, digest, expiry, random nonce)
// for keys whose policy asks for per-signature approvals.
//
// The tool keeps DIR/governance.json in step with the gateway's chain, which it verifies from
// the genesis it holds, and approves governance updates only as successors of that version.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { ed25519PublicKey } from '../contract/identity/curve25519.js';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { z } from 'zod';
import {
  MAX_SIGN_APPROVAL_TTL_MS,
  administratorChanges,
  genesisFileSchema,
  governanceUpdateSchema,
  pinKdfSchema,
  principalEnrolmentSchema,
  principalRemovalSchema,
  signerAdmissionSchema,
  signerRemovalSchema,
  proposalSchema,
  signApproval,
  signRefusal,
  signSignApproval,
  signedGovernanceSchema,
  successorProblem,
  verifyGovernanceChain,
  type GovernanceDocument,
  type PinKdf,
  type Proposal,
} from '../policy/index.js';
import { canonicalJson } from '../contract/canonical.js';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { fingerprint, parsePublicIdentity } from '../contract/identity/identity.js';
import { fromHex, toHex } from '../contract/bytes.js';
import { RSA_PKCS1_RAW } from '../contract/keys/specs.js';
import { parseEnvFile } from './env-file.js';
import { layout } from './layout.js';
import { readJsonFile } from '../contract/io/json-file.js';
import { LiveProgress } from './progress.js';

export const approvalKeyFile = (dir: string, name: string) => ownFile(dir, `${name}.approval.key`);

/**
 * A principal's file in DIR/principals (a cluster made by `up`), or in DIR itself where DIR is
 * the principal's own directory (`mpchsm principal request --dir P`).
 */
function ownFile(dir: string, file: string): string {
  const shared = path.join(layout(dir).principals, file);
  const own = path.join(layout(dir).root, file);
  return !existsSync(shared) && existsSync(own) ? own : shared;
}
/** A rotated approval key, waiting for the governance version that names it. */
export const nextApprovalKeyFile = (dir: string, name: string) => `${approvalKeyFile(dir, name)}.next`;
const governanceFile = (dir: string) => path.join(layout(dir).root, 'governance.json');

// ---- talking to the gateway as a principal --------------------------------------------------

export function readEnv(dir: string, name: string): Record<string, string> {
  const file = ownFile(dir, `${name}.env`);
  if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(name) || !existsSync(file)) throw new Error(`${name} is not a principal of the cluster in ${layout(dir).root} (no ${file})`);
  return parseEnvFile(readFileSync(file, 'utf8'));
}

/** A SigV4-signed JSON 1.1 call to the gateway with `name`'s credentials. */
export async function call(dir: string, name: string, target: string, body: object): Promise<Record<string, unknown>> {
  const env = readEnv(dir, name);
  const url = new URL(env.MPCHSM_KMS_ENDPOINT ?? '');
  const signer = new SignatureV4({
    service: 'kms',
    region: env.AWS_REGION ?? '',
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID ?? '', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? '' },
    sha256: Hash.bind(null, 'sha256'),
  });
  const payload = JSON.stringify(body);
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: '/',
    // A signed random id, as the AWS SDKs send: two identical calls in one second are not a replay.
    headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target, 'amz-sdk-invocation-id': randomUUID() },
    body: payload,
  });
  const { host: _host, ...headers } = signed.headers as Record<string, string>;
  // An HTTPS endpoint is trusted through the certificate its env file names (AWS_CA_BUNDLE), as the SDKs do.
  const ca = url.protocol === 'https:' && env.AWS_CA_BUNDLE ? readFileSync(env.AWS_CA_BUNDLE) : undefined;
  const res = await post(new URL('/', url), headers, payload, ca);
  const json = (res.text ? JSON.parse(res.text) : {}) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`${String(json.__type ?? res.status)}: ${String(json.message ?? res.text)}`);
  return json;
}

const CALL_TIMEOUT_MS = 60_000;

/** POSTs `body` to `url` (http or https, with `ca` trusted), bounded by CALL_TIMEOUT_MS. */
function post(url: URL, headers: Record<string, string>, body: string, ca?: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const options = { method: 'POST', headers, timeout: CALL_TIMEOUT_MS, ...(ca ? { ca } : {}) };
    const req = (url.protocol === 'https:' ? https : http).request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} within ${CALL_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** `name`'s approval key file; refuses a principal that has none. */
function approvalKeyPath(dir: string, name: string): string {
  const file = approvalKeyFile(dir, name);
  if (!existsSync(file)) throw new Error(`${name} has no approval key (${file}): only key administrators approve`);
  return file;
}

export function approvalSecret(dir: string, name: string): Uint8Array {
  const file = approvalKeyPath(dir, name);
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} is not an approval key`);
  return fromHex(hex);
}

const localChain = (dir: string): unknown[] => readJsonFile(governanceFile(dir), z.object({ chain: z.array(z.unknown()).min(1) })).chain;

/**
 * A founding administrator's directory holds the genesis they signed (genesis sign), perhaps
 * before the others did: the gateway's chain must start with its governance document.
 */
function startsAtGenesis(dir: string, chain: unknown[]): boolean {
  const file = path.join(layout(dir).root, 'genesis.json');
  if (!existsSync(file)) return false;
  const signed = readJsonFile(file, genesisFileSchema);
  return canonicalJson(signedGovernanceSchema.parse(chain[0]).document) === canonicalJson(signed.Genesis.Governance);
}
const clusterId = (dir: string): string => signedGovernanceSchema.parse(localChain(dir).at(-1)).document.clusterId;

const describeClusterSchema = z.object({
  Governance: z.array(z.unknown()).min(1),
  PinKdf: pinKdfSchema,
  Principals: z.array(z.object({ Name: z.string(), Role: z.string(), AccessKeyId: z.string() })),
  Signers: z.array(z.object({ Name: z.string(), Id: z.number().int(), State: z.string() })),
});

export interface ClusterView {
  /** The governance version in force, verified here. */
  governance: GovernanceDocument;
  pinKdf: PinKdf;
  principals: z.infer<typeof describeClusterSchema>['Principals'];
  /** The signers as the gateway reports them (names and states only: identities are pinned here). */
  signers: z.infer<typeof describeClusterSchema>['Signers'];
}

/**
 * The governance in force: the gateway's chain, verified here and required to extend the one in
 * DIR/governance.json (same genesis, same history), which then follows it. A rotated approval
 * key (NAME.approval.key.next) replaces the old one once the version in force names it.
 */
export async function syncGovernance(dir: string, as: string): Promise<ClusterView> {
  const d = describeClusterSchema.parse(await call(dir, as, 'MpcHsm.DescribeCluster', {}));
  return { governance: await adoptChain(dir, d.Governance), pinKdf: d.PinKdf, principals: d.Principals, signers: d.Signers };
}

/** Keeps `chain` as DIR/governance.json if it verifies and extends the chain held there; its version in force. */
async function adoptChain(dir: string, chain: unknown[]): Promise<GovernanceDocument> {
  const r = verifyGovernanceChain(chain);
  if (!r.ok) throw new Error(`the gateway's governance chain does not verify: ${r.reason}`);
  const local = !existsSync(governanceFile(dir)) && startsAtGenesis(dir, chain) ? [] : localChain(dir);
  for (const [i, link] of local.entries()) {
    if (i >= chain.length || canonicalJson(link) !== canonicalJson(chain[i]))
      throw new Error(`the gateway's governance chain does not extend ${governanceFile(dir)} (its version ${i + 1} differs or is missing)`);
  }
  if (chain.length > local.length) await writeFileAtomic(governanceFile(dir), Buffer.from(JSON.stringify({ chain }, null, 2) + '\n'), 0o644);
  for (const a of r.governance.administrators) {
    const next = nextApprovalKeyFile(dir, a.name);
    if (existsSync(next) && toHex(ed25519PublicKey(fromHex(readFileSync(next, 'utf8').trim()))) === a.approvalKey) renameSync(next, approvalKeyFile(dir, a.name));
  }
  return r.governance;
}

/** Security keys a governance update enrols or drops, by administrator and credential id. */
export function webauthnChanges(current: GovernanceDocument, next: GovernanceDocument): string[] {
  const ids = (g: GovernanceDocument, name: string) => (g.administrators.find((a) => a.name === name)?.webauthn ?? []).map((c) => `${c.id} (${c.alg === -7 ? 'ES256' : 'EdDSA'}, ${c.origin})`);
  return next.administrators.flatMap((a) => {
    const [before, after] = [ids(current, a.name), ids(next, a.name)];
    const added = after.filter((x) => !before.includes(x));
    const removed = before.filter((x) => !after.includes(x));
    return [...(added.length ? [`enrols security keys of ${a.name}: ${added.join(', ')}`] : []), ...(removed.length ? [`drops security keys of ${a.name}: ${removed.join(', ')}`] : [])];
  });
}

/** What a proposal does, in words, for the administrator about to approve it. */
function describeProposal(p: Proposal, current: GovernanceDocument): string {
  switch (p.operation) {
    case 'mpchsm:AddPrincipal': {
      const e = principalEnrolmentSchema.parse(p.parameters);
      return `add principal ${e.Name} (${e.Role}), access key ${e.AccessKeyId}`;
    }
    case 'mpchsm:RemovePrincipal':
      return `remove principal ${principalRemovalSchema.parse(p.parameters).Name}`;
    case 'mpchsm:AddSigner': {
      const a = signerAdmissionSchema.parse(p.parameters);
      return `add signer ${a.Name} (party ${a.Id}, ${a.Endpoint}) whose identity fingerprint is ${fingerprint(parsePublicIdentity(a.Identity))} — compare it with its operator's; every key is reshared to include it`;
    }
    case 'mpchsm:RemoveSigner':
      return `remove signer ${signerRemovalSchema.parse(p.parameters).Name}: its key shares are replaced by resharing among the remaining signers`;
    case 'mpchsm:UpdateGovernance': {
      const doc = governanceUpdateSchema.parse(p.parameters).Document;
      const { added, removed } = administratorChanges(current, doc);
      const rekeyed = doc.administrators.filter((a) => !added.includes(a.name) && current.administrators.find((c) => c.name === a.name)?.approvalKey !== a.approvalKey);
      const ops = [...new Set([...Object.keys(current.quorum), ...Object.keys(doc.quorum)])].sort();
      const quorum = ops.filter((op) => current.quorum[op] !== doc.quorum[op]).map((op) => `${op} ${current.quorum[op] ?? 0} → ${doc.quorum[op] ?? 0}`);
      return [
        `governance v${current.version} → v${doc.version}`,
        ...(added.length ? [`adds administrators ${added.join(', ')}`] : []),
        ...(removed.length ? [`removes administrators ${removed.join(', ')}`] : []),
        ...(rekeyed.length ? [`new approval keys for ${rekeyed.map((a) => a.name).join(', ')}`] : []),
        ...webauthnChanges(current, doc),
        ...(quorum.length ? [`quorum: ${quorum.join(', ')}`] : []),
      ].join('; ');
    }
    default:
      return `${p.operation} ${JSON.stringify(p.parameters)}`;
  }
}

// ---- the commands ---------------------------------------------------------------------------

/** Signs `proposal` as `as` and submits the approval; prints the gateway's answer. */
/** Signs and submits `as`'s approval of `proposal`; reports it unless `quiet` (a step of `up`); answers its status. */
export async function submitApproval(dir: string, as: string, proposal: Proposal, json: boolean, extra: object = {}, quiet = false): Promise<string> {
  const secret = approvalSecret(dir, as);
  let out: Record<string, unknown>;
  try {
    // The approval that completes a proposal runs it before the answer: a key made (an RSA key takes seconds) or reshared.
    const approving = call(dir, as, 'MpcHsm.Approve', { ProposalId: proposal.id, Approval: signApproval(proposal, as, secret) });
    out = quiet ? await approving : await new LiveProgress().during(`mpchsm: proposal ${proposal.id} (${proposal.operation}): approving, and running it if this approval completes it`, approving);
  } finally {
    secret.fill(0);
  }
  // An executed governance update answers its chain link: the version in force from now on.
  if (proposal.operation === 'mpchsm:UpdateGovernance' && out.Status === 'Executed') await adoptChain(dir, [...localChain(dir), (out.Result as { Link?: unknown } | undefined)?.Link]);
  if (quiet) return String(out.Status);
  if (json) {
    console.log(JSON.stringify({ ...out, ...extra }));
    return String(out.Status);
  }
  const approvals = (out.Approvals as string[] | undefined) ?? [];
  console.log(`  ${approvals.length} of ${String(out.Required)} approvals (${approvals.join(', ')}): ${String(out.Status).toLowerCase()}`);
  if (out.Status === 'Pending') console.log(`  the other administrators run: mpchsm approve ${proposal.id} --as <administrator>`);
  const result = out.Result as object | undefined;
  if (result && Object.keys(result).length > 0) console.log(JSON.stringify(result, null, 2));
  for (const s of (out.Signers as { signer: string; applied: boolean; reason?: string }[] | undefined) ?? []) {
    if (!s.applied) console.log(`  ${s.signer} did not apply it: ${s.reason ?? 'no reason given'}`);
  }
  return String(out.Status);
}

/** Proposal `id` as the gateway has it, checked to be this cluster's and still open (`verb`: what the caller would do). */
async function openProposal(dir: string, id: string, as: string, verb: 'approve' | 'refuse'): Promise<{ proposal: Proposal; governance: GovernanceDocument }> {
  approvalKeyPath(dir, as);
  const { governance } = await syncGovernance(dir, as);
  const got = await call(dir, as, 'MpcHsm.GetProposal', { ProposalId: id });
  const proposal: Proposal = proposalSchema.parse(got.Proposal);
  if (proposal.id !== id) throw new Error(`the gateway answered proposal ${proposal.id} for ${id}`);
  if (proposal.clusterId !== clusterId(dir)) throw new Error(`proposal ${id} is for cluster ${proposal.clusterId}, not this one`);
  if (got.Status !== 'Pending') throw new Error(`proposal ${id} is ${String(got.Status).toLowerCase()}${got.Outcome ? ` (${String(got.Outcome)})` : ''}; nothing to ${verb}`);
  return { proposal, governance };
}

/** `mpchsm approve <id> --as NAME`: signs proposal `id` and submits it; prints the outcome. */
export async function approve(dir: string, id: string, as: string, json: boolean, quiet = false): Promise<void> {
  const { proposal, governance } = await openProposal(dir, id, as, 'approve');
  // The proposer's approval of a new principal vouches for the secret it sealed, so only the
  // command that made that secret gives it; a proposal in someone's name that they did not
  // make here may carry one the gateway knows.
  if (proposal.operation === 'mpchsm:AddPrincipal' && proposal.proposer === as)
    throw new Error(`proposal ${id} adds a principal in ${as}'s name: ${as} approves such a proposal only when making it (mpchsm principal add), never afterwards`);
  if (proposal.operation === 'mpchsm:UpdateGovernance') {
    const wrong = successorProblem(governance, governanceUpdateSchema.parse(proposal.parameters).Document);
    if (wrong) throw new Error(`proposal ${id}: ${wrong}`);
  }
  if (!json && !quiet) {
    console.log(`proposal ${id}: ${describeProposal(proposal, governance)}`);
    console.log(`  proposed by ${proposal.proposer}, open until ${new Date(proposal.expiresAt).toISOString()}; signing as ${as}`);
  }
  await submitApproval(dir, as, proposal, json, {}, quiet);
}

/**
 * `mpchsm refuse <id> --as NAME`: signs a refusal of proposal `id` and submits it. The gateway
 * closes the proposal as refused: it takes no more approvals and is never executed.
 */
export async function refuse(dir: string, id: string, as: string, json: boolean): Promise<void> {
  const { proposal, governance } = await openProposal(dir, id, as, 'refuse');
  const secret = approvalSecret(dir, as);
  let out: Record<string, unknown>;
  try {
    out = await call(dir, as, 'MpcHsm.Refuse', { ProposalId: id, Refusal: signRefusal(proposal, as, secret) });
  } finally {
    secret.fill(0);
  }
  if (json) return void console.log(JSON.stringify(out));
  console.log(`proposal ${id}: ${describeProposal(proposal, governance)}`);
  console.log(`  ${String(out.Status).toLowerCase()}${out.Outcome ? ` (${String(out.Outcome)})` : ''}: it can no longer be approved or executed`);
}

export interface ApproveSignOptions {
  key: string;
  digest: string;
  algorithm?: string | undefined;
  /** Minutes the approval stays valid (default 60, at most 24 h). */
  ttlMinutes?: number | undefined;
}

/** `mpchsm approve-sign --key K --digest HEX [--algorithm A] --as NAME`: approves one signature. */
export async function approveSign(dir: string, as: string, o: ApproveSignOptions, json: boolean): Promise<void> {
  const digest = o.digest.toLowerCase();
  // Raw PKCS#1 v1.5 (PKCS#11's CKM_RSA_PKCS) signs the given bytes themselves: those are its digest.
  const raw = o.algorithm === RSA_PKCS1_RAW;
  if (!(raw ? /^(?:[0-9a-f]{2}){1,512}$/ : /^(?:[0-9a-f]{2}){32,64}$/).test(digest)) throw new Error(raw ? '--digest takes the bytes to sign in hex (1 to 512 bytes)' : '--digest takes the message digest in hex (32 to 64 bytes)');
  const ttl = (o.ttlMinutes ?? 60) * 60_000;
  if (ttl <= 0 || ttl > MAX_SIGN_APPROVAL_TTL_MS) throw new Error('--ttl is 1 to 1440 minutes');
  approvalKeyPath(dir, as);
  await syncGovernance(dir, as);
  const secret = approvalSecret(dir, as);
  try {
    const meta = (await call(dir, as, 'TrentService.DescribeKey', { KeyId: o.key })).KeyMetadata as { KeyId: string; SigningAlgorithms?: string[] };
    const algorithms = meta.SigningAlgorithms ?? [];
    const algorithm = o.algorithm ?? (algorithms.length === 1 ? algorithms[0] : undefined);
    if (!algorithm) throw new Error(`key ${meta.KeyId} signs with ${algorithms.join(', ') || 'no algorithm'}: name one with --algorithm`);
    const approval = signSignApproval(
      { clusterId: clusterId(dir), keyId: meta.KeyId, algorithm: algorithm as never, digest, expiresAt: Date.now() + ttl, nonce: randomBytes(16).toString('hex'), approver: as },
      secret,
    );
    const out = await call(dir, as, 'MpcHsm.ApproveSign', { Approval: approval });
    if (json) console.log(JSON.stringify(out));
    else console.log(`signature of ${digest} with key ${meta.KeyId} (${algorithm}): ${String(out.Approvals)} of ${String(out.Required)} approvals, valid until ${new Date(approval.expiresAt).toISOString()}`);
  } finally {
    secret.fill(0);
  }
}
