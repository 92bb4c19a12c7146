// The one authorisation decision, the same at the gateway and at every signer:
//   1. role ceiling  — the most the principal's role may ever do (roles.ts);
//   2. key policy    — for operations on a key: explicit Deny wins, else an Allow must match,
//                      and the key's mpchsm.allowedAlgorithms must include the algorithm;
//   3. governance    — operations under quorum need M-of-N administrator approvals of this
//                      exact request (approvals.ts);
//   4. per-signature — Sign on a key with mpchsm.approvalsPerSignature = k needs k approvals
//                      of this digest (sign-approvals.ts).
// Every refusal names the principal, the operation, the key and what is missing.
import { verifyApprovals } from './approvals.js';
import { canonicalJson } from '../contract/canonical.js';
import { approvalKeyOf, quorumFor, type GovernanceDocument } from './governance.js';
import { evaluateKeyPolicy, type ConditionContext, type KeyPolicy } from './key-policy.js';
import { isAction, isKeyAction, requiredRoleText, roleAllows, ROLE_TITLES, type Action, type PolicyRole } from './roles.js';
import { verifySignApprovals } from './sign-approvals.js';
import type { CounterUse } from './webauthn.js';

export interface RequestContext {
  /** SigningAlgorithm (Sign, Verify) or EncryptionAlgorithm (Encrypt, Decrypt). */
  algorithm?: string;
  messageType?: 'RAW' | 'DIGEST';
  /** ScheduleKeyDeletion's PendingWindowInDays. */
  pendingWindowInDays?: number;
  /** Sign on a key needing per-signature approvals: messageDigestFor(...), hex. */
  digest?: string;
}

export interface AuthorizeInput {
  principal: { name: string; role: PolicyRole; /** arn:aws:iam::ACCOUNT:user/NAME */ arn: string };
  operation: Action;
  /** The key the operation acts on, with its validated policy; omit for account operations. */
  key?: { arn: string; policy: KeyPolicy; keySpec?: string; keyUsage?: string; origin?: string };
  context?: RequestContext;
  /** The verified governance document in force (verifyGenesis / verifyGovernanceUpdate). */
  governance: GovernanceDocument;
  now: number;
  /** For an operation under quorum: the proposal, its approvals, and the request's own parameters. */
  approval?: { proposal: unknown; approvals: readonly unknown[]; parameters: Record<string, unknown>; /** WebAuthn counters recorded, by credential id. */ counters?: Readonly<Record<string, number>> };
  /**
   * The principal's own signed request was verified by the caller (admin-evidence.ts): it is that
   * administrator's approval — of the proposal it made, or alone where the quorum is one.
   */
  requestApproved?: boolean;
  /** For Sign on a key with approvalsPerSignature: the approvals and the caller's used nonces. */
  signApprovals?: { approvals: readonly unknown[]; usedNonces: ReadonlySet<string>; /** WebAuthn counters recorded, by credential id. */ counters?: Readonly<Record<string, number>> };
}

export interface ApprovalNeed {
  /** Approvals required, among n administrators. */
  m: number;
  n: number;
  operation: Action;
  /** 'quorum': a proposal approved by M administrators; 'signature': approvals of this digest. */
  kind: 'quorum' | 'signature';
}

export type Decision =
  | {
      allowed: true;
      /** Administrators whose approvals were verified (for the audit record). */
      approvedBy: string[];
      /** Per-signature approval nonces to record as used, until expiresAt, once the operation ran. */
      consumeNonces: { nonce: string; expiresAt: number }[];
      /** WebAuthn signature counters to record once the operation ran (its approvals' and per-signature approvals'), when there are any. */
      counters?: CounterUse[];
    }
  | {
      allowed: false;
      reason: string;
      /** The permission that is missing: an action, or mpchsm:Approve when approvals are. */
      missing: string;
      /** Present when approvals would allow the request: collect them and call again. */
      needsApproval?: ApprovalNeed;
    };

const PRINCIPAL_ARN_RE = /^arn:aws:iam::(\d{12}):user\/([A-Za-z0-9_.@-]{1,64})$/;
const KEY_ARN_RE = /^arn:aws:kms:[a-z0-9-]+:\d{12}:key\/([0-9a-f-]{36})$/;
const SIGNING_OPS: ReadonlySet<Action> = new Set(['kms:Sign', 'kms:Verify']);
const ALGORITHM_OPS: ReadonlySet<Action> = new Set(['kms:Sign', 'kms:Verify', 'kms:Encrypt', 'kms:Decrypt']);

export function authorize(input: AuthorizeInput): Decision {
  const { principal, operation: op, key, governance } = input;
  const ctx = input.context ?? {};
  const onKey = key ? ` on key ${key.arn}` : '';
  const deny = (why: string, missing: string = op, needsApproval?: ApprovalNeed): Decision => ({
    allowed: false,
    reason: `principal ${principal.name} is not allowed ${op}${onKey}: ${why}`,
    missing,
    ...(needsApproval ? { needsApproval } : {}),
  });

  if (!isAction(op)) return deny('unknown operation');
  const arn = PRINCIPAL_ARN_RE.exec(principal.arn);
  if (!arn || arn[2] !== principal.name) return deny(`its ARN ${principal.arn} does not name it`);
  if (!Object.hasOwn(ROLE_TITLES, principal.role)) return deny(`unknown role ${String(principal.role)}`);

  // 1. Role ceiling: nothing below can grant more.
  if (!roleAllows(principal.role, op)) {
    const extra = principal.role === 'admin' && (op === 'kms:Sign' || op === 'kms:Decrypt') ? ' (key administrators never sign or decrypt)' : '';
    return deny(`${requiredRoleText(op)}${extra}`);
  }

  // 2. Key policy, for operations on a key. Without a key (the gateway's first, operation-only
  // check) this step waits for the per-key call.
  let keyId: string | undefined;
  if (key && isKeyAction(op)) {
    keyId = KEY_ARN_RE.exec(key.arn)?.[1];
    if (!keyId) return deny(`${key.arn} is not a key ARN`);
    const conditions: ConditionContext = {
      'aws:PrincipalArn': principal.arn,
      'aws:username': principal.name,
      'kms:CallerAccount': arn[1]!,
    };
    if (ctx.algorithm !== undefined) conditions[SIGNING_OPS.has(op) ? 'kms:SigningAlgorithm' : 'kms:EncryptionAlgorithm'] = ctx.algorithm;
    if (ctx.messageType !== undefined) conditions['kms:MessageType'] = ctx.messageType;
    if (ctx.pendingWindowInDays !== undefined) conditions['kms:ScheduleKeyDeletionPendingWindowInDays'] = ctx.pendingWindowInDays;
    if (key.keySpec !== undefined) conditions['kms:KeySpec'] = key.keySpec;
    if (key.keyUsage !== undefined) conditions['kms:KeyUsage'] = key.keyUsage;
    if (key.origin !== undefined) conditions['kms:KeyOrigin'] = key.origin;

    const d = evaluateKeyPolicy(key.policy, { principalArn: principal.arn, action: op, resource: key.arn, context: conditions });
    if (d.effect === 'Deny') return deny(`explicitly denied by statement ${d.statement} of the key policy`);
    if (d.effect === 'ImplicitDeny') {
      return deny(
        d.unmet
          ? `the key policy's statement ${d.unmet.statement} would allow it, but its condition ${d.unmet.operator} on ${d.unmet.key} is not met`
          : `the key policy grants ${principal.arn} no ${op}`,
      );
    }
    const allowed = key.policy.mpchsm?.allowedAlgorithms;
    if (allowed && ALGORITHM_OPS.has(op) && !(allowed as readonly string[]).includes(ctx.algorithm ?? '')) {
      return deny(`the key allows only the algorithms ${allowed.join(', ')}, not ${ctx.algorithm ?? '(none given)'}`);
    }
  }

  // 3. Governance: M of N administrators approve this exact operation and its parameters.
  const approvedBy = new Set<string>();
  let counters: CounterUse[] = [];
  const n = governance.administrators.length;
  const m = quorumFor(governance, op);
  const own = input.requestApproved === true && approvalKeyOf(governance, principal.name) !== undefined;
  if (m === 1 && own && !input.approval) approvedBy.add(principal.name);
  else if (m > 0) {
    const need: ApprovalNeed = { m, n, operation: op, kind: 'quorum' };
    const a = input.approval;
    if (!a) return deny(`it needs approval by ${m} of the ${n} administrators (governance v${governance.version})`, 'mpchsm:Approve', need);
    const r = verifyApprovals(a.proposal, a.approvals, governance, input.now, input.requestApproved === true, a.counters);
    if (!r.ok) return deny(r.reason, 'mpchsm:Approve', need);
    if (r.proposal.operation !== op) return deny(`the approved proposal ${r.proposal.id} is for ${r.proposal.operation}`, 'mpchsm:Approve', need);
    if (r.proposal.proposer !== principal.name) return deny(`proposal ${r.proposal.id} was made by ${r.proposal.proposer}`, 'mpchsm:Approve', need);
    let same: boolean;
    try {
      same = canonicalJson(r.proposal.parameters) === canonicalJson(a.parameters);
    } catch {
      same = false;
    }
    if (!same) return deny(`the request's parameters differ from those approved in proposal ${r.proposal.id}`, 'mpchsm:Approve', need);
    for (const x of r.approvers) approvedBy.add(x);
    counters = r.counters;
  }

  // 4. Per-signature approvals.
  let consumeNonces: { nonce: string; expiresAt: number }[] = [];
  const k = key?.policy.mpchsm?.approvalsPerSignature ?? 0;
  if (op === 'kms:Sign' && keyId !== undefined && k > 0) {
    const need: ApprovalNeed = { m: k, n, operation: op, kind: 'signature' };
    const s = input.signApprovals;
    if (!s) return deny(`each signature with this key needs approval by ${k} administrators`, 'mpchsm:Approve', need);
    if (ctx.algorithm === undefined || ctx.digest === undefined) return deny('the request names no algorithm or digest to match approvals against');
    const r = verifySignApprovals({
      approvals: s.approvals,
      required: k,
      governance,
      keyId,
      algorithm: ctx.algorithm,
      digest: ctx.digest,
      now: input.now,
      usedNonces: s.usedNonces,
      ...(s.counters ? { counters: s.counters } : {}),
    });
    if (!r.ok) return deny(r.reason, 'mpchsm:Approve', need);
    for (const x of r.approvers) approvedBy.add(x);
    consumeNonces = r.nonces;
    counters = [...counters, ...(r.counters ?? [])];
  }
  return { allowed: true, approvedBy: [...approvedBy], consumeNonces, ...(counters.length ? { counters } : {}) };
}
