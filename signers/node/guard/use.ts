// Sign and Decrypt. Before any share is used, the client's original request (evidence) verifies
// with the principal's secret or PIN key, names this key and exactly this message or ciphertext,
// is fresh and not used before; `authorize` (policy/evaluate.ts) allows it under this signer's key
// policy and governance, per-signature approvals included; the rate limit allows it; and the
// protocol's own request is exactly the client's. A byte-identical request within its ±5 minutes
// is a repeat (released again, spending nothing again: signers/node/replay-ledger.ts).
import { sha512 } from '@noble/hashes/sha2.js';
import { fromHex, toHex } from '../../../contract/bytes.js';
import { ALGORITHM_INFO, HASHES, isClusterSigningAlgorithm, isSigningAlgorithm, RSA_PKCS1_RAW } from '../../../contract/keys/specs.js';
import { useSchema, type Use } from '../../../contract/signer-rpc/authority.js';
import { digestHex } from '../../../contract/signer-rpc/released.js';
import { authorize, keyUseProblem, messageDigestFor, takeToken, verifyEvidence, type BucketState, type CounterUse, type SymmetricOperation } from '../../../policy/index.js';
import type { RsaRequest } from '../../protocols/rsa/request.js';
import { RpcError } from '../rpc.js';
import { commitKey, keyInput, keyState, resolveKey } from './keys.js';
import { principalInput, requestCheck } from './registry.js';
import { checkCounters, denied, evidenceHashOf, firstIssue, recordCounters, saveLedger, type GuardState, type KeyState } from './state.js';

const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/** What a request this signer authorised spends when its output is released (`release`): its replay id. */
export interface AccountSpend {
  principal: string;
  operation: UseRecord['operation'];
  /** The client's request, as forwarded (its hash goes to the audit entry). */
  evidence: unknown;
  replayId: string;
  replayUntil: number;
  approvedBy: string[];
  governanceVersion: number;
}

/** What a use of a key spends beside: a rate-limit token, per-signature approvals; and what it records. */
export interface Spend extends AccountSpend {
  keyId: string;
  /** The key as the client named it in the evidence. */
  keyRef: string;
  /** What the audit names by its SHA-256: the message, the ciphertext, or (symmetric keys) the client's request. */
  payload: Uint8Array;
  nonces: { nonce: string; expiresAt: number }[];
  /** WebAuthn signature counters the approvals carried, recorded with their nonces. */
  counters: CounterUse[];
}

/** A Sign/Decrypt this signer has authorised, until its output is released. */
export interface UseGrant extends Spend {
  use: Use;
}

/** What a release adds to the signer's audit entry: who asked, for what, and who approved. */
export interface UseRecord {
  operation: Use['operation'] | SymmetricOperation | 'GenerateRandom';
  principal: { name: string };
  /** The key as the client named it; none for an account operation. */
  keyRef?: string;
  /** SHA-256 of the Message or CiphertextBlob (a symmetric key's: of the PRF input), as the gateway records it too. */
  digest?: string;
  evidenceHash: string;
  policy: { version: number; approvals: string[] };
  /** A repeat of a request released before (served again, spending nothing). */
  detail?: { repeat: true };
}

/**
 * Authorises a Sign or Decrypt with `keyId` from the evidence the gateway forwarded. Nothing
 * is consumed yet: `release` does that when the output leaves.
 */
export async function authorizeUse(s: GuardState, keyId: string, raw: unknown): Promise<UseGrant> {
  if (raw === undefined) throw denied('the request carries no evidence that a principal asked for it');
  const parsed = useSchema.safeParse(raw);
  if (!parsed.success) throw denied(`malformed request evidence: ${firstIssue(parsed.error)}`);
  const u = parsed.data;
  const key = keyState(s, keyId);
  if (key.state !== 'Enabled') throw new RpcError(403, 'invalid-state', `key ${keyId} is ${key.state === 'Disabled' ? 'disabled' : 'pending deletion'} at this signer`);
  const misuse = keyUseProblem(key, u.operation, u.algorithm);
  if (misuse) throw new RpcError(403, 'invalid-usage', misuse);
  const now = Date.now();
  const payload = fromB64(u.payload);
  const ev = await verifyEvidence(u.evidence, {
    ...requestCheck(s),
    expect: { operation: u.operation, keyId, resolveKey: (ref) => resolveKey(s, ref), keySpec: key.keySpec, algorithm: u.algorithm, payload, ...(u.messageType ? { messageType: u.messageType } : {}) },
    now,
    seen: new Set(),
  });
  if (!ev.ok) throw denied(ev.reason);
  const prior = s.replays.get(ev.replayId, now);

  let digest: string | undefined;
  if (u.operation === 'Sign') {
    if (!isClusterSigningAlgorithm(u.algorithm)) throw denied(`unknown signing algorithm ${u.algorithm}`);
    try {
      digest = messageDigestFor(u.algorithm, u.messageType ?? 'RAW', payload);
    } catch (e) {
      throw denied((e as Error).message);
    }
  }
  // Nonces this same request consumed at its first release are not a reuse on a repeat.
  const usedNonces = new Set(Object.keys(s.ledger.nonces).filter((n) => !prior?.nonces.includes(n)));
  const d = authorize({
    principal: principalInput(s, ev.principal),
    operation: `kms:${u.operation}`,
    key: keyInput(s, key),
    context: { algorithm: u.algorithm, ...(u.messageType ? { messageType: u.messageType } : {}), ...(digest ? { digest } : {}) },
    governance: s.governance,
    now,
    signApprovals: { approvals: u.signApprovals ?? [], usedNonces, counters: s.ledger.webauthn ?? {} },
  });
  if (!d.allowed) throw denied(d.reason);
  if (!prior) rateLimit(s, key, now, false);
  return {
    keyId,
    keyRef: ev.keyRef,
    principal: ev.principal,
    operation: u.operation,
    evidence: u.evidence,
    use: u,
    payload,
    replayId: ev.replayId,
    replayUntil: ev.replayUntil,
    nonces: d.consumeNonces,
    counters: d.counters ?? [],
    approvedBy: d.approvedBy,
    governanceVersion: s.governance.version,
  };
}

/**
 * Consumes what an authorised request spends — its replay id, and for a key's use its
 * per-signature approval nonces (sealed) and a rate-limit token — durably, immediately before its
 * output leaves this signer. A repeat of a request released before spends nothing again.
 */
export async function release(s: GuardState, g: Spend | AccountSpend, fingerprint: string): Promise<UseRecord> {
  const now = Date.now();
  const use = 'keyId' in g ? g : undefined;
  const prior = s.replays.get(g.replayId, now);
  if (!prior) {
    const nonces = use?.nonces ?? [];
    for (const n of nonces) if (s.ledger.nonces[n.nonce] !== undefined) throw denied(`a signature approval (nonce ${n.nonce}) was already used`);
    const counters = use?.counters ?? [];
    checkCounters(s, counters);
    const bucket = use && rateLimit(s, keyState(s, use.keyId), now, true);
    for (const n of nonces) s.ledger.nonces[n.nonce] = n.expiresAt;
    recordCounters(s, counters);
    await Promise.all([
      s.replays.record(g.replayId, { fingerprint, until: g.replayUntil, nonces: nonces.map((n) => n.nonce) }, use && bucket && { keyId: use.keyId, state: bucket }),
      nonces.length || counters.length ? saveLedger(s) : undefined,
    ]);
  }
  if (use) {
    s.used.add(use.keyId);
    // A key's first use commits it (guard/keys.ts): a key that released anything is never forgotten.
    if (s.keys.get(use.keyId)?.pending) await commitKey(s, use.keyId);
  }
  return {
    operation: g.operation,
    principal: { name: g.principal },
    ...(use && { keyRef: use.keyRef, digest: digestHex(use.payload) }),
    evidenceHash: evidenceHashOf(g.evidence),
    policy: { version: g.governanceVersion, approvals: g.approvedBy },
    ...(prior ? { detail: { repeat: true } } : {}),
  };
}

/** Refuses a use the key's rate limit does not allow now; answers the bucket a use would leave. */
export function rateLimit(s: GuardState, k: KeyState, now: number, take: boolean): BucketState | undefined {
  const limit = keyInput(s, k).policy.mpchsm?.rateLimit;
  if (!limit) return undefined;
  const r = takeToken(limit, s.replays.bucket(k.keyId), now);
  if (!r.allowed) throw denied(`key ${k.keyId} allows ${limit.perMinute} uses per minute; retry in ${Math.ceil(r.retryAfterMs / 1000)} s`);
  return take ? r.state : undefined;
}

/** The FROST signing package must sign exactly what the client asked. */
export function expectFrost(g: UseGrant, suite: string, messageHex: string): void {
  const alg = g.use.algorithm;
  const expected =
    alg === 'ED25519_SHA_512' ? { suite: 'ed25519', message: g.payload }
    : alg === 'ED25519_PH_SHA_512' ? { suite: 'ed25519ph', message: (g.use.messageType ?? 'RAW') === 'RAW' ? sha512(g.payload) : g.payload }
    : undefined;
  if (!expected) throw denied(`${alg} is not an Ed25519 signing algorithm`);
  if (suite !== expected.suite || messageHex !== toHex(expected.message)) throw denied('the signing package is not for the message and algorithm the client asked for');
}

/** The RSA request must be exactly the client's: digest and scheme, or ciphertext and padding. */
export function expectRsa(g: UseGrant, r: RsaRequest): void {
  if (g.use.operation === 'Sign') {
    if (r.op !== 'sign' || !isClusterSigningAlgorithm(g.use.algorithm)) throw denied('the client asked for a signature, not this');
    if (g.use.algorithm === RSA_PKCS1_RAW) {
      // PKCS#11's raw CKM_RSA_PKCS: the type-1 block carries exactly the client's bytes.
      if (r.scheme !== 'pkcs1v15' || r.hash !== 'none' || r.digest !== toHex(g.payload)) throw denied('the RSA request does not sign the bytes the client asked for');
      return;
    }
    const info = ALGORITHM_INFO[g.use.algorithm];
    const scheme = info.scheme === 'RSASSA_PSS' ? 'pss' : info.scheme === 'RSASSA_PKCS1_V1_5' ? 'pkcs1v15' : undefined;
    const digest = (g.use.messageType ?? 'RAW') === 'RAW' ? HASHES[info.hash](g.payload) : g.payload;
    if (r.scheme !== scheme || r.hash !== info.hash.replace('SHA-', 'sha') || r.digest !== toHex(digest)) throw denied('the RSA request does not sign the digest the client asked for');
    return;
  }
  const padding = ({ RSAES_OAEP_SHA_1: 'oaep-sha1', RSAES_OAEP_SHA_256: 'oaep-sha256', RSAES_PKCS1_V1_5: 'pkcs1v15' } as Record<string, string>)[g.use.algorithm];
  if (r.op !== 'decrypt' || r.padding !== padding || r.label !== undefined || r.ciphertext !== toHex(g.payload)) throw denied('the RSA request does not decrypt the ciphertext the client asked for');
}

/** A signature digest (ECDSA) must be the hash of the client's message, or its digest. */
export function expectDigest(g: UseGrant, digestHex: string): void {
  const alg = g.use.algorithm;
  if (g.use.operation !== 'Sign' || !isSigningAlgorithm(alg) || ALGORITHM_INFO[alg].scheme !== 'ECDSA') throw denied(`${alg} is not an ECDSA signing algorithm`);
  const digest = (g.use.messageType ?? 'RAW') === 'RAW' ? HASHES[ALGORITHM_INFO[alg].hash](g.payload) : g.payload;
  if (digestHex !== toHex(digest)) throw denied('the signing request is not for the digest the client asked for');
}

/** Names an RSA partial's output: its input, so the same partial may be released again. */
export const rsaFingerprint = (r: RsaRequest): string => `rsa:${digestHex(fromHex(r.op === 'sign' ? r.representative : r.ciphertext))}`;
