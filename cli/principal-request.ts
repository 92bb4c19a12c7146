// `mpchsm principal request` and `mpchsm principal propose`: a newcomer makes its own secrets on
// its own host, and an administrator proposes it from a public file — the proposer never holds
// the newcomer's secret, PIN or approval key (shared/CONTRACT.md, "Deployment across hosts").
//
// The request (NAME.request.json, public) carries the access key id, the PIN's login-key hash
// and the secrets sealed to each active signer's pinned identity (policy/membership.ts: the
// signers verify every principal's requests); for an
// administrator also its approval key and the next governance version that adds it, signed with
// that key (its proof of possession: each signer checks it when the version takes effect). The
// genesis file gives the signers, endpoint, region and PIN parameters; `up`'s directory may stand
// for it, and then also gives the signers admitted since.
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519PublicKey } from '../contract/identity/curve25519.js';
import { z } from 'zod';
import { loadGatewayConfig } from '../gateway/config.js';
import { governanceFile, governanceFileSchema } from '../gateway/governance/chain.js';
import { newPrincipal } from '../gateway/principals.js';
import {
  ADMIN_NAME_RE,
  approvalKeyOf,
  governanceDigest,
  governanceDocumentSchema,
  governanceKeySignatureSchema,
  principalEnrolmentSchema,
  readGenesis,
  signGovernance,
  type Genesis,
  verifyGovernanceChain,
  type GovernanceDocument,
} from '../policy/index.js';
import { canonicalJson } from '../contract/canonical.js';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { toHex } from '../contract/bytes.js';
import { submitApproval, syncGovernance } from './approve.js';
import { writePrincipalEnv } from './parties.js';
import type { PublicIdentity } from '../contract/identity/identity.js';
import { layout } from './layout.js';
import { pinnedSigners } from './pinned.js';
import { enrol, proposeChecked, refuseExisting } from './enrolment.js';
import { readJsonFile } from '../contract/io/json-file.js';

export const requestFileSchema = z.strictObject({
  Request: z.literal('mpchsm-principal-request-v1'),
  Enrolment: principalEnrolmentSchema,
  /** Administrators: the next governance version adding them, and their signature over it. */
  Governance: z.strictObject({ Document: governanceDocumentSchema, Possession: governanceKeySignatureSchema }).optional(),
});
export type PrincipalRequest = z.infer<typeof requestFileSchema>;

/** The governance chain in force: the one held in `held` if it verifies and starts at the genesis, else the genesis's. */
function governanceInForce(g: Genesis, held: string): { chain: unknown[]; governance: GovernanceDocument } {
  const stored = existsSync(held) ? readJsonFile(held, governanceFileSchema).chain : [];
  const chain = stored.length > 0 && canonicalJson(stored[0]) === canonicalJson(g.governance) ? stored : [g.governance];
  const r = verifyGovernanceChain(chain);
  if (!r.ok) throw new Error(`the governance chain in ${held} does not verify: ${r.reason}`);
  return { chain, governance: r.governance };
}

/** The signers a secret is sealed to: those of `up`'s cluster not retired. */
function activeSigners(cluster: string): string[] {
  const L = layout(cluster);
  const retiredFile = path.join(L.gateway, 'retired-signers.json');
  const retired: number[] = existsSync(retiredFile) ? readJsonFile(retiredFile, z.object({ retired: z.array(z.number()) })).retired : [];
  return loadGatewayConfig(L.gateway).signers.filter((s) => !retired.includes(s.id)).map((s) => s.name);
}

/**
 * Where the newcomer's request goes: `genesis` names the cluster's genesis file, whose signers it
 * is sealed to — or the directory of a cluster made by `up`, whose current signers and chain it
 * also holds.
 */
function cluster(genesis: string, dir: string): { g: Genesis; recipients: { party: number; identity: PublicIdentity }[]; chain: unknown[]; governance: GovernanceDocument } {
  if (!statSync(genesis).isDirectory()) {
    const g = readGenesis(genesis);
    return { g, recipients: g.signers.map((s) => ({ party: s.id, identity: s.identity })), ...governanceInForce(g, governanceFile(dir)) };
  }
  const g = readGenesis(layout(genesis).genesis);
  const recipients = pinnedSigners(genesis, activeSigners(genesis)).map((p) => ({ party: p.party, identity: p.identity }));
  return { g, recipients, ...governanceInForce(g, governanceFile(layout(genesis).gateway)) };
}

/** `mpchsm principal request --name NAME --role app|auditor|admin --genesis FILE --dir P`. */
export async function principalRequest(o: { name: string; role: string; genesis: string; dir: string; json: boolean; quiet?: boolean }): Promise<void> {
  if (!ADMIN_NAME_RE.test(o.name)) throw new Error(`'${o.name}' is not a principal name (1-64 of A-Z a-z 0-9 _ . @ -)`);
  if (o.role !== 'app' && o.role !== 'auditor' && o.role !== 'admin') throw new Error(`--role is app, auditor or admin, not '${o.role}'`);
  const role = o.role;
  const out = path.resolve(o.dir);
  const files = { request: path.join(out, `${o.name}.request.json`), env: path.join(out, `${o.name}.env`), approvalKey: path.join(out, `${o.name}.approval.key`) };
  for (const f of Object.values(files)) refuseExisting(f, o.name);
  const { g, recipients, chain, governance: current } = cluster(o.genesis, out);
  const made = newPrincipal(o.name, role, g.pinKdf);
  const request: PrincipalRequest = { Request: 'mpchsm-principal-request-v1', Enrolment: enrol(made, recipients) };
  let approvalSecret: Uint8Array | undefined;
  if (role === 'admin') {
    if (approvalKeyOf(current, o.name)) throw new Error(`${o.name} is already an administrator of governance v${current.version}`);
    approvalSecret = ed25519.utils.randomSecretKey();
    const document = governanceDocumentSchema.parse({
      ...current,
      version: current.version + 1,
      previous: toHex(governanceDigest(current)),
      administrators: [...current.administrators, { name: o.name, approvalKey: toHex(ed25519PublicKey(approvalSecret)) }],
    });
    request.Governance = { Document: document, Possession: signGovernance(document, o.name, approvalSecret) };
  }
  try {
    await mkdir(out, { recursive: true, mode: 0o700 });
    if (approvalSecret) await writeFileAtomic(files.approvalKey, Buffer.from(toHex(approvalSecret) + '\n'), 0o600);
    await writePrincipalEnv(out, g, made.credentials);
    await writeFileAtomic(files.request, Buffer.from(JSON.stringify(request, null, 2) + '\n'), 0o644);
    // The chain this principal's tools verify the cluster's governance against from now on.
    if (!existsSync(governanceFile(out))) await writeFileAtomic(governanceFile(out), Buffer.from(JSON.stringify({ chain }, null, 2) + '\n'), 0o644);
  } finally {
    approvalSecret?.fill(0);
  }
  if (o.quiet) return;
  if (o.json) return console.log(JSON.stringify({ Request: files.request, CredentialsFile: files.env, Name: o.name, Role: role }));
  console.log(`${files.request}: hand it to an administrator (mpchsm principal propose); ${files.env} works once the proposal is executed`);
}

/** `mpchsm principal propose FILE --as ADMIN --dir A`: proposes the request; the proposer's approval is given with it. */
export async function principalPropose(file: string, dir: string, as: string, json: boolean, quiet = false): Promise<{ proposal: string; executed: boolean }> {
  const r = readJsonFile(file, requestFileSchema);
  const e = r.Enrolment;
  const { governance: current } = await syncGovernance(dir, as);
  if ((e.Role === 'admin') !== (r.Governance !== undefined)) throw new Error(`${file}: an administrator's request, and only one, carries its governance version`);
  let proposal;
  if (r.Governance) {
    // Exactly the version in force with this one administrator added: nothing else changes.
    const doc = r.Governance.Document;
    const added = doc.administrators.at(-1);
    const expected = { ...current, version: current.version + 1, previous: toHex(governanceDigest(current)), administrators: [...current.administrators, added] };
    if (added?.name !== e.Name || canonicalJson(doc) !== canonicalJson(expected))
      throw new Error(`${file} asks for a governance version other than v${current.version} with ${e.Name} added (the governance changed since the request was made?): ask for a new request`);
    if (r.Governance.Possession.admin !== e.Name) throw new Error(`${file}: the proof of possession is not ${e.Name}'s`);
    proposal = await proposeChecked(dir, as, 'mpchsm:UpdateGovernance', { Document: doc, Possession: [r.Governance.Possession], Principals: [e] });
  } else {
    proposal = await proposeChecked(dir, as, 'mpchsm:AddPrincipal', e);
  }
  if (!json && !quiet) console.log(`proposal ${proposal.id}: add ${e.Role === 'admin' ? 'administrator' : 'principal'} ${e.Name} (${e.Role}), access key ${e.AccessKeyId}`);
  const status = await submitApproval(dir, as, proposal, json, { proposal: proposal.id, Name: e.Name }, quiet);
  return { proposal: proposal.id, executed: status === 'Executed' };
}
