// The one place either facade decides whether a principal may call an operation (on a key):
// policy/evaluate.ts's `authorize` — role ceiling, the key's policy (deny overrides), the
// governance quorum, per-signature approvals — under the gateway's governance and its copy of
// the key policies. Every operation passes here: once for the operation, once per key.
//
// The gateway's decision is the first line: signers decide again from what they hold
// themselves (signers/node/guard/). Every refusal is AccessDeniedException naming the
// principal, operation, key, reason and the missing permission; one that approvals would
// lift is an ApprovalRequired, which the KMS API turns into a proposal.
import {
  authorize as decide,
  isAction,
  requiredRoleText,
  roleAllows,
  type Action,
  type ApprovalNeed,
  type Approval,
  type Proposal,
  type RequestContext,
  type SignApproval,
} from '../../policy/index.js';
import { gatewayPolicy } from '../governance.js';
import type { KeyRecord } from '../keys.js';
import type { Principal } from '../principals.js';
import { KmsError } from './errors.js';

export interface AuthorizeExtra {
  /** Algorithm, message type, digest, deletion window: what key policy conditions test. */
  context?: RequestContext;
  /** When executing an approved proposal: the proposal, its approvals, the request's parameters. */
  approval?: { proposal: Proposal; approvals: readonly Approval[]; parameters: Record<string, unknown> };
  /** The administrator's own request (or the one that proposed it) goes to the signers, who count it as an approval. */
  requestApproved?: boolean;
}

export interface Authorized {
  /** Administrators whose approvals were verified (for the audit entry). */
  approvedBy: string[];
  /** Per-signature approvals that allowed a Sign: the signers verify them too. */
  signApprovals: SignApproval[];
  /** Their nonces, to record as used once the signature is made. */
  consumeNonces: { nonce: string; expiresAt: number }[];
}

/** A refusal that approvals would lift. */
export class ApprovalRequired extends KmsError {
  constructor(
    readonly need: ApprovalNeed,
    message: string,
  ) {
    super('AccessDeniedException', message);
  }
}

const actionOf = (operation: string): Action => {
  const a = `kms:${operation}`;
  if (!isAction(a)) throw new KmsError('AccessDeniedException', `kms:${operation.slice(0, 64)} is not an operation mpchsm knows`);
  return a;
};

/** The role ceiling alone: for the operation-level check of operations decided later per key. */
export function authorizeRole(principal: Principal, operation: string): void {
  const action = actionOf(operation);
  if (!roleAllows(principal.role, action)) {
    const never = principal.role === 'admin' && (operation === 'Sign' || operation === 'Decrypt') ? ' (key administrators never sign or decrypt)' : '';
    throw new KmsError('AccessDeniedException', `principal ${principal.name} is not allowed ${action}: ${requiredRoleText(action)}${never} [missing: ${action}]`);
  }
}

export function authorize(principal: Principal, operation: string, key?: KeyRecord, extra: AuthorizeExtra = {}): Authorized {
  const policy = gatewayPolicy();
  const action = actionOf(operation);
  const keyInput = key ? policy.keyPolicies.keyInput(key) : undefined;
  const ctx = extra.context ?? {};
  const perSignature = action === 'kms:Sign' && key && (keyInput?.policy.mpchsm?.approvalsPerSignature ?? 0) > 0;
  const signApprovals = perSignature && ctx.algorithm && ctx.digest ? policy.proposals.signApprovalsFor(key.keyId, ctx.algorithm, ctx.digest) : [];
  const d = decide({
    principal: policy.principalOf(principal),
    operation: action,
    ...(keyInput ? { key: keyInput } : {}),
    context: ctx,
    governance: policy.governance,
    now: Date.now(),
    ...(extra.approval ? { approval: extra.approval } : {}),
    ...(extra.requestApproved ? { requestApproved: true } : {}),
    signApprovals: { approvals: signApprovals, usedNonces: policy.proposals.usedNonces() },
  });
  if (d.allowed) return { approvedBy: d.approvedBy, signApprovals: d.consumeNonces.length ? signApprovals : [], consumeNonces: d.consumeNonces };
  const message = `${d.reason} [missing: ${d.missing}]`;
  if (!d.needsApproval) throw new KmsError('AccessDeniedException', message);
  if (d.needsApproval.kind === 'signature' && key) {
    if (ctx.algorithm && ctx.digest) policy.proposals.noteSignRequest({ keyId: key.keyId, algorithm: ctx.algorithm, digest: ctx.digest, principal: principal.name });
    const how = `each approving administrator runs: mpchsm approve-sign --key ${key.keyId} --algorithm ${ctx.algorithm ?? 'ALGORITHM'} --digest ${ctx.digest ?? 'DIGEST'} --as <administrator>`;
    throw new ApprovalRequired(d.needsApproval, `${message}; ${how}`);
  }
  throw new ApprovalRequired(d.needsApproval, message);
}
