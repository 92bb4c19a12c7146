// `mpchsm principal add|remove` and `mpchsm governance show|propose`: changes to who may act,
// proposed by an administrator and executed once the governance's quorum approved them
// (`mpchsm approve`). The proposer's own approval is given here, with the proposal.
//
// `principal add` is the one-directory convenience: the new principal's credentials are made by
// the proposing administrator's tool (principal-request.ts is the way where they are separate
// people); the gateway never sees a principal's secret. The secret is sealed (policy/membership.ts) to the
// signers' identities this DIR has pinned (DIR/signers/NAME/identity.json) — the signers verify
// every principal's requests — never to identities the gateway reports. The proposal
// the gateway stores is read back and approved only if it carries exactly what was sent.
// DIR/principals/NAME.env (mode 0600) is written for the proposer to hand over; it works once
// the proposal is executed.
//
// Administrators are removed and re-keyed by governance updates. `governance propose --file F`
// takes {"quorum": {OPERATION: M, …}, "administrators": [{"name": N, "approvalKey": "new"?}, …]}:
// quorum entries replace the current ones (0 removes one); the administrator list, when given, is
// the new list of current administrators; "new" renews the proposer's own key, which signs the
// proposed version. A new administrator makes its own key and asks to join (principal-request.ts).
// {"webauthn": {N: [CREDENTIAL, …]}} sets the security keys N approves with (policy/webauthn.ts;
// the console's enrol page shows a credential's JSON); only N proposes N's, [] removes them.
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519PublicKey } from '../contract/identity/curve25519.js';
import { z } from 'zod';
import { newPrincipal, type NewPrincipal } from '../gateway/principals.js';
import {
  ADMIN_NAME_RE,
  governanceDigest,
  governanceDocumentSchema,
  signGovernance,
  signerRestorationSchema,
  webauthnCredentialSchema,
} from '../policy/index.js';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { fingerprint, parsePublicIdentity, type PublicIdentity } from '../contract/identity/identity.js';
import { toHex } from '../contract/bytes.js';
import { call, nextApprovalKeyFile, readEnv, submitApproval, syncGovernance } from './approve.js';
import { formatEnvFile, principalEnvVars } from './env-file.js';
import { layout } from './layout.js';
import { pinnedSigners } from './pinned.js';
import { startNewSigner } from './cluster.js';
import { enrol, proposeChecked, refuseExisting } from './enrolment.js';
import { readJsonFile } from '../contract/io/json-file.js';
import { LiveProgress } from './progress.js';

// ---- pinned identities and credential files -------------------------------------------------

/** Every active signer, as pinned in DIR, as the recipients of a new principal's sealed secrets. */
const signerRecipients = (dir: string, signers: readonly { Name: string; State: string }[]): { party: number; identity: PublicIdentity }[] =>
  pinnedSigners(dir, signers.filter((s) => s.State === 'Active').map((s) => s.Name));

/** DIR/principals/NAME.env for a new principal, reaching the cluster the way `as` does. */
function writeEnv(dir: string, as: string, c: NewPrincipal): Promise<void> {
  const env = readEnv(dir, as);
  const at = { kms: env.MPCHSM_KMS_ENDPOINT ?? '', region: env.AWS_REGION ?? '', ...(env.AWS_CA_BUNDLE ? { caBundle: env.AWS_CA_BUNDLE } : {}) };
  const confs = { pkcs11Conf: env.MPCHSM_PKCS11_CONF ?? '', pkcs11OpensslConf: env.MPCHSM_PKCS11_OPENSSL_CONF ?? '' };
  return writeFileAtomic(layout(dir).principalEnv(c.name), Buffer.from(formatEnvFile(principalEnvVars(c, at, confs))), 0o600);
}


// ---- the commands ---------------------------------------------------------------------------

/** `mpchsm principal add NAME --role app|auditor --as ADMIN`. */
export async function principalAdd(dir: string, name: string, role: string, as: string, json: boolean): Promise<void> {
  if (!ADMIN_NAME_RE.test(name)) throw new Error(`'${name}' is not a principal name (1-64 of A-Z a-z 0-9 _ . @ -)`);
  if (role === 'admin') throw new Error('administrators are added by a governance update, which gives them an approval key: mpchsm governance propose');
  if (role !== 'app' && role !== 'auditor') throw new Error(`--role is app or auditor, not '${role}'`);
  const file = layout(dir).principalEnv(name);
  refuseExisting(file, name);
  const { pinKdf, signers } = await syncGovernance(dir, as);
  const made = newPrincipal(name, role, pinKdf);
  const enrolment = enrol(made, signerRecipients(dir, signers));
  const proposal = await proposeChecked(dir, as, 'mpchsm:AddPrincipal', enrolment);
  await writeEnv(dir, as, made.credentials);
  if (!json) console.log(`proposal ${proposal.id}: add principal ${name} (${role}); its credentials are in ${file}, usable once the proposal is executed`);
  await submitApproval(dir, as, proposal, json, { CredentialsFile: file });
}

/** `mpchsm principal remove NAME --as ADMIN`. */
export async function principalRemove(dir: string, name: string, as: string, json: boolean): Promise<void> {
  await syncGovernance(dir, as);
  const proposal = await proposeChecked(dir, as, 'mpchsm:RemovePrincipal', { Name: name });
  if (!json) console.log(`proposal ${proposal.id}: remove principal ${name}`);
  await submitApproval(dir, as, proposal, json);
}

/**
 * `mpchsm signer admit NAME --as ADMIN`: finishes an approved addition that stopped half-way (the
 * newcomer or an active signer was down): admits NAME if it is not yet, and reshares to it the
 * keys it lacks. No new approval: the addition was approved.
 */
export async function signerAdmit(dir: string, name: string, as: string, json: boolean): Promise<void> {
  const r = admissionSchema.parse(await new LiveProgress().during(`mpchsm: admitting ${name} and resharing to it the keys it lacks`, call(dir, as, 'MpcHsm.AdmitSigner', { Name: name })));
  if (json) return console.log(JSON.stringify(r));
  console.log(`signer ${r.Signer.Name}: ${r.Signer.Admitted ? 'admitted' : `not admitted: ${r.Signer.Reason ?? 'unknown reason'}`}`);
  for (const k of r.Reshared) console.log(`  key ${k.KeyId}: reshared to signers ${k.Holders.join(', ')}`);
  for (const k of r.Failed) console.log(`  key ${k.KeyId}: not reshared: ${k.Reason}`);
}

const admissionSchema = z.object({
  Signer: z.object({ Name: z.string(), Admitted: z.boolean(), Reason: z.string().optional() }),
  Reshared: z.array(z.object({ KeyId: z.string(), Holders: z.array(z.number()) })),
  Failed: z.array(z.object({ KeyId: z.string(), Reason: z.string() })),
});

/**
 * `mpchsm signer remove NAME --as ADMIN`: once approved, every remaining signer retires NAME and
 * its keys are reshared among the remaining signers.
 */
export async function signerRemove(dir: string, name: string, as: string, json: boolean): Promise<void> {
  await syncGovernance(dir, as);
  const proposal = await proposeChecked(dir, as, 'mpchsm:RemoveSigner', { Name: name });
  if (!json) console.log(`proposal ${proposal.id}: remove signer ${name} and reshare its keys among the remaining signers`);
  await submitApproval(dir, as, proposal, json);
}

/**
 * `mpchsm signer add --as ADMIN`: starts the next signer of this DIR awaiting admission, and
 * proposes adding it. Once approved, every active signer pins its identity and hands it their
 * policy state, and every key is reshared to include it.
 */
export async function signerAdd(dir: string, as: string, json: boolean): Promise<void> {
  const { signers } = await syncGovernance(dir, as);
  const s = await startNewSigner(dir, signers.filter((x) => x.State === 'Active').map((x) => x.Name), json);
  const proposal = await proposeChecked(dir, as, 'mpchsm:AddSigner', { Name: s.name, Id: s.id, Identity: s.identity, Endpoint: s.url, ...(s.attestation ? { Attestation: s.attestation } : {}) });
  if (!json) console.log(`proposal ${proposal.id}: add signer ${s.name} (party ${s.id}, identity fingerprint ${s.identity.fingerprint}) and reshare the keys to include it`);
  await submitApproval(dir, as, proposal, json);
}

/**
 * `mpchsm signer rejoin FILE --as ADMIN`: proposes the restoration `mpchsm signer restore` wrote
 * (NAME.restore.json). The approvers compare the new identity's fingerprint and the backup's
 * SHA-256 with the restoring operator's and custodian's, out of band; each signer checks the
 * backup is current before it pins the new identity (signers/node/guard/restore.ts).
 */
export async function signerRejoin(dir: string, file: string, as: string, json: boolean): Promise<void> {
  const r = readJsonFile(file, signerRestorationSchema);
  await syncGovernance(dir, as);
  const proposal = await proposeChecked(dir, as, 'mpchsm:RestoreSigner', r);
  if (!json) console.log(`proposal ${proposal.id}: restore signer ${r.Name} (party ${r.Id}) with a new identity (fingerprint ${fingerprint(parsePublicIdentity(r.Identity))}) from backup ${r.Backup.Sha256.slice(0, 16)}… made ${r.Backup.Created}${r.ReviveEpoch ? ', reviving the older sharings of its shares' : ''}`);
  await submitApproval(dir, as, proposal, json);
}

/** `mpchsm governance show --as NAME`: the version in force (verified here) and the principals. */
export async function governanceShow(dir: string, as: string, json: boolean): Promise<void> {
  const { governance, principals } = await syncGovernance(dir, as);
  if (json) return console.log(JSON.stringify({ Governance: governance, Principals: principals }));
  console.log(`governance v${governance.version} of cluster ${governance.clusterId}`);
  console.log(`  administrators: ${governance.administrators.map((a) => a.name).join(', ')}`);
  for (const [op, m] of Object.entries(governance.quorum).sort()) console.log(`  ${op.padEnd(32)} ${m} of ${governance.administrators.length}`);
  console.log(`principals: ${principals.map((p) => `${p.Name} (${p.Role})`).join(', ')}`);
}

const editSchema = z.strictObject({
  quorum: z.record(z.string(), z.number().int().min(0)).optional(),
  administrators: z.array(z.strictObject({ name: z.string().regex(ADMIN_NAME_RE), approvalKey: z.literal('new').optional() })).min(1).optional(),
  webauthn: z.record(z.string().regex(ADMIN_NAME_RE), z.array(webauthnCredentialSchema).max(8)).optional(),
});

/** `mpchsm governance propose --file F --as ADMIN`: proposes the next governance version. */
export async function governancePropose(dir: string, file: string, as: string, json: boolean): Promise<void> {
  const edit = readJsonFile(file, editSchema);
  const { governance: current } = await syncGovernance(dir, as);

  // Nobody's tool makes another person's key: a newcomer joins by its own request (principal
  // request/propose), and only the proposer's own key is renewed here.
  const fresh: { name: string; secret: Uint8Array }[] = [];
  const wanted: { name: string; approvalKey?: 'new' | undefined }[] = edit.administrators ?? current.administrators.map((a) => ({ name: a.name }));
  const administrators = wanted.map((a) => {
    const entry = current.administrators.find((x) => x.name === a.name);
    if (!entry) throw new Error(`${a.name} is not an administrator of v${current.version}: a new administrator makes its own key and asks to join (mpchsm principal request --role admin), then an administrator runs mpchsm principal propose`);
    const keys = edit.webauthn?.[a.name];
    if (keys && a.name !== as) throw new Error(`only ${a.name} enrols ${a.name}'s security keys (run this as ${a.name})`);
    const { webauthn: enrolled, ...kept } = entry;
    const webauthn = keys ?? enrolled ?? [];
    const next = { ...kept, ...(webauthn.length ? { webauthn } : {}) };
    if (a.approvalKey !== 'new') return next;
    if (a.name !== as) throw new Error(`only ${a.name} renews ${a.name}'s approval key (run this as ${a.name})`);
    const secret = ed25519.utils.randomSecretKey();
    fresh.push({ name: a.name, secret });
    return { ...next, approvalKey: toHex(ed25519PublicKey(secret)) };
  });
  const strangers = Object.keys(edit.webauthn ?? {}).filter((n) => !administrators.some((a) => a.name === n));
  if (strangers.length) throw new Error(`${strangers.join(', ')} would not be an administrator of the next version: no security keys to enrol`);
  const quorum = { ...current.quorum };
  for (const [op, m] of Object.entries(edit.quorum ?? {})) {
    if (m === 0) delete quorum[op];
    else quorum[op] = m;
  }
  try {
    const doc = governanceDocumentSchema.safeParse({ clusterId: current.clusterId, version: current.version + 1, previous: toHex(governanceDigest(current)), administrators, quorum });
    if (!doc.success) throw new Error(`the proposed governance is not valid: ${doc.error.issues[0]?.path.join('.')}: ${doc.error.issues[0]?.message}`);
    const parameters = { Document: doc.data, Possession: fresh.map((f) => signGovernance(doc.data, f.name, f.secret)), Principals: [] };
    const proposal = await proposeChecked(dir, as, 'mpchsm:UpdateGovernance', parameters);
    for (const f of fresh) await writeFileAtomic(nextApprovalKeyFile(dir, f.name), Buffer.from(toHex(f.secret) + '\n'), 0o600);
    if (!json) console.log(`proposal ${proposal.id}: governance v${doc.data.version}`);
    await submitApproval(dir, as, proposal, json);
  } finally {
    for (const f of fresh) f.secret.fill(0);
  }
}
