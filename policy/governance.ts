// The governance policy: who the administrators are (name and Ed25519 approval key), and how
// many of them (M of N) must approve each sensitive operation. Every signer holds its own
// verified copy and checks approvals against it, never against the gateway's word.
//
// The document is versioned and hash-chained. Version 1 (bootstrap) is signed by every initial
// administrator. Version v+1 names the digest of version v and is valid only if signed by the
// quorum that version v requires for mpchsm:UpdateGovernance, counted among version v's
// administrators with version v's keys; every administrator whose key is new in v+1 signs it too
// with that key (proof of possession and consent). Signatures cover the domain-separated digest
// of the canonical JSON (canonical.ts).
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519Sign, ed25519Verify } from '../contract/identity/curve25519.js';
import { z } from 'zod';
import { fromHex, toHex } from '../contract/bytes.js';
import { canonicalDigest, DOMAINS } from '../contract/canonical.js';
import { isAction, type Action } from './roles.js';
import { CounterBook, verifyWebAuthnAssertion, webauthnAssertionSchema, webauthnCredentialSchema, type WebAuthnAssertion, type WebAuthnCredential } from './webauthn.js';

export const ADMIN_NAME_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
const hex32 = z.string().regex(/^[0-9a-f]{64}$/, '32 bytes, lower-case hex');
export const signatureHexSchema = z.string().regex(/^[0-9a-f]{128}$/, '64 bytes, lower-case hex');

function isStrongEd25519Key(hex: string): boolean {
  try {
    return !ed25519.Point.fromBytes(fromHex(hex), false).isSmallOrder();
  } catch {
    return false;
  }
}

/** Operations every governance version must put under quorum (at least one approval). */
export const UNDER_QUORUM_ALWAYS: readonly Action[] = ['mpchsm:UpdateGovernance', 'mpchsm:AddPrincipal', 'mpchsm:RemovePrincipal', 'mpchsm:AddSigner', 'mpchsm:RemoveSigner'];

export const governanceDocumentSchema = z
  .strictObject({
    clusterId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    /** Hex governanceDigest of the previous version; absent in version 1. */
    previous: hex32.optional(),
    administrators: z
      .array(
        z.strictObject({
          name: z.string().regex(ADMIN_NAME_RE),
          approvalKey: hex32,
          /** Security keys or passkeys that approve as this administrator too (policy/webauthn.ts). */
          webauthn: z.array(webauthnCredentialSchema).min(1).max(8).optional(),
        }),
      )
      .min(1)
      .max(64),
    /** Approvals required per operation (`kms:ScheduleKeyDeletion`: 2); unlisted: none. */
    quorum: z.record(z.string(), z.number().int().min(1)),
    /**
     * require_attestation: a signer is founded or admitted only with an attestation (a TPM quote
     * over its identity) that each signer verifies itself (signers/node/tpm/admission.ts).
     */
    requireAttestation: z.boolean().optional(),
  })
  .superRefine((doc, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    if ((doc.version === 1) !== (doc.previous === undefined)) issue(['previous'], 'version 1, and only version 1, has no previous digest');
    const names = new Set<string>();
    const keys = new Set<string>();
    for (const [i, a] of doc.administrators.entries()) {
      if (names.has(a.name)) issue(['administrators', i, 'name'], `administrator ${a.name} is listed twice`);
      // One key for two names would let one person count twice.
      if (keys.has(a.approvalKey)) issue(['administrators', i, 'approvalKey'], `administrator ${a.name} shares an approval key`);
      if (!isStrongEd25519Key(a.approvalKey)) issue(['administrators', i, 'approvalKey'], `administrator ${a.name}: not a valid Ed25519 public key`);
      names.add(a.name);
      keys.add(a.approvalKey);
      for (const c of a.webauthn ?? []) {
        // A credential under two names would let one person count twice, as a shared key would.
        if (keys.has(c.id)) issue(['administrators', i, 'webauthn'], `administrator ${a.name}: credential ${c.id} is enrolled twice`);
        keys.add(c.id);
      }
    }
    for (const [op, m] of Object.entries(doc.quorum)) {
      if (!isAction(op)) issue(['quorum', op], `unknown operation ${op}`);
      if (m > doc.administrators.length) issue(['quorum', op], `${op} needs ${m} approvals but there are ${doc.administrators.length} administrators`);
    }
    // Never on the gateway's word alone: who governs, and who may authenticate at all.
    for (const op of UNDER_QUORUM_ALWAYS) if (!doc.quorum[op]) issue(['quorum'], `${op} must need at least one approval`);
  });
export type GovernanceDocument = z.infer<typeof governanceDocumentSchema>;

/** A signature with an administrator's approval key (bootstrap, and proof of possession of a new key). */
export const governanceKeySignatureSchema = z.strictObject({ admin: z.string().regex(ADMIN_NAME_RE), signature: signatureHexSchema });
/** An update's approval: by approval key, or by a security key enrolled in the version in force (its digest the challenge). */
export const governanceSignatureSchema = z.union([governanceKeySignatureSchema, z.strictObject({ admin: z.string().regex(ADMIN_NAME_RE), webauthn: webauthnAssertionSchema })]);
export type GovernanceSignature = z.infer<typeof governanceSignatureSchema>;
export const signedGovernanceSchema = z.strictObject({
  document: governanceDocumentSchema,
  signatures: z.array(governanceSignatureSchema).min(1).max(256),
});
export type SignedGovernance = z.infer<typeof signedGovernanceSchema>;

export type GovernanceResult = { ok: true; governance: GovernanceDocument } | { ok: false; reason: string };

/** Operations the default governance puts under a majority of administrators. */
export const DEFAULT_QUORUM_ACTIONS: readonly Action[] = [
  'kms:ScheduleKeyDeletion', 'kms:PutKeyPolicy', 'kms:DisableKey',
  // Destroys an imported key at once: the same stakes as deletion, without the waiting period.
  'kms:DeleteImportedKeyMaterial',
  'mpchsm:AddSigner', 'mpchsm:RemoveSigner', 'mpchsm:AddPrincipal', 'mpchsm:RemovePrincipal', 'mpchsm:UpdateGovernance',
];

/**
 * Version 1 for a new cluster: a majority (2 of 3) for DEFAULT_QUORUM_ACTIONS, one approval for
 * CreateKey. It still has to be signed by every administrator (signGovernance).
 */
export function defaultGovernance(clusterId: string, administrators: readonly { name: string; approvalKey: string }[]): GovernanceDocument {
  const majority = Math.floor(administrators.length / 2) + 1;
  const quorum: Record<string, number> = { 'kms:CreateKey': 1 };
  for (const a of DEFAULT_QUORUM_ACTIONS) quorum[a] = majority;
  return governanceDocumentSchema.parse({ clusterId, version: 1, administrators: administrators.map((a) => ({ ...a })), quorum });
}

export const governanceDigest = (doc: GovernanceDocument): Uint8Array => canonicalDigest(DOMAINS.governance, doc);

/** An administrator's signature over a governance document (bootstrap or update). */
export function signGovernance(doc: GovernanceDocument, admin: string, approvalSecretKey: Uint8Array): z.infer<typeof governanceKeySignatureSchema> {
  return { admin, signature: toHex(ed25519Sign(governanceDigest(doc), approvalSecretKey)) };
}

/** Approvals `action` needs under `gov` (0: none). */
/**
 * Actions that need at least another's quorum: restoring a signer admits a new identity for its
 * party, as adding one does, so it never needs fewer approvals than AddSigner (which every
 * version puts under quorum), even under a governance written before RestoreSigner existed.
 */
const AT_LEAST_QUORUM_OF: Partial<Record<Action, Action>> = { 'mpchsm:RestoreSigner': 'mpchsm:AddSigner' };

export const quorumFor = (gov: GovernanceDocument, action: Action): number => {
  const floor = AT_LEAST_QUORUM_OF[action];
  return Math.max(gov.quorum[action] ?? 0, floor ? (gov.quorum[floor] ?? 0) : 0);
};

export const approvalKeyOf = (gov: GovernanceDocument, name: string): string | undefined =>
  gov.administrators.find((a) => a.name === name)?.approvalKey;

/** `name`'s enrolled WebAuthn credential with id `id`, if any. */
export const webauthnCredentialOf = (gov: GovernanceDocument, name: string, id: string): WebAuthnCredential | undefined =>
  gov.administrators.find((a) => a.name === name)?.webauthn?.find((c) => c.id === id);

const verifies = (sigHex: string, digest: Uint8Array, keyHex: string) =>
  ed25519Verify(fromHex(sigHex), digest, fromHex(keyHex));

/** How an administrator approves a statement: with its approval key, or with a security key enrolled for it. */
export type AdminProof = { signature: string } | { webauthn: WebAuthnAssertion };

/**
 * Whether `admin` of `gov` made `proof` over `digest` (the statement's digest, which is also the
 * WebAuthn challenge): every approval — of a proposal, a governance version, a signature — is
 * checked here. A WebAuthn assertion's counter must be above what `book` holds for its
 * credential; it is entered in `book`, for the caller to record once the approval is spent.
 * `admin` is an administrator of `gov` (the caller's check, with its own refusal).
 */
export function verifyAdminProof(gov: GovernanceDocument, admin: string, proof: AdminProof, digest: Uint8Array, book: CounterBook): { ok: true } | { ok: false; reason: string } {
  const key = approvalKeyOf(gov, admin);
  if (!key) return { ok: false, reason: `is not by an administrator of governance v${gov.version}` };
  if ('signature' in proof) return verifies(proof.signature, digest, key) ? { ok: true } : { ok: false, reason: 'does not verify' };
  const w = proof.webauthn;
  const credential = webauthnCredentialOf(gov, admin, w.credentialId);
  if (!credential) return { ok: false, reason: `is made with credential ${w.credentialId}, which governance v${gov.version} does not enrol for ${admin}` };
  const v = verifyWebAuthnAssertion(w, credential, digest, book.last(w.credentialId));
  if (!v.ok) return { ok: false, reason: `(WebAuthn) does not verify: ${v.reason}` };
  book.uses.push({ credentialId: w.credentialId, counter: v.counter });
  return { ok: true };
}

function parseSigned(signed: unknown): SignedGovernance | string {
  const r = signedGovernanceSchema.safeParse(signed);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  return `malformed governance document: ${i.path.join('.')}: ${i.message}`;
}

/** Verifies the bootstrap document: version 1, signed by every administrator it lists. */
export function verifyGenesis(signed: unknown): GovernanceResult {
  const s = parseSigned(signed);
  if (typeof s === 'string') return { ok: false, reason: s };
  const doc = s.document;
  if (doc.version !== 1) return { ok: false, reason: `a bootstrap governance document is version 1, not ${doc.version}` };
  const digest = governanceDigest(doc);
  const signedBy = new Set<string>();
  for (const sig of s.signatures) {
    const key = approvalKeyOf(doc, sig.admin);
    if (!key) return { ok: false, reason: `governance v1 is signed by ${sig.admin}, who is not one of its administrators` };
    if (!('signature' in sig)) return { ok: false, reason: `governance v1 is signed by ${sig.admin} with a security key: the initial administrators sign it with their approval keys` };
    if (!verifies(sig.signature, digest, key)) return { ok: false, reason: `governance v1: the signature of ${sig.admin} does not verify` };
    signedBy.add(sig.admin);
  }
  const missing = doc.administrators.filter((a) => !signedBy.has(a.name)).map((a) => a.name);
  if (missing.length) return { ok: false, reason: `governance v1 must be signed by every initial administrator; missing: ${missing.join(', ')}` };
  return { ok: true, governance: doc };
}

/** Why `doc` cannot be the version after `current` (cluster, number, previous digest), if it cannot. */
export function successorProblem(current: GovernanceDocument, doc: GovernanceDocument): string | undefined {
  const v = `governance v${doc.version}`;
  if (doc.clusterId !== current.clusterId) return `${v} is for cluster ${doc.clusterId}, not ${current.clusterId}`;
  if (doc.version !== current.version + 1) return `${v} does not follow v${current.version} (expected v${current.version + 1})`;
  if (doc.previous !== toHex(governanceDigest(current))) return `${v} does not name the digest of v${current.version} as previous`;
  return undefined;
}

/**
 * Verifies `next` as the successor of the trusted `current` document. Security-key approvals'
 * counters go by `book` (a signer's recorded counters when it applies the update; along the
 * chain, each link's above the last's) and are entered in it.
 */
export function verifyGovernanceUpdate(current: GovernanceDocument, next: unknown, book = new CounterBook()): GovernanceResult {
  const s = parseSigned(next);
  if (typeof s === 'string') return { ok: false, reason: s };
  const doc = s.document;
  const v = `governance v${doc.version}`;
  const wrong = successorProblem(current, doc);
  if (wrong) return { ok: false, reason: wrong };

  const digest = governanceDigest(doc);
  const approvedBy = new Set<string>(); // current administrators, with their current keys
  const possessed = new Set<string>(); // administrators of `doc`, with their new keys
  for (const sig of s.signatures) {
    const oldKey = approvalKeyOf(current, sig.admin);
    const newKey = approvalKeyOf(doc, sig.admin);
    if (!oldKey && !newKey) return { ok: false, reason: `${v} is signed by ${sig.admin}, an administrator of neither v${current.version} nor v${doc.version}` };
    if ('webauthn' in sig) {
      // A security key approves for an administrator of the version in force; it proves no new approval key.
      const r = oldKey ? verifyAdminProof(current, sig.admin, sig, digest, book) : { ok: false as const, reason: `is made by ${sig.admin}, not an administrator of v${current.version}` };
      if (!r.ok) return { ok: false, reason: `${v}: the approval by ${sig.admin} ${r.reason}` };
      approvedBy.add(sig.admin);
      continue;
    }
    const byOld = oldKey !== undefined && verifies(sig.signature, digest, oldKey);
    const byNew = newKey !== undefined && (newKey === oldKey ? byOld : verifies(sig.signature, digest, newKey));
    if (!byOld && !byNew) return { ok: false, reason: `${v}: the signature of ${sig.admin} does not verify` };
    if (byOld) approvedBy.add(sig.admin);
    if (byNew) possessed.add(sig.admin);
  }
  const m = quorumFor(current, 'mpchsm:UpdateGovernance');
  if (approvedBy.size < m) {
    return {
      ok: false,
      reason: `${v} needs approval by ${m} of the ${current.administrators.length} administrators of v${current.version}; it has ${approvedBy.size} (${[...approvedBy].join(', ') || 'none'})`,
    };
  }
  const unproven = doc.administrators.filter((a) => approvalKeyOf(current, a.name) !== a.approvalKey && !possessed.has(a.name));
  if (unproven.length) return { ok: false, reason: `${v} adds approval keys not signed by their holders: ${unproven.map((a) => a.name).join(', ')}` };
  return { ok: true, governance: doc };
}

/** Verifies a whole chain, bootstrap first; the result is its last version. */
export function verifyGovernanceChain(chain: readonly unknown[]): GovernanceResult {
  if (chain.length === 0) return { ok: false, reason: 'empty governance chain' };
  let r = verifyGenesis(chain[0]);
  const book = new CounterBook();
  for (const next of chain.slice(1)) {
    if (!r.ok) return r;
    r = verifyGovernanceUpdate(r.governance, next, book);
  }
  return r;
}
