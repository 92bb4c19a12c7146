// A principal's signed KMS request as evidence for a change it asks — a key or alias change, a
// key creation, a refresh of a key's shares — so that each signer changes nothing on the
// gateway's word (issue #16). The gateway forwards the administrator's original request (the
// same forwarded form as a Sign's: evidence.ts); each signer checks it here with the secret
// from its own registry: the SigV4 signature (evidence.ts checkSigV4), X-Amz-Target naming
// exactly this operation, and the body's parameters (null members dropped, as the gateway
// drops them) being exactly what is to be done. The principal is the one the signer's registry
// names for the access key, never one the gateway reports.
//
// Freshness: the request's date must be within ±5 minutes of `now` — the signer's clock for a
// change applied at once, the proposal's creation time for the request that proposed it (a
// proposal is approved later; its own expiry bounds it). Replays are the caller's to refuse
// with `replayId` until `replayUntil`.
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex } from '../signers/protocols/common.js';
import { canonicalJson } from './canonical.js';
import { checkSigV4, EVIDENCE_SKEW_MS, sigv4EvidenceSchema, type SigV4CheckOptions } from './evidence.js';

/** What the request must ask. */
export interface RequestExpectation {
  /** X-Amz-Target: TrentService.<Operation>, or MpcHsm.RefreshKeyShares. */
  target: string;
  /** Why the request's parameters (its JSON body, null members dropped) are not what is to be done, if they are not. */
  check: (parameters: Record<string, unknown>) => string | undefined;
}

export type PrincipalRequestResult =
  | {
      ok: true;
      /** The principal the request authenticates, by the verifier's own registry. */
      principal: string;
      /** The request's SHA-256 (hex, over its canonical JSON form), for the audit entry. */
      evidenceHash: string;
      replayId: string;
      replayUntil: number;
    }
  | { ok: false; reason: string };

const fail = (reason: string): PrincipalRequestResult => ({ ok: false, reason });

/** Verifies a principal's forwarded SigV4 request as evidence for `o.expect`. */
export async function verifyPrincipalRequest(evidence: unknown, o: SigV4CheckOptions & { expect: RequestExpectation }): Promise<PrincipalRequestResult> {
  if (evidence === undefined) return fail('the request carries no evidence that a principal asked for it');
  const r = sigv4EvidenceSchema.safeParse(evidence);
  if (!r.success) return fail(`malformed request evidence: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
  const e = r.data;
  const c = await checkSigV4({ method: e.method, path: e.path, query: e.query, headers: e.headers, body: new Uint8Array(Buffer.from(e.body, 'base64')) }, o);
  if (!c.ok) return c;
  if (c.target !== o.expect.target) return fail(`the signed request is ${c.target ?? 'no operation'}, not ${o.expect.target}`);
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(c.body).toString('utf8'));
  } catch {
    return fail('the request body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return fail('the request body is not a JSON object');
  const parameters = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null));
  const bad = o.expect.check(parameters);
  if (bad) return fail(`the signed request asks something else: ${bad}`);
  return {
    ok: true,
    principal: c.principal,
    evidenceHash: toHex(sha256(new TextEncoder().encode(canonicalJson(e)))),
    replayId: `sigv4:${c.signature}`,
    replayUntil: c.signedAt + EVIDENCE_SKEW_MS + 1000,
  };
}

/**
 * A check that the request's parameters are exactly `expected`; a KeyId member is compared as
 * the key id `keyIdOf` resolves it to (a key ARN and its id name the same key).
 */
export function sameParameters(expected: Record<string, unknown>, keyIdOf: (ref: string) => string | undefined): RequestExpectation['check'] {
  const normal = (p: Record<string, unknown>) => (typeof p.KeyId === 'string' ? { ...p, KeyId: keyIdOf(p.KeyId) ?? p.KeyId } : p);
  const want = canonicalJson(normal(expected));
  return (got) => {
    let text: string;
    try {
      text = canonicalJson(normal(got));
    } catch (e) {
      return (e as Error).message;
    }
    return text === want ? undefined : `its parameters ${text.slice(0, 512)} are not ${want.slice(0, 512)}`;
  };
}

/** What a key creation makes, as each signer is asked to make it. */
export interface KeyToCreate {
  keySpec: string;
  keyUsage: string;
  origin: string;
  /** The key policy asked for; absent: the default one. */
  policy?: string | undefined;
}

/** A check that a CreateKey request asks for exactly this key (AWS's defaults for what it omits). */
export function createKeyRequestFor(k: KeyToCreate): RequestExpectation['check'] {
  return (p) => {
    const spec = p.KeySpec ?? p.CustomerMasterKeySpec ?? 'SYMMETRIC_DEFAULT';
    if (spec !== k.keySpec) return `it asks for a ${String(spec)} key, not ${k.keySpec}`;
    if ((p.KeyUsage ?? 'ENCRYPT_DECRYPT') !== k.keyUsage) return `it asks for key usage ${String(p.KeyUsage ?? 'ENCRYPT_DECRYPT')}, not ${k.keyUsage}`;
    if ((p.Origin ?? 'AWS_KMS') !== k.origin) return `it asks for origin ${String(p.Origin ?? 'AWS_KMS')}, not ${k.origin}`;
    if (p.Policy !== k.policy) return p.Policy === undefined ? 'it asks for the default key policy, not the one given' : 'it asks for another key policy';
    return undefined;
  };
}
