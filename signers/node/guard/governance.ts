// The governance in force, and how this signer decides that an act was asked for and approved
// under it: by the asking principal's own signed request for exactly this act (verified here,
// spent once: signers/node/admin-evidence.ts), or by an approved proposal whose approvals verify
// against this signer's governance, for exactly those parameters, once. Nothing is applied on the
// gateway's word. A governance version replaces the one in force only when it verifies as its
// successor, approved by the quorum of the one in force.
import { z } from 'zod';
import { canonicalJson } from '../../../contract/canonical.js';
import type { MembershipChange } from '../../../contract/signer-rpc/authority.js';
import {
  administratorChanges,
  enrolmentProblem,
  principalEnrolmentSchema,
  proposalSchema,
  quorumFor,
  signedGovernanceSchema,
  verifyGovernanceUpdate,
  CounterBook,
  type Action,
  type CounterUse,
  type AuthorizeInput,
  type Proposal,
  type RequestExpectation,
} from '../../../policy/index.js';
import { checkUnspent, proposerRequest, verifiedRequest, type VerifiedRequest } from '../admin-evidence.js';
import type { RpcError } from '../rpc.js';
import { registered, requestCheck, saveRegistry } from './registry.js';
import { checkCounters, denied, firstIssue, GOVERNANCE, json, recordCounters, saveLedger, type GuardState } from './state.js';

/** What a change or creation request may carry: an approved proposal and its approvals. */
type ProposalCarrier = { parameters?: Record<string, unknown>; proposal?: unknown; approvals?: unknown[] | undefined };

/** How a change was decided, for the signer's audit entry. */
export interface Applied {
  principal: string;
  approvedBy: string[];
  /** The key or alias as the change names it. */
  keyRef?: string;
  detail: Record<string, string | number | boolean>;
  /** A request applied at once: spent once the change is. */
  request?: VerifiedRequest;
}

/** Who asked for a key's creation or refresh and who approved, for the signer's audit entry. */
export interface AskedRecord {
  principal: { name: string };
  policy: { version: number; approvals: string[] };
  /** The proposal, or the hash of the administrator's request. */
  detail: Record<string, string>;
}

/** What an audit entry says of how an act was asked for: the approved proposal, the request's hash. */
export const askedDetail = (proposal: string | undefined, evidence: string | undefined): Record<string, string> => ({
  ...(proposal ? { proposal } : {}),
  ...(evidence ? { evidence } : {}),
});

/**
 * Who asked for `op`, and how it is approved: by an approved proposal (its proposer's request,
 * when forwarded, counting as the proposer's approval), or by the principal's own request for
 * it (`check`: its parameters are exactly what is to be done), unspent here.
 */
export async function askedFor(s: GuardState, op: Action, target: string, c: ProposalCarrier & { evidence?: unknown }, check: RequestExpectation['check'], now: number) {
  const m = quorumFor(s.governance, op);
  const rc = requestCheck(s);
  if (m > 0 && c.proposal !== undefined) {
    const approved = proposalOf(s, op, c, m);
    const proposer = await proposerRequest(c.evidence, rc, approved.proposal, target);
    return { approved, principal: approved.proposal.proposer, evidenceHash: proposer?.evidenceHash, request: undefined };
  }
  if (c.evidence === undefined && m > 0) throw noApproval(s, op, m);
  const request = await verifiedRequest(c.evidence, rc, { target, check }, now);
  checkUnspent(request, s.ledger.requests, now);
  return { approved: undefined, principal: request.principal, evidenceHash: request.evidenceHash, request };
}

function noApproval(s: GuardState, op: Action, m: number): RpcError {
  return denied(`${op} needs approval by ${m} of the ${s.governance.administrators.length} administrators; the request carries none`);
}

/** The proposal for `op` that `c` carries (`m`: the approvals it needs, for the refusal). */
export function proposalOf(s: GuardState, op: Action, c: ProposalCarrier, m: number) {
  if (c.proposal === undefined) throw noApproval(s, op, m);
  const r = proposalSchema.safeParse(c.proposal);
  if (!r.success) throw denied(`malformed proposal: ${firstIssue(r.error)}`);
  const proposal: Proposal = r.data;
  if (proposal.operation !== op) throw denied(`proposal ${proposal.id} is for ${proposal.operation}, not ${op}`);
  if (c.parameters !== undefined && canonicalJson(c.parameters) !== canonicalJson(proposal.parameters)) throw denied(`the change differs from what proposal ${proposal.id} approved`);
  if (s.ledger.proposals[proposal.id] !== undefined) throw denied(`proposal ${proposal.id} was already applied here`);
  const input: NonNullable<AuthorizeInput['approval']> = { proposal, approvals: c.approvals ?? [], parameters: proposal.parameters, counters: s.ledger.webauthn ?? {} };
  return { proposal, input };
}

/** Records a proposal as applied here, until it expires, with its security-key approvals' counters. */
export async function markApplied(s: GuardState, p: Proposal, counters: readonly CounterUse[] = []): Promise<void> {
  checkCounters(s, counters);
  s.ledger.proposals[p.id] = p.expiresAt;
  recordCounters(s, counters);
  await saveLedger(s);
}

/** UpdateGovernance's parameters at a signer: the next chain link, and the administrators it enrols. */
const governanceChangeSchema = z.strictObject({ Governance: z.unknown(), Principals: z.array(principalEnrolmentSchema).max(64) });

/**
 * Adopts the next governance version once it verifies against the one in force (approved by
 * that version's quorum, new keys signed by their holders), with the administrators it adds
 * registered and those it removes dropped. The registry is written first: after a crash in
 * between, the same change comes again and leads to the same registry.
 */
export async function updateGovernance(s: GuardState, c: MembershipChange): Promise<Applied> {
  const u = governanceChangeSchema.safeParse(c.parameters);
  if (!u.success) throw denied(`malformed governance update: ${firstIssue(u.error)}`);
  const current = s.governance;
  // Security-key approvals: each counter above the one this signer recorded for the credential.
  const book = new CounterBook(s.ledger.webauthn ?? {});
  const r = verifyGovernanceUpdate(current, u.data.Governance, book);
  if (!r.ok) throw denied(r.reason);
  const next = r.governance;
  const problem = enrolmentProblem(current, next, u.data.Principals);
  if (problem) throw denied(problem);
  const { added, removed } = administratorChanges(current, next);
  for (const name of added) {
    const p = s.byName.get(name);
    if (p && p.role !== 'admin') throw denied(`governance v${next.version} makes ${name} an administrator, but ${name} is a principal with role ${p.role}`);
  }
  const replaced = new Set([...added, ...removed]);
  await saveRegistry(s, [...s.registry.principals.filter((p) => !replaced.has(p.name)), ...u.data.Principals.map((e) => registered(s, e))]);
  const chain = [...s.chain, u.data.Governance];
  await s.store.put(GOVERNANCE, json({ chain }));
  [s.chain, s.governance] = [chain, next];
  recordCounters(s, book.uses); // saved with the change's sequence number (changes.ts)
  const signedBy = new Set(signedGovernanceSchema.parse(u.data.Governance).signatures.map((x) => x.admin));
  return { principal: c.principal, approvedBy: current.administrators.filter((a) => signedBy.has(a.name)).map((a) => a.name), detail: { governance: next.version } };
}
