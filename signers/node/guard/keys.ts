// This signer's own copy of each key's record — spec, usage, origin, policy, state (Enabled,
// Disabled, PendingDeletion) — and of the aliases: how a client's key reference resolves here,
// how a key is born (the administrator's signed CreateKey request for exactly this key, or an
// approved proposal, and the policy), when it is committed, and when it may be forgotten (a
// creation not committed, rolled back) or destroyed (an approved deletion that is due by this
// signer's clock).
//
// A key generation leaves a *pending* key: its share is stored, but the gateway has not yet
// seen every signer finish with the same public package. The gateway commits it once it has
// (and recorded the key), or its first use does. Only a pending key is forgotten on the
// gateway's word — a rolled-back creation — and forgetting it gives back the authority it
// spent (the proposal or the administrator's request), so an interrupted creation can be
// approved again. A committed key goes only by an approved ScheduleKeyDeletion: a compromised
// gateway cannot make a signer drop the share of a key anyone was told exists.
import {
  authorize,
  createKeyRequestFor,
  defaultKeyPolicy,
  MalformedPolicyDocumentException,
  parseKeyPolicy,
  resolveKeyRef,
  type AuthorizeInput,
  type CounterUse,
  type KeyPolicy,
} from '../../../policy/index.js';
import { creationSchema } from '../../../contract/signer-rpc/authority.js';
import { RpcError } from '../rpc.js';
import { askedDetail, askedFor, type AskedRecord } from './governance.js';
import { principalInput, requestCheck } from './registry.js';
import { ALIASES, changeSealed, checkCounters, denied, evidenceHashOf, json, KEY_PREFIX, recordCounters, saveLedger, type GuardState, type KeyState, type RegisteredPrincipal } from './state.js';

/** What a key creation adds to the signer's audit entry. */
export interface CreateRecord extends AskedRecord {
  operation: 'CreateKey';
  evidenceHash: string;
}

/** A key creation this signer has authorised, recorded once its share is stored. */
export interface PendingKey {
  keyId: string;
  keySpec: string;
  keyUsage: KeyState['keyUsage'];
  origin: KeyState['origin'];
  policy: string;
  lastChange: number;
  description?: string;
  tags?: KeyState['tags'];
  /** Who asked, who approved, the authorisation's hash and the request's, for the audit entry. */
  record: CreateRecord;
  /** The authority spent when the key is stored (`proposal:ID` or `request:REPLAY-ID`), until when, with its security-key approvals' counters. */
  authority: { name: string; until: number; counters?: CounterUse[] };
}

export function keyState(s: GuardState, keyId: string): KeyState {
  const k = s.keys.get(keyId);
  if (!k) throw new RpcError(404, 'no-key', `this signer has no policy record for key ${keyId}`);
  return k;
}

/** The key a client's reference names by this signer's own alias table. */
export function resolveKey(s: GuardState, ref: string): string | undefined {
  return resolveKeyRef(ref, { region: s.registry.region, account: s.registry.account, aliasTarget: (a) => s.aliases[a] });
}

/** The key id a key id or key ARN of this cluster names; anything else is refused. */
export function keyIdOf(s: GuardState, ref: string): string {
  const id = requestCheck(s).keyIdOf(ref);
  if (id === undefined) throw denied(`${ref.slice(0, 128)} is not a key id or key ARN of this cluster`);
  return id;
}

/** A key, as `authorize` takes it (its policy parsed once). */
export function keyInput(s: GuardState, k: KeyState): NonNullable<AuthorizeInput['key']> {
  let policy = s.policies.get(k.keyId);
  if (!policy) {
    policy = parsePolicy(k.policy);
    s.policies.set(k.keyId, policy);
  }
  return { arn: `arn:aws:kms:${s.registry.region}:${s.registry.account}:key/${k.keyId}`, policy, keySpec: k.keySpec, keyUsage: k.keyUsage, origin: k.origin };
}

export function parsePolicy(text: string): KeyPolicy {
  try {
    return parseKeyPolicy(text);
  } catch (e) {
    if (e instanceof MalformedPolicyDocumentException) throw denied(e.message);
    throw e;
  }
}

/** The policy of a key created without one: the same document the gateway computes. */
function defaultPolicy(s: GuardState): KeyPolicy {
  const named = (role: RegisteredPrincipal['role']) => s.registry.principals.filter((p) => p.role === role).map((p) => p.name).sort();
  return defaultKeyPolicy(s.registry.account, named('admin'), named('app'), named('auditor'));
}

/**
 * Authorises creating `keyId`: the administrator's CreateKey request for exactly this key
 * (its own approval) or an approved proposal (the proposer's request counting as one
 * approval), and the policy.
 */
export async function authorizeCreate(s: GuardState, keyId: string, raw: unknown): Promise<PendingKey> {
  if (raw === undefined) throw denied('the request carries no key-creation authorisation');
  const c = creationSchema.parse(raw);
  if (s.keys.has(keyId)) throw new RpcError(409, 'key-exists', `key ${keyId} already exists here`);
  const now = Date.now();
  const { approved, principal, evidenceHash, request } = await askedFor(s, 'kms:CreateKey', 'TrentService.CreateKey', c, createKeyRequestFor(c), now);
  let policyText = c.policy;
  if (approved) {
    const p = approved.proposal;
    const spec = p.parameters.KeySpec ?? p.parameters.CustomerMasterKeySpec;
    if (spec !== c.keySpec || p.parameters.KeyUsage !== c.keyUsage)
      throw denied(`proposal ${p.id} approves a ${String(spec)} ${String(p.parameters.KeyUsage)} key, not a ${c.keySpec} ${c.keyUsage} key`);
    if (p.parameters.Policy !== undefined && typeof p.parameters.Policy !== 'string') throw denied(`proposal ${p.id} has a malformed Policy`);
    policyText = p.parameters.Policy as string | undefined;
  }
  const authority = approved ? { name: `proposal:${approved.proposal.id}`, until: approved.proposal.expiresAt } : { name: `request:${request!.replayId}`, until: request!.replayUntil };
  // One authority makes one key: a retry of the same key is not a second one.
  const other = s.creating.get(authority.name);
  if (other !== undefined && other !== keyId) throw denied(approved ? `proposal ${approved.proposal.id} is already creating key ${other} here` : 'this signed request was already used to create another key (replay)');
  const d = authorize({
    principal: principalInput(s, principal),
    operation: 'kms:CreateKey',
    governance: s.governance,
    now,
    requestApproved: evidenceHash !== undefined,
    ...(approved ? { approval: approved.input } : {}),
  });
  if (!d.allowed) throw denied(d.reason);
  const policy = policyText ?? JSON.stringify(defaultPolicy(s), null, 2);
  parsePolicy(policy);
  s.creating.set(authority.name, keyId);
  const detail = askedDetail(approved?.proposal.id, evidenceHash);
  return {
    keyId,
    keySpec: c.keySpec,
    keyUsage: c.keyUsage,
    origin: c.origin,
    policy,
    lastChange: approved?.proposal.createdAt ?? 0,
    ...(c.description ? { description: c.description } : {}),
    ...(c.tags?.length ? { tags: c.tags } : {}),
    record: { operation: 'CreateKey', principal: { name: principal }, evidenceHash: evidenceHashOf(c), policy: { version: s.governance.version, approvals: d.approvedBy }, detail },
    authority: { ...authority, ...(d.counters ? { counters: d.counters } : {}) },
  };
}

/** Records a pending key once this signer stored its share, its authority spent; answers who asked, for the audit entry. */
export async function recordCreated(s: GuardState, k: PendingKey): Promise<CreateRecord> {
  const { record, authority, ...rest } = k;
  // Checked again before anything is written: another use may have passed a counter since authorizeCreate.
  checkCounters(s, authority.counters ?? []);
  const state: KeyState = { ...rest, state: 'Enabled', createdAt: Date.now(), pending: { authority: authority.name, until: authority.until } };
  await s.store.put(KEY_PREFIX + k.keyId, json(state));
  s.keys.set(k.keyId, state);
  recordCounters(s, authority.counters ?? []);
  await spend(s, authority.name, authority.until);
  return record;
}

/** The ledger entry an authority is spent in: a proposal's, or a request's replay id. */
function ledgerOf(s: GuardState, authority: string): [Record<string, number>, string] {
  const [kind, id] = [authority.slice(0, authority.indexOf(':')), authority.slice(authority.indexOf(':') + 1)];
  return [kind === 'proposal' ? s.ledger.proposals : s.ledger.requests, id];
}

async function spend(s: GuardState, authority: string, until: number): Promise<void> {
  const [entries, id] = ledgerOf(s, authority);
  entries[id] = until;
  await saveLedger(s);
}

/**
 * Commits a pending key (the gateway saw every signer finish with the same public package, or
 * the key was used): from now on only an approved deletion removes it, and its authority stays
 * spent. Answers whether the key is committed here (false: this signer has no such key).
 */
export async function commitKey(s: GuardState, keyId: string): Promise<boolean> {
  const k = s.keys.get(keyId);
  if (!k) return false;
  if (!k.pending) return true;
  const { pending, ...committed } = k;
  // Spent again first: a ledger entry lost to a crash after the share was stored comes back.
  if (pending.authority !== undefined && pending.until !== undefined) await spend(s, pending.authority, pending.until);
  await s.store.put(KEY_PREFIX + keyId, json(committed));
  s.keys.set(keyId, committed);
  if (pending.authority !== undefined) s.creating.delete(pending.authority);
  return true;
}

/** At start: a pending key holds its authority, so no second key is made with it meanwhile. */
export function holdPending(s: GuardState): void {
  for (const k of s.keys.values()) if (k.pending?.authority !== undefined) s.creating.set(k.pending.authority, k.keyId);
}

/**
 * Only a creation not committed is rolled back on the gateway's word. Deleting a committed key
 * takes ScheduleKeyDeletion, under the administrators' quorum.
 */
export function checkForget(s: GuardState, keyId: string): void {
  const k = s.keys.get(keyId);
  if (!k) return;
  if (!k.pending || s.used.has(keyId)) throw denied(`key ${keyId} was committed: it is in use; keys are deleted by an approved ScheduleKeyDeletion, not forgotten`);
}

/** A rolled-back creation gives back its authority: the proposal or request may make the key again. */
async function releaseAuthority(s: GuardState, keyId: string): Promise<void> {
  const k = s.keys.get(keyId);
  if (k?.pending?.authority !== undefined) {
    const [entries, id] = ledgerOf(s, k.pending.authority);
    delete entries[id];
    await saveLedger(s);
  }
  for (const [authority, id] of s.creating) if (id === keyId) s.creating.delete(authority);
}

/** A key is destroyed only once its deletion, approved and applied here, is due by this signer's clock. */
export function checkDestroy(s: GuardState, keyId: string): void {
  const k = keyState(s, keyId);
  if (k.state !== 'PendingDeletion' || k.deletionDate === undefined) throw denied(`key ${keyId} is ${k.state} here, not pending deletion`);
  if (k.deletionDate > Date.now()) throw denied(`key ${keyId} is pending deletion until ${new Date(k.deletionDate).toISOString()} here`);
}

/** Forgets a destroyed or rolled-back key: its policy record and the aliases naming it (and a rolled-back one's authority). */
export async function forgotten(s: GuardState, keyId: string): Promise<void> {
  await releaseAuthority(s, keyId);
  await changeSealed(s, ALIASES, 'aliases', (current) => {
    const aliases = Object.fromEntries(Object.entries(current).filter(([, id]) => id !== keyId));
    return Object.keys(aliases).length === Object.keys(current).length ? undefined : aliases;
  });
  await s.store.delete(KEY_PREFIX + keyId);
  s.keys.delete(keyId);
  s.policies.delete(keyId);
}
