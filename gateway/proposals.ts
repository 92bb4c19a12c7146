// Proposals for operations under quorum, their approvals, and per-signature approvals — kept
// by the gateway between the request that proposes and the approvals that complete it. The
// MpcHsm.* operations that propose, approve and inspect them are kms/mpchsm.ts.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import {
  approvalKeyOf,
  approvalSchema,
  needsProposerApproval,
  proposalSchema,
  quorumFor,
  refusalSchema,
  signApprovalSchema,
  verifyApproverOf,
  verifySignApprovals,
  type Action,
  type GovernanceDocument,
  type Proposal,
  type Refusal,
  type SignApproval,
} from '../policy/index.js';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { KmsError } from './kms/errors.js';
import { SerialQueue } from '../contract/serial-queue.js';
import { readJsonFile } from '../contract/io/json-file.js';

/** How long a proposal stays open for approvals. */
export const PROPOSAL_LIFETIME_MS = 24 * 3600_000;

const storedSchema = z.object({
  proposal: proposalSchema,
  approvals: z.array(approvalSchema),
  status: z.enum(['open', 'executed', 'failed', 'refused']),
  /** Why it failed, or what executing it answered (the error name), or who refused it. */
  outcome: z.string().optional(),
  /** The administrator's signed refusal that closed it. */
  refusal: refusalSchema.optional(),
  /** The proposer's signed request (policy/evidence.ts), when it came over the KMS API: the proposer's approval. */
  evidence: z.unknown().optional(),
});
export type StoredProposal = z.infer<typeof storedSchema>;

const fileSchema = z.object({
  proposals: z.array(storedSchema),
  signApprovals: z.array(signApprovalSchema),
  /** Per-signature approval nonces consumed here, until they expire. */
  consumed: z.record(z.string(), z.number()),
});
type ProposalFile = z.infer<typeof fileSchema>;

const denied = (msg: string) => new KmsError('AccessDeniedException', msg);

/** A signature waiting for per-signature approvals, as the console shows it. */
export interface SignRequest {
  id: string;
  keyId: string;
  algorithm: string;
  digest: string;
  /** The principal whose Sign was refused for want of approvals. */
  principal: string;
  at: number;
  /** What the client said it signs (MpcHsm.RequestSignApproval), shown as its word. */
  fileName?: string;
  certificateSubject?: string;
}
const SIGN_REQUEST_LIFETIME_MS = 3600_000;
const MAX_SIGN_REQUESTS = 256;

/** The answer to a request a proposal now holds: why, the proposal, and how to complete it. */
export function heldByProposal(reason: string, p: Proposal, need: { m: number; n: number }, requestCounts: boolean): KmsError {
  const counted = requestCounts ? ` (${p.proposer}'s request counts as one)` : '';
  return denied(`${reason}. Proposal ${p.id} holds this request until ${need.m} of the ${need.n} administrators approve it${counted}; each runs: mpchsm approve ${p.id} --as <administrator>`);
}

/**
 * The flow: an administrator's KMS request for an operation the governance puts under quorum
 * is not executed; the gateway stores it as a proposal (the exact parameters, the proposer,
 * an expiry, the governance version, and the proposer's signed request itself) and answers
 * AccessDeniedException naming it. The proposer's request counts as the proposer's approval:
 * each signer verifies it with the proposer's secret, which the gateway does not hold
 * (signers/node/admin-evidence.ts), so the gateway cannot make one up. Each other approving
 * administrator signs that proposal with their own approval key (`mpchsm approve`) and submits
 * the signature under their own credentials (MpcHsm.Approve). Once M distinct administrators
 * approved, the gateway executes the stored request as the proposer, and forwards the
 * proposal, the approvals and the proposer's request to the signers, which verify them again
 * themselves. (Where one approval is the quorum, the request is executed at once: kms/execute.ts.)
 */
export class ProposalStore {
  private data: ProposalFile;
  private readonly queue = new SerialQueue();
  /** Proposals whose execution has started in this process: each executes once. */
  private readonly claimed = new Set<string>();

  constructor(
    private readonly file: string,
    /** The governance version in force (it changes with approved updates). */
    private readonly governance: () => GovernanceDocument,
  ) {
    this.data = existsSync(file) ? readJsonFile(file, fileSchema) : { proposals: [], signApprovals: [], consumed: {} };
  }

  /** Records `operation` with `parameters`, proposed by `proposer` (with its signed request, if any), for approval. */
  create(proposer: string, operation: Action, parameters: Record<string, unknown>, evidence?: unknown): Promise<Proposal> {
    return this.queue.run(() => this.createNow(proposer, operation, parameters, evidence));
  }

  private async createNow(proposer: string, operation: Action, parameters: Record<string, unknown>, evidence: unknown): Promise<Proposal> {
    const now = Date.now();
    const r = proposalSchema.safeParse({
      id: `p-${randomBytes(8).toString('hex')}`,
      clusterId: this.governance().clusterId,
      operation,
      parameters,
      proposer,
      createdAt: now,
      expiresAt: now + PROPOSAL_LIFETIME_MS,
      governanceVersion: this.governance().version,
    });
    if (!r.success) throw new KmsError('ValidationException', `the request cannot be proposed: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
    await this.save({ ...this.data, proposals: [...this.data.proposals, { proposal: r.data, approvals: [], status: 'open', ...(evidence !== undefined ? { evidence } : {}) }] });
    return r.data;
  }

  get(id: string): StoredProposal | undefined {
    return this.data.proposals.find((p) => p.proposal.id === id);
  }

  /** Proposals still open for approvals, oldest first. */
  openProposals(): StoredProposal[] {
    const now = Date.now();
    return this.data.proposals.filter((p) => p.status === 'open' && p.proposal.expiresAt > now);
  }

  required(p: Proposal): number {
    return quorumFor(this.governance(), p.operation);
  }

  /** The administrators who approved `s`: by signature, and its proposer by the request that made it. */
  approvers(s: StoredProposal): string[] {
    const proposer = s.evidence !== undefined && approvalKeyOf(this.governance(), s.proposal.proposer) ? [s.proposal.proposer] : [];
    return [...new Set([...proposer, ...s.approvals.map((a) => a.admin)])];
  }

  /**
   * Adds `by`'s approval of proposal `id` after checking its signature against the governance;
   * answers the distinct administrators who approved it so far, and `execute` for the one call
   * that completes the quorum.
   */
  approve(id: string, raw: unknown, by: string): Promise<{ stored: StoredProposal; approvers: string[]; execute: boolean }> {
    return this.queue.run(() => this.approveNow(id, raw, by));
  }

  /** `stored`, if it can take an approval or refusal now; else why not (thrown). */
  private stillOpen(stored: StoredProposal | undefined, id: string): StoredProposal {
    if (!stored) throw new KmsError('NotFoundException', `proposal ${id} does not exist`);
    if (stored.status !== 'open') throw new KmsError('KMSInvalidStateException', `proposal ${id} is ${stored.status}${stored.outcome ? ` (${stored.outcome})` : ''}`);
    if (Date.now() >= stored.proposal.expiresAt) throw new KmsError('KMSInvalidStateException', `proposal ${id} expired at ${new Date(stored.proposal.expiresAt).toISOString()}`);
    const governance = this.governance();
    if (stored.proposal.governanceVersion !== governance.version)
      throw new KmsError('KMSInvalidStateException', `proposal ${id} was made under governance v${stored.proposal.governanceVersion}; v${governance.version} is in force, so it must be proposed again`);
    return stored;
  }

  /** `by`'s own approval or refusal of `stored`, verified against the governance in force. */
  private verified(stored: StoredProposal, raw: unknown, by: string, kind: 'approval' | 'refusal') {
    const r = approvalSchema.safeParse(raw);
    if (!r.success) throw new KmsError('ValidationException', `malformed ${kind}: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
    if (r.data.proposalId !== stored.proposal.id) throw new KmsError('ValidationException', `the ${kind} is for proposal ${r.data.proposalId}, not ${stored.proposal.id}`);
    // An approval is submitted by the administrator who made it: one person, one credential.
    if (r.data.admin !== by) throw denied(`${by} cannot submit ${r.data.admin}'s ${kind}`);
    const v = verifyApproverOf(stored.proposal, r.data, this.governance(), kind);
    if (!v.ok) throw denied(`${v.reason} [missing: mpchsm:Approve]`);
    return v.approval;
  }

  private async approveNow(id: string, raw: unknown, by: string): Promise<{ stored: StoredProposal; approvers: string[]; execute: boolean }> {
    const stored = this.stillOpen(this.get(id), id);
    const a = this.verified(stored, raw, by, 'approval');
    const approvals = [...stored.approvals.filter((x) => x.admin !== a.admin), a];
    const next = { ...stored, approvals };
    await this.replace(next);
    const approvers = this.approvers(next);
    const proposerIn = !needsProposerApproval(stored.proposal.operation) || approvals.some((x) => x.admin === stored.proposal.proposer);
    const execute = approvers.length >= this.required(stored.proposal) && proposerIn && !this.claimed.has(id);
    if (execute) this.claimed.add(id);
    return { stored: next, approvers, execute };
  }

  /**
   * Closes proposal `id` as refused by `by`, whose signed refusal verifies: it takes no more
   * approvals and is never executed here. One being executed is past refusing.
   */
  refuse(id: string, raw: unknown, by: string): Promise<StoredProposal> {
    return this.queue.run(async () => {
      const stored = this.stillOpen(this.get(id), id);
      if (this.claimed.has(id)) throw new KmsError('KMSInvalidStateException', `proposal ${id} is being executed`);
      const refusal: Refusal = this.verified(stored, raw, by, 'refusal');
      const next: StoredProposal = { ...stored, status: 'refused', outcome: `refused by ${refusal.admin}`, refusal };
      await this.replace(next);
      return next;
    });
  }

  finish(id: string, status: 'executed' | 'failed', outcome: string): Promise<void> {
    return this.queue.run(async () => {
      const stored = this.get(id);
      if (stored) await this.replace({ ...stored, status, outcome: outcome.slice(0, 1000) });
    });
  }

  // ---- per-signature approvals --------------------------------------------------------------

  /**
   * Signatures refused for want of approvals, for the approval console to show (memory only:
   * the client asks again). What a request names is the gateway's word: approvers see it, the
   * signers check the approvals against the client's own signed request.
   */
  private readonly requests = new Map<string, SignRequest>();

  /** Notes a Sign that waits for per-signature approvals; one entry per key, algorithm and digest. */
  noteSignRequest(r: Omit<SignRequest, 'id' | 'at'>): void {
    const now = Date.now();
    for (const [id, x] of this.requests) if (x.at + SIGN_REQUEST_LIFETIME_MS <= now) this.requests.delete(id);
    const same = [...this.requests.values()].find((x) => x.keyId === r.keyId && x.algorithm === r.algorithm && x.digest === r.digest);
    if (same) return void this.requests.set(same.id, { ...same, ...r, at: now });
    if (this.requests.size >= MAX_SIGN_REQUESTS) this.requests.delete(this.requests.keys().next().value!);
    const id = `s-${randomBytes(8).toString('hex')}`;
    this.requests.set(id, { ...r, id, at: now });
  }

  /** The signatures waiting for approvals, newest first. */
  signRequests(): SignRequest[] {
    const now = Date.now();
    return [...this.requests.values()].filter((x) => x.at + SIGN_REQUEST_LIFETIME_MS > now).reverse();
  }

  /** Drops a waiting signature (refused in the console): its client's next attempt is refused again and shown anew. */
  dropSignRequest(id: string): boolean {
    return this.requests.delete(id);
  }

  /** Stores `by`'s approval of one signature, after verifying it; answers how many it now has. */
  addSignApproval(raw: unknown, by: string): Promise<{ approval: SignApproval; count: number }> {
    return this.queue.run(() => this.addSignApprovalNow(raw, by));
  }

  private async addSignApprovalNow(raw: unknown, by: string): Promise<{ approval: SignApproval; count: number }> {
    const r = signApprovalSchema.safeParse(raw);
    if (!r.success) throw new KmsError('ValidationException', `malformed signature approval: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
    const a = r.data;
    if (a.approver !== by) throw denied(`${by} cannot submit ${a.approver}'s approval`);
    const v = verifySignApprovals({ approvals: [a], required: 1, governance: this.governance(), keyId: a.keyId, algorithm: a.algorithm, digest: a.digest, now: Date.now(), usedNonces: this.usedNonces() });
    if (!v.ok) throw denied(v.reason);
    const same = (x: SignApproval) => x.keyId === a.keyId && x.algorithm === a.algorithm && x.digest === a.digest;
    const live = this.liveSignApprovals().filter((x) => !(same(x) && x.approver === a.approver));
    await this.save({ ...this.data, signApprovals: [...live, a] });
    return { approval: a, count: live.filter(same).length + 1 };
  }

  /** Unexpired, unused approvals of this signature (at most one per administrator). */
  signApprovalsFor(keyId: string, algorithm: string, digest: string): SignApproval[] {
    return this.liveSignApprovals().filter((x) => x.keyId === keyId && x.algorithm === algorithm && x.digest === digest);
  }

  usedNonces(): Set<string> {
    return new Set(Object.keys(this.data.consumed));
  }

  /** Records approvals as used once their signature was made. */
  consume(nonces: readonly { nonce: string; expiresAt: number }[]): Promise<void> {
    if (nonces.length === 0) return Promise.resolve();
    return this.queue.run(async () => {
      const consumed = { ...this.data.consumed };
      for (const n of nonces) consumed[n.nonce] = n.expiresAt;
      const used = new Set(nonces.map((n) => n.nonce));
      await this.save({ ...this.data, signApprovals: this.data.signApprovals.filter((x) => !used.has(x.nonce)), consumed });
    });
  }

  private liveSignApprovals(): SignApproval[] {
    const now = Date.now();
    return this.data.signApprovals.filter((x) => x.expiresAt > now && this.data.consumed[x.nonce] === undefined);
  }

  private replace(next: StoredProposal): Promise<void> {
    return this.save({ ...this.data, proposals: this.data.proposals.map((p) => (p.proposal.id === next.proposal.id ? next : p)) });
  }

  /** Writes atomically; drops what expired (a day past, for proposals, so late approvers learn why). */
  private async save(next: ProposalFile): Promise<void> {
    const now = Date.now();
    const pruned: ProposalFile = {
      proposals: next.proposals.filter((p) => p.proposal.expiresAt + 24 * 3600_000 > now),
      signApprovals: next.signApprovals.filter((x) => x.expiresAt > now),
      consumed: Object.fromEntries(Object.entries(next.consumed).filter(([, until]) => until > now)),
    };
    await writeFileAtomic(this.file, Buffer.from(JSON.stringify(pruned) + '\n'), 0o600);
    this.data = pruned;
  }
}
