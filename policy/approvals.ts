// Proposals and M-of-N approvals. A proposal names the exact operation and its parameters; an
// approval is an administrator's Ed25519 signature (with the approval key the governance
// document lists) over the proposal's domain-separated canonical digest. So an approval cannot
// be moved to other parameters, another proposal, another cluster or another governance
// version. The proposer's own signed request, once its verifier checked it (admin-evidence.ts),
// counts as the proposer's approval; otherwise the proposer signs like everyone else.
//
// An approval is made with the administrator's approval key, or with a security key the
// governance enrols for them (webauthn.ts): the digest it signs is then the WebAuthn challenge.
// An administrator may also refuse a proposal: the same form over another domain's digest, which
// closes it at the gateway (gateway/proposals.ts).
//
// A governance update is approved by signing the proposed document itself (governance.ts), so
// its approvals are the signatures the governance chain keeps. A proposal that adds a principal
// needs its proposer's own approval besides the quorum: the proposer's tool made the principal's
// secret and sealed it (membership.ts), and approves only the proposal carrying exactly that.
import { ed25519Sign } from '../contract/identity/curve25519.js';
import { z } from 'zod';
import { toHex } from '../contract/bytes.js';
import { canonicalDigest, canonicalJson, DOMAINS } from '../contract/canonical.js';
import { ADMIN_NAME_RE, approvalKeyOf, governanceDigest, governanceDocumentSchema, quorumFor, signatureHexSchema, verifyAdminProof, type GovernanceDocument } from './governance.js';
import { isAction, type Action } from './roles.js';
import { CounterBook, webauthnAssertionSchema, type CounterUse } from './webauthn.js';

/** Longest a proposal may stay open. */
export const MAX_PROPOSAL_LIFETIME_MS = 7 * 24 * 3600_000;
/** Tolerated clock difference between the proposer and the verifier. */
export const CLOCK_SKEW_MS = 5 * 60_000;

const timestamp = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const proposalIdSchema = z.string().regex(/^[A-Za-z0-9._-]{8,128}$/);

export const proposalSchema = z
  .strictObject({
    id: proposalIdSchema,
    clusterId: z.string().min(1).max(64),
    operation: z.custom<Action>(isAction, 'unknown operation'),
    /** The operation's request parameters, exactly as it will be executed. */
    parameters: z.record(z.string(), z.unknown()),
    proposer: z.string().regex(ADMIN_NAME_RE),
    createdAt: timestamp,
    expiresAt: timestamp,
    governanceVersion: z.number().int().min(1),
  })
  .superRefine((p, ctx) => {
    if (p.expiresAt <= p.createdAt) ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'expires before it is created' });
    if (p.expiresAt - p.createdAt > MAX_PROPOSAL_LIFETIME_MS) ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'lifetime exceeds 7 days' });
    try {
      canonicalJson(p.parameters);
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['parameters'], message: (e as Error).message });
    }
    if (p.operation === 'mpchsm:UpdateGovernance' && !governanceDocumentSchema.safeParse(p.parameters.Document).success)
      ctx.addIssue({ code: 'custom', path: ['parameters', 'Document'], message: 'a governance update proposes a valid governance document' });
  });
export type Proposal = z.infer<typeof proposalSchema>;

const approver = { proposalId: proposalIdSchema, admin: z.string().regex(ADMIN_NAME_RE) };
export const approvalSchema = z.union([z.strictObject({ ...approver, signature: signatureHexSchema }), z.strictObject({ ...approver, webauthn: webauthnAssertionSchema })]);
export type Approval = z.infer<typeof approvalSchema>;
/** A refusal has an approval's form; it signs refusalDigest. */
export const refusalSchema = approvalSchema;
export type Refusal = Approval;

export const proposalDigest = (p: Proposal): Uint8Array => canonicalDigest(DOMAINS.proposal, p);
/** What a refusal of `p` signs: the proposal under its own domain, so no approval reads as one. */
export const refusalDigest = (p: Proposal): Uint8Array => canonicalDigest(DOMAINS.proposalRefusal, p);

/** What an approval of `p` signs: the proposed governance document's digest, or the proposal's. */
export const approvalDigest = (p: Proposal): Uint8Array =>
  p.operation === 'mpchsm:UpdateGovernance' ? governanceDigest(governanceDocumentSchema.parse(p.parameters.Document)) : proposalDigest(p);

/** Operations whose proposal counts only once its proposer approved it too. */
export const needsProposerApproval = (operation: Action): boolean => operation === 'mpchsm:AddPrincipal';

/** An administrator's approval of `proposal`. */
export function signApproval(proposal: Proposal, admin: string, approvalSecretKey: Uint8Array): Approval {
  return { proposalId: proposal.id, admin, signature: toHex(ed25519Sign(approvalDigest(proposal), approvalSecretKey)) };
}

/** An administrator's refusal of `proposal`. */
export function signRefusal(proposal: Proposal, admin: string, approvalSecretKey: Uint8Array): Refusal {
  return { proposalId: proposal.id, admin, signature: toHex(ed25519Sign(refusalDigest(proposal), approvalSecretKey)) };
}

/**
 * Checks one administrator's approval or refusal (`kind`) of `p` under `governance`: its form,
 * that it names `p`, is by an administrator, and verifies over `digest`; a security key's
 * counter goes by `book`. Answers it, or why not.
 */
export function verifyApproverOf(p: Proposal, raw: unknown, governance: GovernanceDocument, kind: 'approval' | 'refusal', book = new CounterBook(), index?: number): { ok: true; approval: Approval } | { ok: false; reason: string } {
  const ar = approvalSchema.safeParse(raw);
  if (!ar.success) return { ok: false, reason: `${index === undefined ? `the ${kind}` : `${kind} [${index}]`} is malformed: ${ar.error.issues[0]?.path.join('.')}: ${ar.error.issues[0]?.message}` };
  const a = ar.data;
  if (a.proposalId !== p.id) return { ok: false, reason: `the ${kind} by ${a.admin} is for proposal ${a.proposalId}, not ${p.id}` };
  if (!approvalKeyOf(governance, a.admin)) {
    return { ok: false, reason: `${a.admin} is not an administrator in governance v${governance.version} (removed, or never one: only administrators ${kind === 'approval' ? 'approve' : 'refuse'})` };
  }
  const v = verifyAdminProof(governance, a.admin, a, kind === 'approval' ? approvalDigest(p) : refusalDigest(p), book);
  if (!v.ok) return { ok: false, reason: `the ${kind} by ${a.admin} ${v.reason === 'does not verify' ? `does not verify over proposal ${p.id} (${p.operation}): it was given for other parameters or another proposal` : v.reason}` };
  return { ok: true, approval: a };
}

export type ApprovalResult =
  | { ok: true; proposal: Proposal; /** distinct administrators whose approval verified */ approvers: string[]; /** security-key approvals' counters, to record once the proposal is applied */ counters: CounterUse[] }
  | { ok: false; reason: string };

/**
 * Checks that at least M distinct administrators of `governance` (M from its quorum for the
 * proposal's operation) approved this exact proposal, and that the proposal is open at `now`
 * and was made under this governance version. `proposerRequest`: the caller verified the
 * proposer's own signed request for it. Any approval that does not verify is a refusal,
 * not something to skip: it is either tampering or a mistake someone must see.
 */
export function verifyApprovals(proposal: unknown, approvals: readonly unknown[], governance: GovernanceDocument, now: number, proposerRequest = false, counters: Readonly<Record<string, number>> = {}): ApprovalResult {
  const pr = proposalSchema.safeParse(proposal);
  if (!pr.success) return { ok: false, reason: `malformed proposal: ${pr.error.issues[0]?.path.join('.')}: ${pr.error.issues[0]?.message}` };
  const p = pr.data;
  const what = `proposal ${p.id} (${p.operation})`;
  if (p.clusterId !== governance.clusterId) return { ok: false, reason: `${what} is for cluster ${p.clusterId}, not ${governance.clusterId}` };
  if (p.governanceVersion !== governance.version) {
    return {
      ok: false,
      reason: `${what} was made under governance v${p.governanceVersion}; the governance in force is v${governance.version}, so it must be proposed and approved again`,
    };
  }
  if (p.createdAt > now + CLOCK_SKEW_MS) return { ok: false, reason: `${what} is dated in the future` };
  if (now >= p.expiresAt) return { ok: false, reason: `${what} expired at ${new Date(p.expiresAt).toISOString()}` };

  const approvers = new Set<string>();
  const book = new CounterBook(counters);
  for (const [i, raw] of approvals.entries()) {
    const r = verifyApproverOf(p, raw, governance, 'approval', book, i);
    if (!r.ok) return r;
    approvers.add(r.approval.admin);
  }
  // The proposer's request, verified by the caller, is the proposer's approval if they are an administrator.
  if (proposerRequest && approvalKeyOf(governance, p.proposer)) approvers.add(p.proposer);
  const m = quorumFor(governance, p.operation);
  if (approvers.size < m) {
    return {
      ok: false,
      reason: `${what} needs approval by ${m} distinct administrators of ${governance.administrators.length}; it has ${approvers.size}${approvers.size ? ` (${[...approvers].join(', ')})` : ''}`,
    };
  }
  if (needsProposerApproval(p.operation) && !approvers.has(p.proposer))
    return { ok: false, reason: `${what} delivers credentials its proposer ${p.proposer} made, so it needs ${p.proposer}'s own approval` };
  return { ok: true, proposal: p, approvers: [...approvers], counters: book.uses };
}
