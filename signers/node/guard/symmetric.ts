// Symmetric keys' uses (Encrypt, Decrypt, ReEncrypt, GenerateDataKey*): the gateway names only
// the key, the material and which of the request's evaluations it wants; everything else —
// the blob header, the nonce, the encryption context, hence the PRF input — this signer reads
// from the client's signed request itself (policy/symmetric-evidence.ts). Then, as for Sign:
// the key is Enabled here and a SYMMETRIC_DEFAULT key, the request names it by this signer's own
// tables, `authorize` allows the request's action under this signer's key policy, the rate
// limit allows it, and the request is spent when the partial leaves (use.ts `release`).
import { canonicalJson } from '../../../contract/canonical.js';
import { digestHex } from '../../../contract/signer-rpc/released.js';
import { SYMMETRIC_KEY_SPEC } from '../../../contract/keys/specs.js';
import { authorize, evaluationInput, verifySymmetricEvidence, type SymmetricOperation } from '../../../policy/index.js';
import { RpcError } from '../rpc.js';
import { keyInput, keyState, resolveKey } from './keys.js';
import { principalInput, requestCheck } from './registry.js';
import { denied, type GuardState } from './state.js';
import { rateLimit, type Spend } from './use.js';

/** A symmetric evaluation this signer authorised: the PRF input it derived, and what releasing it spends. */
export interface SymmetricGrant extends Spend {
  operation: SymmetricOperation;
  material: number;
  input: Uint8Array;
}

export async function authorizeSymmetric(s: GuardState, req: { keyId: string; material: number; evaluation: number; evidence: unknown }): Promise<SymmetricGrant> {
  if (req.evidence === undefined) throw denied('the request carries no evidence that a principal asked for it');
  const key = keyState(s, req.keyId);
  if (key.state !== 'Enabled') throw new RpcError(403, 'invalid-state', `key ${req.keyId} is ${key.state === 'Disabled' ? 'disabled' : 'pending deletion'} at this signer`);
  if (key.keySpec !== SYMMETRIC_KEY_SPEC || key.keyUsage !== 'ENCRYPT_DECRYPT') throw new RpcError(403, 'invalid-usage', `key ${req.keyId} is a ${key.keySpec} key, not a symmetric one`);
  const now = Date.now();
  const ev = await verifySymmetricEvidence(req.evidence, { ...requestCheck(s), now });
  if (!ev.ok) throw denied(ev.reason);
  const e = ev.evaluations[req.evaluation];
  if (!e) throw denied(`the ${ev.operation} request asks for ${ev.evaluations.length} evaluation(s), not #${req.evaluation}`);
  if (e.kind === 'open') {
    if (e.header.keyId !== req.keyId) throw denied(`the ciphertext is of key ${e.header.keyId}, not this key`);
    if (e.keyRef !== undefined && resolveKey(s, e.keyRef) !== req.keyId) throw denied(`the request names key ${JSON.stringify(e.keyRef.slice(0, 300))}, not the ciphertext's key`);
  } else if (resolveKey(s, e.keyRef) !== req.keyId) {
    throw denied(`the request names key ${JSON.stringify(e.keyRef.slice(0, 300))}, not this key`);
  }
  // Sealing may use any material this signer holds (tprf.ts loads it): the newest is the
  // gateway's choice, as rotation happens on its word; opening, only the blob's.
  const material = e.kind === 'open' ? e.header.material : req.material;
  if (material !== req.material) throw denied(`the request opens a blob of material ${material} of this key, not ${req.material}`);
  const d = authorize({ principal: principalInput(s, ev.principal), operation: e.action, key: keyInput(s, key), context: { algorithm: 'SYMMETRIC_DEFAULT' }, governance: s.governance, now });
  if (!d.allowed) throw denied(d.reason);
  // ReEncrypt's two evaluations are two uses of one signed request, each spent once.
  const replayId = ev.evaluations.length > 1 ? `${ev.replayId}#${req.evaluation}` : ev.replayId;
  const input = evaluationInput(e, req.keyId, material);
  const prior = s.replays.get(replayId, now);
  // A repeat is the same evaluation again: a sealing request repeated with another material would be another output.
  if (prior && prior.fingerprint !== symmetricFingerprint(input)) throw denied('this signed request was already used for another evaluation (replay)');
  if (!prior) rateLimit(s, key, now, false);
  return {
    keyId: req.keyId,
    keyRef: e.keyRef ?? req.keyId,
    principal: ev.principal,
    operation: ev.operation,
    evidence: req.evidence,
    // The audit names the whole request (ReEncrypt's two evaluations, one request), as the gateway does.
    payload: new TextEncoder().encode(canonicalJson(req.evidence)),
    input,
    material,
    replayId,
    replayUntil: ev.replayUntil,
    nonces: [],
    counters: [],
    approvedBy: d.approvedBy,
    governanceVersion: s.governance.version,
  };
}

/** What a release records for a repeat to be compared with: the evaluation's input. */
export const symmetricFingerprint = (input: Uint8Array): string => `tprf:${digestHex(input)}`;

/**
 * A rotation (a new material by DKG) comes on the gateway's word, as EnableKey does: it only adds
 * material, so it can neither decrypt anything nor lose a ciphertext. The key must be a
 * committed, Enabled symmetric key here.
 */
export function checkRotation(s: GuardState, keyId: string): void {
  const key = keyState(s, keyId);
  if (key.keySpec !== SYMMETRIC_KEY_SPEC) throw new RpcError(403, 'invalid-usage', `key ${keyId} is a ${key.keySpec} key: only symmetric keys rotate`);
  if (key.state !== 'Enabled' || key.pending) throw new RpcError(403, 'invalid-state', `key ${keyId} is ${key.pending ? 'not committed' : key.state} at this signer`);
}
