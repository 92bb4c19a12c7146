// The MpcHsm.* operations (X-Amz-Target: MpcHsm.<name>, SigV4 like any KMS call): approve and
// inspect proposals (gateway/proposals.ts) or refuse them, approve single signatures, read the gateway's audit
// records, relay the parties' signed posture reports and audit logs (gateway/posture.ts), and propose principal, signer and governance changes. Those have no KMS request: an
// administrator's tool proposes them here (checked first, so nobody approves what cannot be
// executed), then they are approved like any other proposal.
import { z } from 'zod';
import {
  governanceUpdateSchema,
  principalEnrolmentSchema,
  principalRemovalSchema,
  requiredRoleText,
  roleAllows,
  signApprovalSchema,
  signerAdmissionSchema,
  signerRemovalSchema,
  signerRestorationSchema,
  type Action,
} from '../../policy/index.js';
import type { ChangeResult } from '../governance/change-log.js';
import type { Membership } from '../governance/membership.js';
import type { Principal } from '../principals.js';
import type { ProposalStore, StoredProposal } from '../proposals.js';
import { postureNonceSchema } from '../../contract/posture/report.js';
import type { ClusterPosture } from '../posture.js';
import type { LogPage } from '../../audit/page.js';
import type { LogEntry } from '../../audit/entry.js';
import { KmsError, asKmsError } from './errors.js';
import { parseInput } from './input.js';

const proposalIdField = z.string().regex(/^[A-Za-z0-9._-]{8,128}$/);
const INPUTS = {
  GetProposal: z.strictObject({ ProposalId: proposalIdField }),
  Approve: z.strictObject({ ProposalId: proposalIdField, Approval: z.unknown() }),
  Refuse: z.strictObject({ ProposalId: proposalIdField, Refusal: z.unknown() }),
  ApproveSign: z.strictObject({ Approval: z.unknown() }),
  /** What an approver is shown beside the key and digest (gateway/console/): the client's word, checked by no one. */
  RequestSignApproval: z.strictObject({
    KeyId: z.string().uuid(),
    SigningAlgorithm: z.string().max(64),
    Digest: z.string().regex(/^(?:[0-9a-f]{2}){1,512}$/),
    FileName: z.string().min(1).max(256).optional(),
    CertificateSubject: z.string().min(1).max(1024).optional(),
  }),
  DescribeCluster: z.strictObject({}),
  AddPrincipal: principalEnrolmentSchema,
  RemovePrincipal: principalRemovalSchema,
  AddSigner: signerAdmissionSchema,
  AdmitSigner: z.strictObject({ Name: signerAdmissionSchema.shape.Name }),
  RemoveSigner: signerRemovalSchema,
  RestoreSigner: signerRestorationSchema,
  UpdateGovernance: governanceUpdateSchema,
  ListAuditRecords: z.strictObject({
    KeyId: z.string().max(256).optional(),
    Limit: z.number().int().min(1).max(1000).optional(),
    Marker: z.string().regex(/^\d{1,15}$/).optional(),
  }),
  Posture: z.strictObject({ Nonce: postureNonceSchema, Packages: z.boolean().optional() }),
  AuditLog: z.strictObject({ Party: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), From: z.number().int().min(0), Limit: z.number().int().min(1).max(10_000).optional() }),
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
  membership: Pick<Membership, 'checkAddPrincipal' | 'checkRemovePrincipal' | 'checkAddSigner' | 'checkRemoveSigner' | 'checkRestoreSigner' | 'checkGovernanceUpdate'>;
  /** What DescribeCluster answers (GatewayPolicy.describe). */
  describeCluster(): object;
  /** Admits a signer added by an approved proposal (again, after a failure) and reshares to it. */
  admitSigner(name: string): Promise<object>;
  /** Per-signature approvals a key needs (undefined: no such key). */
  approvalsPerSignature(keyId: string): number | undefined;
  /** Runs an approved proposal as its proposer. */
  execute(proposer: string, stored: StoredProposal): Promise<Executed>;
  /** The gateway's own transcript entries after seq `after` (of `keyId`, when given), oldest first: at most `limit`, and whether more follow. */
  auditRecords(after: number, limit: number, keyId: string | undefined): Promise<{ entries: LogEntry[]; more: boolean }>;
  /** Every active signer's signed report over the asker's nonce, and the gateway's own. */
  posture(nonce: string, packages: boolean): Promise<ClusterPosture>;
  /** A page of the gateway's or an active signer's audit log, as raw lines. */
  auditLog(party: string, from: number, limit: number): Promise<LogPage>;
}

const describeProposal = (store: ProposalStore, s: StoredProposal, required: number) => ({
  Proposal: s.proposal,
  Approvals: store.approvers(s),
  Required: required,
  Status: ({ open: 'Pending', executed: 'Executed', failed: 'Failed', refused: 'Refused' } as const)[s.status],
  ...(s.outcome ? { Outcome: s.outcome } : {}),
});

function requireRole(p: Principal, actions: readonly Action[]): void {
  if (actions.some((a) => roleAllows(p.role, a))) return;
  throw new KmsError('AccessDeniedException', `principal ${p.name} is not allowed ${actions[0]}: ${requiredRoleText(actions[0]!)} [missing: ${actions[0]}]`);
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
      return { result: c.describeCluster() };
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
    case 'RestoreSigner':
      return proposeChange(c, name, raw, 'mpchsm:RestoreSigner', INPUTS.RestoreSigner, (i) => c.membership.checkRestoreSigner(i));
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
    case 'Refuse': {
      requireRole(principal, ['mpchsm:Approve']);
      const input = parseInput(INPUTS.Refuse, raw, name);
      const refused = await store.refuse(input.ProposalId, input.Refusal, principal.name);
      return { result: describeProposal(store, refused, store.required(refused.proposal)) };
    }
    case 'RequestSignApproval': {
      requireRole(principal, ['kms:Sign']);
      const input = parseInput(INPUTS.RequestSignApproval, raw, name);
      const required = c.approvalsPerSignature(input.KeyId);
      if (required === undefined) throw new KmsError('NotFoundException', `Key '${input.KeyId}' does not exist`);
      if (required === 0) throw new KmsError('ValidationException', `key ${input.KeyId} needs no approvals per signature`);
      store.noteSignRequest({
        keyId: input.KeyId,
        algorithm: input.SigningAlgorithm,
        digest: input.Digest,
        principal: principal.name,
        ...(input.FileName ? { fileName: input.FileName } : {}),
        ...(input.CertificateSubject ? { certificateSubject: input.CertificateSubject } : {}),
      });
      return { result: { KeyId: input.KeyId, Required: required } };
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
    case 'Posture': {
      // Administrators and auditors check the deployment from their own hosts (mpchsm doctor).
      requireRole(principal, ['mpchsm:Approve', 'mpchsm:ReadAudit']);
      const input = parseInput(INPUTS.Posture, raw, name);
      return { result: await c.posture(input.Nonce, input.Packages ?? false) };
    }
    case 'AuditLog': {
      requireRole(principal, ['mpchsm:Approve', 'mpchsm:ReadAudit']);
      const input = parseInput(INPUTS.AuditLog, raw, name);
      const page = await c.auditLog(input.Party, input.From, input.Limit ?? 1000);
      return { result: { Lines: page.lines, Head: page.head, More: page.more } };
    }
    case 'ListAuditRecords': {
      // The gateway's transcript, as `mpchsm audit show --json` prints it, paged by sequence number.
      requireRole(principal, ['mpchsm:ReadAudit']);
      const input = parseInput(INPUTS.ListAuditRecords, raw, name);
      const limit = input.Limit ?? 100;
      const after = input.Marker === undefined ? -1 : Number(input.Marker);
      const { entries, more } = await c.auditRecords(after, limit, input.KeyId);
      return { result: { Records: entries, Truncated: more, ...(more ? { NextMarker: String(entries.at(-1)!.seq) } : {}) } };
    }
  }
}
