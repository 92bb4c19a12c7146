// The signers of this cluster as this signer knows them: those configured at bootstrap, those
// admitted by approved AddSigner proposals (their pinned identities), and those removed by
// approved RemoveSigner proposals — retired for good: no envelope from them is opened, no
// session including them joined. A key is reshared only to active signers, keeping every active
// holder (signers/node/reshare.ts); a refresh of its shares is asked for, or approved, as the
// governance says.
import { checkRequiredAttestation } from '../tpm/admission.js';
import { tpmQuoteSchema } from '../tpm/attestation.js';
import { parsePublicIdentity, type PublicIdentity } from '../../../contract/identity/identity.js';
import { reshareAuthoritySchema } from '../../../contract/signer-rpc/authority.js';
import { authorize, sameParameters, signerAdmissionSchema, signerRemovalSchema, type Action, type Proposal } from '../../../policy/index.js';
import type { Peer } from '../config.js';
import { askedDetail, askedFor, markApplied, type AskedRecord } from './governance.js';
import { keyState } from './keys.js';
import { principalInput, requestCheck } from './registry.js';
import { ADMITTED, AWAITING_ACTIVATION, changeSealed, denied, firstIssue, json, RETIRED, saveLedger, type AdmissionState, type AwaitingActivation, type GuardState } from './state.js';

/**
 * Every signer admitted, at bootstrap or since, retired ones included; a party restored with a
 * new identity (guard/restore.ts) is admitted again under its id, and that admission wins.
 */
export function allPeers(s: GuardState): Peer[] {
  return [...s.self.peers.filter((p) => !s.admittedPeers.some((a) => a.id === p.id)), ...s.admittedPeers];
}

/** Party ids of the signers this one works with: admitted, not retired. */
function activePeers(s: GuardState): number[] {
  return allPeers(s).map((p) => p.id).filter((id) => !s.retiredIds.has(id)).sort((a, b) => a - b);
}

/** This signer's policy state, for a signer admitted here (and not retired since). */
export function admissionState(s: GuardState, name: string): AdmissionState {
  const peer = s.admittedPeers.find((p) => p.name === name);
  if (!peer || s.retiredIds.has(peer.id)) throw denied(`${name} is not a signer admitted by an approved AddSigner here`);
  return {
    registry: s.registry,
    chain: s.chain,
    keys: [...s.keys.values()].sort((a, b) => a.keyId.localeCompare(b.keyId)),
    aliases: s.aliases,
    retired: [...s.retiredIds].sort((a, b) => a - b),
    admitted: s.admittedPeers,
    ledger: s.ledger,
    revived: s.revived,
    awaiting: s.awaitingActivation.filter((a) => a.id !== peer.id),
  };
}

/**
 * Pins a new signer's identity under an approved AddSigner: from then on its envelopes are
 * opened and keys may be reshared to it. Names, party ids and identities are never reused.
 */
export async function admitSigner(s: GuardState, proposal: Proposal): Promise<string> {
  const r = signerAdmissionSchema.safeParse(proposal.parameters);
  if (!r.success) throw denied(`malformed signer admission in proposal ${proposal.id}: ${firstIssue(r.error)}`);
  let identity: PublicIdentity;
  try {
    identity = parsePublicIdentity(r.data.Identity);
  } catch (e) {
    throw denied(`proposal ${proposal.id}: ${(e as Error).message}`);
  }
  if (s.governance.requireAttestation)
    await checkRequiredAttestation(r.data.Name, identity, r.data.Attestation).catch((e: Error) => {
      throw denied(`proposal ${proposal.id}: ${e.message}`);
    });
  const clash = allPeers(s).find((p) => p.name === r.data.Name || p.id === r.data.Id || p.identity.signPublicKey === identity.signPublicKey || p.identity.kexPublicKey === identity.kexPublicKey);
  if (clash || s.retiredIds.has(r.data.Id)) throw denied(`signer ${r.data.Name} (party ${r.data.Id}) clashes with ${clash ? `signer ${clash.name}` : 'a retired signer'}: names, party ids and identities are never reused`);
  if (s.governance.requireAttestation) await awaitActivation(s, r.data.Id, r.data.Attestation);
  await changeSealed(s, ADMITTED, 'admittedPeers', (admitted) => [...admitted, { name: r.data.Name, id: r.data.Id, identity }]);
  return r.data.Name;
}

/** What this signer challenges party `id` with: the EK and AK its (verified) TPM quote `attestation` names. */
export function activationTarget(id: number, attestation: unknown): AwaitingActivation {
  const { ekPublic, akPublic } = tpmQuoteSchema.parse(attestation);
  return { id, ekPublic, akPublic };
}

/**
 * Party `id`, pinned with the (verified) TPM quote `attestation`, must answer this signer's
 * credential to its EK and AK (tpm/activation.ts) before it is sealed state or reshared keys.
 */
export function awaitActivation(s: GuardState, id: number, attestation: unknown): Promise<void> {
  const target = activationTarget(id, attestation);
  return changeSealed(s, AWAITING_ACTIVATION, 'awaitingActivation', (awaiting) => [...awaiting.filter((a) => a.id !== id), target]);
}

/** Signer `name` (founding or admitted, not retired) and its TPM's EK and AK, while it has not answered this signer's credential. */
export function awaitingActivation(s: GuardState, name: string): { peer: Peer; target: AwaitingActivation } | undefined {
  const peer = allPeers(s).find((p) => p.name === name && !s.retiredIds.has(p.id));
  const target = peer && s.awaitingActivation.find((a) => a.id === peer.id);
  return peer && target ? { peer, target } : undefined;
}

export function activated(s: GuardState, name: string): Promise<void> {
  const peer = allPeers(s).find((p) => p.name === name);
  return changeSealed(s, AWAITING_ACTIVATION, 'awaitingActivation', (awaiting) => awaiting.filter((a) => a.id !== peer?.id));
}

/** The names of the signers among `ids` whose TPM has not answered this signer's credential yet. */
function unproven(s: GuardState, ids: readonly number[]): string[] {
  return ids.filter((id) => s.awaitingActivation.some((a) => a.id === id)).map((id) => allPeers(s).find((p) => p.id === id)?.name ?? `party ${id}`);
}

/**
 * Refuses a session (key generation, signing) that includes a signer whose TPM has not answered
 * this signer's credential yet: its quote alone does not show its keys are in that TPM.
 */
export function checkProven(s: GuardState, ids: readonly number[]): void {
  const names = unproven(s, ids);
  if (names.length) throw denied(`this signer takes part in no session including ${names.join(', ')} before its TPM answered this signer's credential (require_attestation: credential activation)`);
}

/** Retires a signer under an approved RemoveSigner, if enough signers remain for the threshold. */
export async function retireSigner(s: GuardState, proposal: Proposal): Promise<string> {
  const r = signerRemovalSchema.safeParse(proposal.parameters);
  if (!r.success) throw denied(`malformed signer removal in proposal ${proposal.id}: ${firstIssue(r.error)}`);
  const peers = allPeers(s);
  const peer = peers.find((p) => p.name === r.data.Name);
  if (!peer) throw denied(`${r.data.Name} is not a signer of this cluster`);
  if (s.retiredIds.has(peer.id)) throw denied(`signer ${peer.name} is already retired`);
  const retired = [...s.retiredIds, peer.id].sort((a, b) => a - b);
  const remaining = peers.length - retired.length;
  if (remaining < s.self.threshold) throw denied(`removing ${peer.name} would leave ${remaining} signers, fewer than the threshold ${s.self.threshold}`);
  await s.store.put(RETIRED, json(retired));
  s.retiredIds = new Set(retired);
  return peer.name;
}

/**
 * A key is reshared at its threshold, to a set that keeps every old holder still active here
 * and adds only active signers: away from retired signers (after an approved removal), to the
 * same holders (a refresh: new shares, fresh ECDSA pairs), or to a signer admitted by an
 * approved AddSigner. Each of those changes was approved where it needed approval; anything
 * else (dropping an active holder, a stranger, another threshold) is refused here, whatever
 * the gateway says.
 */
export function checkReshare(s: GuardState, keyId: string, old: { participants: readonly number[]; threshold: number }, next: { participants: readonly number[]; threshold: number }): void {
  keyState(s, keyId);
  if (s.retiredIds.has(s.self.party)) throw denied('this signer is retired: it takes part in no resharing');
  const active = activePeers(s);
  const kept = old.participants.filter((id) => !s.retiredIds.has(id));
  const missing = kept.filter((id) => !next.participants.includes(id));
  if (missing.length) throw denied(`key ${keyId} keeps every active holder when reshared; ${missing.join(', ')} would be dropped without an approved removal`);
  const strangers = next.participants.filter((id) => !active.includes(id));
  if (strangers.length) throw denied(`key ${keyId} is reshared only to active signers of this cluster, not to ${strangers.join(', ')}`);
  const unanswered = unproven(s, next.participants);
  if (unanswered.length) throw denied(`key ${keyId} is not reshared to ${unanswered.join(', ')} before its TPM answered this signer's credential (require_attestation)`);
  if (next.threshold !== old.threshold) throw denied(`key ${keyId} keeps its threshold ${old.threshold} when reshared, not ${next.threshold}`);
}

/**
 * Authorises refreshing `keyId`'s shares among its holders: asked by the administrator whose
 * request verifies here, or approved, as the governance says. The request is spent here.
 * Answers who asked and who approved, for the audit entry.
 */
export async function authorizeRefresh(s: GuardState, keyId: string, raw: unknown): Promise<AskedRecord> {
  const op: Action = 'mpchsm:RefreshKeyShares';
  if (raw === undefined) throw denied(`a refresh of key ${keyId}'s shares needs an administrator's request; the request carries none`);
  const r = reshareAuthoritySchema.safeParse(raw);
  if (!r.success) throw denied(`malformed refresh authority: ${firstIssue(r.error)}`);
  const a = r.data;
  const { keyIdOf } = requestCheck(s);
  const named = typeof a.parameters.KeyId === 'string' ? keyIdOf(a.parameters.KeyId) : undefined;
  if (named !== keyId) throw denied(`the refresh names key ${String(named ?? 'none')}, not ${keyId}`);
  keyState(s, keyId);
  const now = Date.now();
  const { approved, principal, evidenceHash, request } = await askedFor(s, op, 'MpcHsm.RefreshKeyShares', a, sameParameters(a.parameters, keyIdOf), now);
  const d = authorize({ principal: principalInput(s, principal), operation: op, governance: s.governance, now, requestApproved: evidenceHash !== undefined, ...(approved ? { approval: approved.input } : {}) });
  if (!d.allowed) throw denied(d.reason);
  if (request) s.ledger.requests[request.replayId] = request.replayUntil;
  if (approved) await markApplied(s, approved.proposal, d.counters);
  else await saveLedger(s);
  const detail = askedDetail(approved?.proposal.id, evidenceHash);
  return { principal: { name: principal }, policy: { version: s.governance.version, approvals: d.approvedBy }, detail };
}
