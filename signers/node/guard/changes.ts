// The numbered changes every signer applies in order, each once, refusals final too: a key's
// policy or state, an alias, and membership (principals, signers, the governance). Each is
// checked here for the request or approvals behind it — a change under no quorum (aliases,
// EnableKey, CancelKeyDeletion by default) needs the administrator's request as much as one
// under quorum needs its approvals — and recorded in this signer's audit chain with who asked,
// who approved and the change's hash.
import { z } from 'zod';
import { changeSchema, tagsSchema, type KeyChange, type MembershipChange } from '../../../contract/signer-rpc/authority.js';
import { SYMMETRIC_KEY_SPEC } from '../../../contract/keys/specs.js';
import { aliasNameProblem, authorize, quorumFor, sameParameters, type Action } from '../../../policy/index.js';
import { RpcError } from '../rpc.js';
import { askedDetail, askedFor, markApplied, proposalOf, updateGovernance, type Applied } from './governance.js';
import { keyIdOf, keyInput, keyState, parsePolicy } from './keys.js';
import { admitSigner, retireSigner } from './peers.js';
import { restoreSigner } from './restore.js';
import { addPrincipal, principalInput, removePrincipal, requestCheck } from './registry.js';
import { ALIASES, changeSealed, denied, evidenceHashOf, json, KEY_PREFIX, saveLedger, type GuardState, type KeyState } from './state.js';

const DAY_MS = 86_400_000;

/** Applies one numbered change, after checking its approvals; refusals are final too. */
export async function apply(s: GuardState, raw: unknown): Promise<{ seq: number; applied: boolean }> {
  const c = changeSchema.parse(raw);
  if (c.seq <= s.ledger.seq) return { seq: c.seq, applied: false }; // a retry of one already processed
  if (c.seq !== s.ledger.seq + 1) throw new RpcError(409, 'out-of-order', `expected change ${s.ledger.seq + 1}, not ${c.seq}`);
  s.ledger.seq = c.seq;
  try {
    // Hashed before it is applied: a change that has no canonical form is refused, not half-recorded.
    let evidenceHash: string;
    try {
      evidenceHash = evidenceHashOf(c);
    } catch {
      throw denied('the change is not canonical JSON');
    }
    const result = 'keyId' in c ? await applyKeyChange(s, c) : await applyMembership(s, c);
    if (result.request) s.ledger.requests[result.request.replayId] = result.request.replayUntil;
    await s.audit.append({
      request: `change-${c.seq}`,
      op: `policy.${c.operation}`,
      operation: c.operation,
      principal: { name: result.principal },
      keyId: 'keyId' in c ? c.keyId : undefined,
      keyRef: result.keyRef,
      evidenceHash,
      policy: { version: s.governance.version, approvals: result.approvedBy },
      outcome: 'ok',
      output: 'none',
      startedAt: Date.now(),
      detail: result.detail,
    });
    return { seq: c.seq, applied: true };
  } finally {
    await saveLedger(s);
  }
}

/**
 * A key or alias change: asked by the administrator whose request verifies here for exactly
 * this change, or approved by a proposal (the proposer's request, when forwarded, counting as
 * the proposer's approval).
 */
async function applyKeyChange(s: GuardState, c: KeyChange): Promise<Applied> {
  const op = `kms:${c.operation}` as Action;
  const target = `TrentService.${c.operation}`;
  const now = Date.now();
  const { approved, principal, evidenceHash, request } = await askedFor(s, op, target, c, sameParameters(c.parameters, requestCheck(s).keyIdOf), now);
  const params = approved?.proposal.parameters ?? c.parameters;
  const str = (name: string): string => {
    const v = params[name];
    if (typeof v !== 'string') throw denied(`${c.operation}: parameter ${name} is missing`);
    return v;
  };
  const isAlias = c.operation.endsWith('Alias');
  const keyRef = str(c.operation === 'DeleteAlias' ? 'AliasName' : isAlias ? 'TargetKeyId' : 'KeyId');
  const keyId = c.operation === 'DeleteAlias' ? s.aliases[keyRef] : keyIdOf(s, keyRef);
  if (keyId !== c.keyId) throw denied(`the change names key ${c.keyId} but its parameters name ${keyId ?? 'no key'}`);
  const key = keyState(s, keyId);
  const window = params.PendingWindowInDays;
  const d = authorize({
    principal: principalInput(s, principal),
    operation: op,
    key: keyInput(s, key),
    context: typeof window === 'number' ? { pendingWindowInDays: window } : {},
    governance: s.governance,
    now,
    requestApproved: evidenceHash !== undefined,
    ...(approved ? { approval: approved.input } : {}),
  });
  if (!d.allowed) throw denied(d.reason);
  if (approved && approved.proposal.createdAt < key.lastChange) throw denied(`proposal ${approved.proposal.id} is older than a change already applied to key ${keyId}`);

  const next: KeyState = { ...key, lastChange: approved?.proposal.createdAt ?? key.lastChange };
  const pending = key.state === 'PendingDeletion';
  const invalid = () => new RpcError(409, 'invalid-state', `key ${keyId} is ${key.state} at this signer`);
  switch (c.operation) {
    case 'PutKeyPolicy':
      next.policy = str('Policy');
      parsePolicy(next.policy);
      break;
    case 'DisableKey':
    case 'EnableKey':
      if (pending) throw invalid();
      next.state = c.operation === 'DisableKey' ? 'Disabled' : 'Enabled';
      break;
    case 'ScheduleKeyDeletion': {
      if (pending) throw invalid();
      const days = window ?? 30;
      if (typeof days !== 'number' || !Number.isInteger(days) || days < 7 || days > 30) throw denied(`PendingWindowInDays must be 7 to 30, not ${String(days)}`);
      next.state = 'PendingDeletion';
      next.deletionDate = Date.now() + days * DAY_MS;
      break;
    }
    case 'CancelKeyDeletion':
      if (!pending) throw invalid();
      next.state = 'Disabled';
      delete next.deletionDate;
      break;
    case 'TagResource':
    case 'UntagResource':
    case 'UpdateKeyDescription':
      if (pending) throw invalid();
      Object.assign(next, described(c.operation, params, next));
      break;
    case 'EnableKeyRotation':
    case 'DisableKeyRotation': {
      // As the gateway's (gateway/kms/ops/rotation.ts): an Enabled symmetric key, 365 days unless given or set before.
      if (key.keySpec !== SYMMETRIC_KEY_SPEC) throw denied(`${c.operation}: key ${keyId} is not a symmetric key`);
      if (key.state !== 'Enabled') throw invalid();
      const days = c.operation === 'EnableKeyRotation' ? (params.RotationPeriodInDays ?? key.rotation?.periodDays ?? 365) : (key.rotation?.periodDays ?? 365);
      if (typeof days !== 'number' || !Number.isInteger(days) || days < 90 || days > 2560) throw denied(`RotationPeriodInDays must be 90 to 2560, not ${String(days)}`);
      next.rotation = { enabled: c.operation === 'EnableKeyRotation', periodDays: days };
      break;
    }
    default: {
      const name = str('AliasName');
      const problem = aliasNameProblem(name);
      if (problem) throw denied(problem);
      const current = s.aliases[name];
      if (c.operation === 'CreateAlias' && current !== undefined) throw denied(`alias ${name} already exists here; UpdateAlias re-points it`);
      if (c.operation === 'UpdateAlias') {
        if (current === undefined) throw denied(`alias ${name} does not exist here`);
        if (keyState(s, current).keyUsage !== key.keyUsage) throw denied(`alias ${name} names a ${keyState(s, current).keyUsage} key; it cannot be re-pointed at a ${key.keyUsage} key`);
      }
      if (c.operation !== 'DeleteAlias' && pending) throw invalid();
      await changeSealed(s, ALIASES, 'aliases', (current) => {
        const aliases = { ...current };
        if (c.operation === 'DeleteAlias') delete aliases[name];
        else aliases[name] = keyId;
        return aliases;
      });
    }
  }
  if (!isAlias) {
    await s.store.put(KEY_PREFIX + keyId, json(next));
    s.keys.set(keyId, next);
    s.policies.delete(keyId);
  }
  if (approved) await markApplied(s, approved.proposal, d.counters);
  const detail = askedDetail(approved?.proposal.id, evidenceHash);
  return { principal, approvedBy: d.approvedBy, keyRef, detail, ...(request ? { request } : {}) };
}

/**
 * A key's description or tags after TagResource, UntagResource or UpdateKeyDescription, as the
 * gateway's KMS state has them (gateway/kms/ops/tags.ts): kept only so that a gateway that lost
 * its directory rebuilds them.
 */
function described(operation: 'TagResource' | 'UntagResource' | 'UpdateKeyDescription', params: Record<string, unknown>, key: KeyState): Pick<KeyState, 'description' | 'tags'> {
  const parsed = <T>(schema: z.ZodType<T>, v: unknown, name: string): T => {
    const r = schema.safeParse(v);
    if (!r.success) throw denied(`${operation}: parameter ${name} is malformed`);
    return r.data;
  };
  if (operation === 'UpdateKeyDescription') return { description: parsed(z.string().max(8192), params.Description, 'Description') };
  const byKey = new Map((key.tags ?? []).map((t) => [t.TagKey, t.TagValue]));
  if (operation === 'TagResource') for (const t of parsed(tagsSchema, params.Tags, 'Tags')) byKey.set(t.TagKey, t.TagValue);
  else for (const k of parsed(z.array(z.string().max(128)).max(50), params.TagKeys, 'TagKeys')) byKey.delete(k);
  if (byKey.size > 50) throw denied(`${operation}: a key has at most 50 tags`);
  return { tags: [...byKey].map(([TagKey, TagValue]) => ({ TagKey, TagValue })) };
}

/** AddPrincipal, RemovePrincipal, AddSigner, RemoveSigner and RestoreSigner take an approved proposal; UpdateGovernance a verified next version. */
async function applyMembership(s: GuardState, c: MembershipChange): Promise<Applied> {
  if (c.operation === 'UpdateGovernance') return updateGovernance(s, c);
  const op = `mpchsm:${c.operation}` as const;
  // Every governance version puts these under quorum (policy/governance.ts): a proposal is required.
  const approved = proposalOf(s, op, c, quorumFor(s.governance, op));
  const { proposal } = approved;
  const d = authorize({ principal: principalInput(s, proposal.proposer), operation: op, governance: s.governance, now: Date.now(), approval: approved.input });
  if (!d.allowed) throw denied(d.reason);
  const member =
    c.operation === 'AddPrincipal' ? await addPrincipal(s, proposal)
    : c.operation === 'RemoveSigner' ? await retireSigner(s, proposal)
    : c.operation === 'AddSigner' ? await admitSigner(s, proposal)
    : c.operation === 'RestoreSigner' ? await restoreSigner(s, proposal)
    : await removePrincipal(s, proposal);
  await markApplied(s, proposal, d.counters);
  return { principal: proposal.proposer, approvedBy: d.approvedBy, detail: { proposal: proposal.id, member } };
}
