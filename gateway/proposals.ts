// Proposals for operations under quorum, their approvals, and per-signature approvals — kept
// by the gateway between the request that proposes and the approvals that complete it.
//
// The flow: an administrator's KMS request for an operation the governance puts under quorum
// is not executed; the gateway stores it as a proposal (the exact parameters, the proposer,
// an expiry, the governance version, and the proposer's signed request itself) and answers
// AccessDeniedException naming it. The proposer's request counts as the proposer's approval:
// each signer verifies it with the proposer's secret, which the gateway does not hold
// (signers/node/admin-evidence.ts), so the gateway cannot make one up. Each other approving
// administrator signs that proposal with their own approval key (`mpchsm approve`) and submits
// the signature under their own credentials (MpcHsm.Approve). Once M distinct administrators
// approved, the gateway executes the stored request as the proposer, and forwards the
// proposal, the approvals and the proposer's request to the signers, which verify them again
// themselves. (Where one approval is the quorum, the request is executed at once: kms/api.ts.)
//
// Principal and governance changes have no KMS request: an administrator's tool proposes them
// with MpcHsm.AddPrincipal / RemovePrincipal / UpdateGovernance / RemoveSigner (checked first, so nobody
// approves what cannot be executed), then approves them like any other proposal.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { ed25519Verify } from '../contract/identity/curve25519.js';
import { z } from 'zod';
import {
  approvalDigest,
  approvalKeyOf,
  approvalSchema,
  governanceUpdateSchema,
  needsProposerApproval,
  principalEnrolmentSchema,
  principalRemovalSchema,
  proposalSchema,
  signerAdmissionSchema,
  signerRemovalSchema,
  quorumFor,
  requiredRoleText,
  roleAllows,
  signApprovalSchema,
  verifySignApprovals,
  type Action,
  type Approval,
  type GovernanceDocument,
  type Proposal,
  type SignApproval,
} from '../policy/index.js';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { fromHex } from '../contract/bytes.js';
import type { ChangeResult, GatewayPolicy } from './governance.js';
import { KmsError, asKmsError } from './kms/errors.js';
import { parseInput } from './kms/input.js';
import type { Principal } from './principals.js';
import { SerialQueue } from './serial-queue.js';

/** How long a proposal stays open for approvals. */
export const PROPOSAL_LIFETIME_MS = 24 * 3600_000;

const storedSchema = z.object({
  proposal: proposalSchema,
  approvals: z.array(approvalSchema),
  status: z.enum(['open', 'executed', 'failed']),
  /** Why it failed, or what executing it answered (the error name). */
  outcome: z.string().optional(),
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

/** The answer to a request a proposal now holds: why, the proposal, and how to complete it. */
export function heldByProposal(reason: string, p: Proposal, need: { m: number; n: number }, requestCounts: boolean): KmsError {
  const counted = requestCounts ? ` (${p.proposer}'s request counts as one)` : '';
  return denied(`${reason}. Proposal ${p.id} holds this request until ${need.m} of the ${need.n} administrators approve it${counted}; each runs: mpchsm approve ${p.id} --as <administrator>`);
}

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
    this.data = existsSync(file) ? fileSchema.parse(JSON.parse(readFileSync(file, 'utf8'))) : { proposals: [], signApprovals: [], consumed: {} };
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

  private async approveNow(id: string, raw: unknown, by: string): Promise<{ stored: StoredProposal; approvers: string[]; execute: boolean }> {
    const stored = this.get(id);
    if (!stored) throw new KmsError('NotFoundException', `proposal ${id} does not exist`);
    if (stored.status !== 'open') throw new KmsError('KMSInvalidStateException', `proposal ${id} is ${stored.status}${stored.outcome ? ` (${stored.outcome})` : ''}`);
    if (Date.now() >= stored.proposal.expiresAt) throw new KmsError('KMSInvalidStateException', `proposal ${id} expired at ${new Date(stored.proposal.expiresAt).toISOString()}`);
    const governance = this.governance();
    if (stored.proposal.governanceVersion !== governance.version)
      throw new KmsError('KMSInvalidStateException', `proposal ${id} was made under governance v${stored.proposal.governanceVersion}; v${governance.version} is in force, so it must be proposed again`);
    const r = approvalSchema.safeParse(raw);
    if (!r.success) throw new KmsError('ValidationException', `malformed approval: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
    const a: Approval = r.data;
    if (a.proposalId !== id) throw new KmsError('ValidationException', `the approval is for proposal ${a.proposalId}, not ${id}`);
    // An approval is submitted by the administrator who made it: one person, one credential.
    if (a.admin !== by) throw denied(`${by} cannot submit ${a.admin}'s approval`);
    const key = approvalKeyOf(governance, a.admin);
    if (!key) throw denied(`${a.admin} is not an administrator in governance v${governance.version} and cannot approve [missing: mpchsm:Approve]`);
    if (!ed25519Verify(fromHex(a.signature), approvalDigest(stored.proposal), fromHex(key)))
      throw denied(`the approval by ${a.admin} does not verify over proposal ${id}: it was made with another key or for other parameters`);
    const approvals = [...stored.approvals.filter((x) => x.admin !== a.admin), a];
    const next = { ...stored, approvals };
    await this.replace(next);
    const approvers = this.approvers(next);
    const proposerIn = !needsProposerApproval(stored.proposal.operation) || approvals.some((x) => x.admin === stored.proposal.proposer);
    const execute = approvers.length >= this.required(stored.proposal) && proposerIn && !this.claimed.has(id);
    if (execute) this.claimed.add(id);
    return { stored: next, approvers, execute };
  }

  finish(id: string, status: 'executed' | 'failed', outcome: string): Promise<void> {
    return this.queue.run(async () => {
      const stored = this.get(id);
      if (stored) await this.replace({ ...stored, status, outcome: outcome.slice(0, 1000) });
    });
  }

  // ---- per-signature approvals --------------------------------------------------------------

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

// ---- the MpcHsm.* operations (X-Amz-Target: MpcHsm.<name>, SigV4 like any KMS call) -------

const proposalIdField = z.string().regex(/^[A-Za-z0-9._-]{8,128}$/);
const INPUTS = {
  GetProposal: z.strictObject({ ProposalId: proposalIdField }),
  Approve: z.strictObject({ ProposalId: proposalIdField, Approval: z.unknown() }),
  ApproveSign: z.strictObject({ Approval: z.unknown() }),
  DescribeCluster: z.strictObject({}),
  AddPrincipal: principalEnrolmentSchema,
  RemovePrincipal: principalRemovalSchema,
  AddSigner: signerAdmissionSchema,
  AdmitSigner: z.strictObject({ Name: signerAdmissionSchema.shape.Name }),
  RemoveSigner: signerRemovalSchema,
  UpdateGovernance: governanceUpdateSchema,
  ListAuditRecords: z.strictObject({
    KeyId: z.string().max(256).optional(),
    Limit: z.number().int().min(1).max(1000).optional(),
    Marker: z.string().regex(/^\d{1,15}$/).optional(),
  }),
} as const;
export type MpcHsmOperation = keyof typeof INPUTS;
export const isMpcHsmOperation = (name: string): name is MpcHsmOperation => Object.hasOwn(INPUTS, name);

export interface Executed {
  operation: string;
  result: object | undefined;
  /** How each signer took the change, for changes the signers keep a copy of. */
  changes?: ChangeResult[];
}

export interface MpcHsmContext {
  principal: Principal;
  store: ProposalStore;
  /** Principal and governance changes: the gateway's state and its checks before proposing. */
  membership: Pick<GatewayPolicy, 'describe' | 'checkAddPrincipal' | 'checkRemovePrincipal' | 'checkAddSigner' | 'checkRemoveSigner' | 'checkGovernanceUpdate'>;
  /** Admits a signer added by an approved proposal (again, after a failure) and reshares to it. */
  admitSigner(name: string): Promise<object>;
  /** Per-signature approvals a key needs (undefined: no such key). */
  approvalsPerSignature(keyId: string): number | undefined;
  /** Runs an approved proposal as its proposer. */
  execute(proposer: string, stored: StoredProposal): Promise<Executed>;
  /** The gateway's own transcript entries, oldest first. */
  auditRecords(): Promise<{ seq: number; entry: Record<string, unknown> }[]>;
}

const describeProposal = (store: ProposalStore, s: StoredProposal, required: number) => ({
  Proposal: s.proposal,
  Approvals: store.approvers(s),
  Required: required,
  Status: s.status === 'open' ? 'Pending' : s.status === 'executed' ? 'Executed' : 'Failed',
  ...(s.outcome ? { Outcome: s.outcome } : {}),
});

function requireRole(p: Principal, actions: readonly Action[]): void {
  if (actions.some((a) => roleAllows(p.role, a))) return;
  throw denied(`principal ${p.name} is not allowed ${actions[0]}: ${requiredRoleText(actions[0]!)} [missing: ${actions[0]}]`);
}

/** Stores a checked principal or governance change as a proposal; answers it, pending. */
async function propose(c: MpcHsmContext, operation: Action, parameters: Record<string, unknown>): Promise<{ result: object; proposed: string }> {
  const p = await c.store.create(c.principal.name, operation, parameters);
  return { result: describeProposal(c.store, c.store.get(p.id)!, c.store.required(p)), proposed: p.id };
}

/** A principal, signer or governance change: the proposer's role, the parameters, the gateway's own check, then the proposal. */
function proposeChange<S extends z.ZodObject>(c: MpcHsmContext, name: MpcHsmOperation, raw: unknown, operation: Action, schema: S, check: (input: z.output<S>) => void) {
  requireRole(c.principal, [operation]);
  const input = parseInput(schema, raw, name);
  check(input);
  return propose(c, operation, input);
}

export async function runMpcHsm(name: MpcHsmOperation, raw: unknown, c: MpcHsmContext): Promise<{ result: object; executed?: Executed; proposed?: string }> {
  const { store, principal } = c;
  switch (name) {
    case 'DescribeCluster': {
      requireRole(principal, ['mpchsm:Approve', 'mpchsm:ReadAudit']);
      parseInput(INPUTS.DescribeCluster, raw, name);
      return { result: c.membership.describe() };
    }
    case 'AddPrincipal':
      return proposeChange(c, name, raw, 'mpchsm:AddPrincipal', INPUTS.AddPrincipal, (i) => c.membership.checkAddPrincipal(i));
    case 'RemovePrincipal':
      return proposeChange(c, name, raw, 'mpchsm:RemovePrincipal', INPUTS.RemovePrincipal, (i) => c.membership.checkRemovePrincipal(i.Name));
    case 'AddSigner':
      return proposeChange(c, name, raw, 'mpchsm:AddSigner', INPUTS.AddSigner, (i) => c.membership.checkAddSigner(i));
    case 'AdmitSigner': {
      requireRole(principal, ['mpchsm:AddSigner']);
      return { result: await c.admitSigner(parseInput(INPUTS.AdmitSigner, raw, name).Name) };
    }
    case 'RemoveSigner':
      return proposeChange(c, name, raw, 'mpchsm:RemoveSigner', INPUTS.RemoveSigner, (i) => c.membership.checkRemoveSigner(i.Name));
    case 'UpdateGovernance':
      return proposeChange(c, name, raw, 'mpchsm:UpdateGovernance', INPUTS.UpdateGovernance, (i) => c.membership.checkGovernanceUpdate(i));
    case 'GetProposal': {
      requireRole(principal, ['mpchsm:Approve', 'mpchsm:ReadAudit']);
      const input = parseInput(INPUTS.GetProposal, raw, name);
      const s = store.get(input.ProposalId);
      if (!s) throw new KmsError('NotFoundException', `proposal ${input.ProposalId} does not exist`);
      return { result: describeProposal(store, s, store.required(s.proposal)) };
    }
    case 'Approve': {
      requireRole(principal, ['mpchsm:Approve']);
      const input = parseInput(INPUTS.Approve, raw, name);
      const { stored, execute } = await store.approve(input.ProposalId, input.Approval, principal.name);
      const required = store.required(stored.proposal);
      if (!execute) return { result: describeProposal(store, stored, required) };
      let executed: Executed;
      try {
        executed = await c.execute(stored.proposal.proposer, stored);
      } catch (e) {
        const err = asKmsError(e);
        await store.finish(stored.proposal.id, 'failed', `${err.type}: ${err.message}`);
        throw new KmsError(err.type, `proposal ${stored.proposal.id} was approved, but executing it failed: ${err.message}`, err.status);
      }
      await store.finish(stored.proposal.id, 'executed', 'ok');
      const done = store.get(stored.proposal.id)!;
      return { result: { ...describeProposal(store, done, required), Result: executed.result ?? {}, ...(executed.changes ? { Signers: executed.changes } : {}) }, executed };
    }
    case 'ApproveSign': {
      requireRole(principal, ['mpchsm:Approve']);
      const input = parseInput(INPUTS.ApproveSign, raw, name);
      const keyId = signApprovalSchema.safeParse(input.Approval).data?.keyId;
      const required = keyId === undefined ? 0 : c.approvalsPerSignature(keyId);
      if (required === undefined) throw new KmsError('NotFoundException', `Key '${keyId}' does not exist`);
      const { approval, count } = await store.addSignApproval(input.Approval, principal.name);
      return { result: { KeyId: approval.keyId, SigningAlgorithm: approval.algorithm, Digest: approval.digest, Approvals: count, Required: required, ExpiresAt: approval.expiresAt / 1000 } };
    }
    case 'ListAuditRecords': {
      // The gateway's transcript, as `mpchsm audit show --json` prints it, paged by sequence number.
      requireRole(principal, ['mpchsm:ReadAudit']);
      const input = parseInput(INPUTS.ListAuditRecords, raw, name);
      const limit = input.Limit ?? 100;
      const after = input.Marker === undefined ? -1 : Number(input.Marker);
      const matching = (await c.auditRecords()).filter((r) => r.seq > after && (input.KeyId === undefined || r.entry.keyId === input.KeyId));
      const page = matching.slice(0, limit);
      const more = matching.length > limit;
      return { result: { Records: page.map((r) => r.entry), Truncated: more, ...(more ? { NextMarker: String(page.at(-1)!.seq) } : {}) } };
    }
  }
}
