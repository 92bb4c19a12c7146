// A principal's signed KMS request as evidence for a change it asks — a key or alias change, a
// key creation, a refresh of a key's shares — so that each signer changes nothing on the
// gateway's word (issue #16). The gateway forwards the administrator's original request (the
// same forwarded form as a Sign's: evidence.ts); each signer checks it here with the secret
// from its own registry: the SigV4 signature (evidence.ts checkSigV4), X-Amz-Target naming
// exactly this operation, and the body's parameters (null members dropped, as the gateway
// drops them) being exactly what is to be done. The principal is the one the signer's registry
// names for the access key, never one the gateway reports.
//
// Over PKCS#11 an administrator (CKU_SO) generates a key with C_GenerateKeyPair, and relabels
// one with C_SetAttributeValue (CKA_LABEL: a KMS alias); the module MACs the request's own
// arguments under the request key its PIN derives, as for C_Sign (evidence.ts), and the signer
// reads them itself: the key spec and usage from the templates (contract/pkcs11/keygen.ts) —
// evidence for CreateKey only — or the key and label — evidence for CreateAlias only.
//
// Freshness: the request's date must be within ±5 minutes of `now` — the signer's clock for a
// change applied at once, the proposal's creation time for the request that proposed it (a
// proposal is approved later; its own expiry bounds it). Replays are the caller's to refuse
// with `replayId` until `replayUntil`.
import { timingSafeEqual } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { z } from 'zod';
import { CKA, P11Error } from '../contract/pkcs11/ck.js';
import { keyPairRequested } from '../contract/pkcs11/keygen.js';
import { Abi, decodeValue, encodeValue, OP, type Value } from '../contract/pkcs11/wire.js';
import { toHex } from '../contract/bytes.js';
import { canonicalJson } from '../contract/canonical.js';
import { checkSigV4, forwardedRequest, hmacSha256, P11_REQUEST_LABEL, sigv4EvidenceSchema } from './evidence.js';
import { EVIDENCE_SKEW_MS, type SigV4CheckOptions } from './sigv4.js';

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

export interface PrincipalRequestOptions extends SigV4CheckOptions {
  /** The PKCS#11 request key the verifier holds for a principal (applications and administrators). */
  requestKeyFor: (principal: string) => Uint8Array | undefined;
  expect: RequestExpectation;
}

/** Verifies a principal's forwarded request — SigV4, or a PKCS#11 key generation — as evidence for `o.expect`. */
export async function verifyPrincipalRequest(evidence: unknown, o: PrincipalRequestOptions): Promise<PrincipalRequestResult> {
  if (evidence === undefined) return fail('the request carries no evidence that a principal asked for it');
  const kind = (evidence as { kind?: unknown }).kind;
  if (kind === 'p11-keygen') return verifyP11KeyGeneration(evidence, o);
  if (kind === 'p11-label') return verifyP11Relabel(evidence, o);
  const r = sigv4EvidenceSchema.safeParse(evidence);
  if (!r.success) return fail(`malformed request evidence: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
  const e = r.data;
  const c = await checkSigV4(forwardedRequest(e), o);
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
  /** The description and tags the signers keep (absent: not checked, as for a PKCS#11 key). */
  description?: string | undefined;
  tags?: readonly unknown[] | undefined;
}

/** A check that a CreateKey request asks for exactly this key (AWS's defaults for what it omits). */
export function createKeyRequestFor(k: KeyToCreate): RequestExpectation['check'] {
  return (p) => {
    const spec = p.KeySpec ?? p.CustomerMasterKeySpec ?? 'SYMMETRIC_DEFAULT';
    if (spec !== k.keySpec) return `it asks for a ${String(spec)} key, not ${k.keySpec}`;
    if ((p.KeyUsage ?? 'ENCRYPT_DECRYPT') !== k.keyUsage) return `it asks for key usage ${String(p.KeyUsage ?? 'ENCRYPT_DECRYPT')}, not ${k.keyUsage}`;
    if ((p.Origin ?? 'AWS_KMS') !== k.origin) return `it asks for origin ${String(p.Origin ?? 'AWS_KMS')}, not ${k.origin}`;
    if (p.Policy !== k.policy) return p.Policy === undefined ? 'it asks for the default key policy, not the one given' : 'it asks for another key policy';
    if (k.description !== undefined && (p.Description ?? '') !== k.description) return 'it asks for another description';
    if (k.tags !== undefined && canonicalJson(p.Tags ?? []) !== canonicalJson(k.tags)) return 'it asks for other tags';
    return undefined;
  };
}

// ---- PKCS#11 key generation ---------------------------------------------------------------

const hex = (min: number, max: number) => z.string().regex(new RegExp(`^(?:[0-9a-f]{2}){${min},${max}}$`));

/** A C_GenerateKeyPair as the gateway forwards it: the module's arguments as they came, and its MAC. */
export const p11KeygenEvidenceSchema = z.strictObject({
  kind: z.literal('p11-keygen'),
  principal: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/),
  /** The module's clock, ms since the epoch. */
  timestamp: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  nonce: hex(16, 16),
  mechanism: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** Each template wire-encoded (contract/pkcs11/wire.ts) as the module sent it. */
  publicTemplate: hex(5, 65536),
  privateTemplate: hex(5, 65536),
  /**
   * How the module's platform lays out CK_ULONG (wire.ts Abi): not under the MAC, and needed
   * only for CKA_MODULUS_BITS, which read in another layout is no valid RSA size.
   */
  abi: z.number().int().min(0).max(3),
  mac: hex(32, 32),
});
export type P11KeygenEvidence = z.infer<typeof p11KeygenEvidenceSchema>;

const templateSchema = z.array(z.tuple([z.number().int().nonnegative(), z.instanceof(Buffer)])).max(256);

/** A template as the module encoded it, if it is one, canonically encoded. */
function templateOf(hexText: string): { value: Value; attributes: Map<number, Buffer> } | undefined {
  const raw = Buffer.from(hexText, 'hex');
  try {
    const value = decodeValue(raw);
    const t = templateSchema.safeParse(value);
    return t.success && encodeValue(value).equals(raw) ? { value, attributes: new Map(t.data) } : undefined;
  } catch {
    return undefined;
  }
}

/** The bytes the module MACs: the label, the principal, time and nonce, then the request's own arguments. */
const keygenBytes = (e: Omit<P11KeygenEvidence, 'mac'>, pub: Value, priv: Value): Buffer =>
  encodeValue([Buffer.from(P11_REQUEST_LABEL), Buffer.from(e.principal), e.timestamp, Buffer.from(e.nonce, 'hex'), OP.GENERATE_KEY_PAIR, e.mechanism, pub, priv]);

const p11KeygenUnmacedSchema = p11KeygenEvidenceSchema.omit({ mac: true });

/** The module's side (tests play it): the MAC over a key generation. */
export function macP11KeygenRequest(request: Omit<P11KeygenEvidence, 'mac'>, requestKey: Uint8Array): P11KeygenEvidence {
  const r = p11KeygenUnmacedSchema.parse(request);
  const [pub, priv] = [templateOf(r.publicTemplate), templateOf(r.privateTemplate)];
  if (!pub || !priv) throw new Error('a template is not a wire-encoded attribute list');
  return { ...r, mac: toHex(hmacSha256(requestKey, keygenBytes(r, pub.value, priv.value))) };
}

function verifyP11KeyGeneration(evidence: unknown, o: PrincipalRequestOptions): PrincipalRequestResult {
  if (o.expect.target !== 'TrentService.CreateKey') return fail(`a PKCS#11 key generation is no evidence for ${o.expect.target}`);
  const r = p11KeygenEvidenceSchema.safeParse(evidence);
  if (!r.success) return fail(`malformed PKCS#11 key generation: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
  const e = r.data;
  const key = o.requestKeyFor(e.principal);
  if (!key) return fail(`PKCS#11 principal ${e.principal} is not enrolled at this signer`);
  const [pub, priv] = [templateOf(e.publicTemplate), templateOf(e.privateTemplate)];
  if (!pub || !priv) return fail('a template is not a wire-encoded attribute list');
  const mac = Buffer.from(hmacSha256(key, keygenBytes(e, pub.value, priv.value)));
  if (!timingSafeEqual(mac, Buffer.from(e.mac, 'hex'))) return fail(`the PKCS#11 request MAC of ${e.principal} does not verify`);
  if (Math.abs(o.now - e.timestamp) > EVIDENCE_SKEW_MS) return fail(`the request is dated more than 5 minutes from ${new Date(o.now).toISOString()}`);
  let asked: ReturnType<typeof keyPairRequested>;
  try {
    asked = keyPairRequested(e.mechanism, pub.attributes, priv.attributes, new Abi(e.abi));
  } catch (err) {
    if (err instanceof P11Error) return fail(`the key generation asks for no key mpchsm makes: ${err.message}`);
    throw err;
  }
  const bad = o.expect.check({ KeySpec: asked.keySpec, KeyUsage: asked.keyUsage });
  if (bad) return fail(`the signed request asks something else: ${bad}`);
  return proven(e);
}

/** A PKCS#11 administrator's request that verified: its principal, hash and replay window. */
const proven = (e: { principal: string; timestamp: number; nonce: string }): PrincipalRequestResult => ({
  ok: true,
  principal: e.principal,
  evidenceHash: toHex(sha256(new TextEncoder().encode(canonicalJson(e)))),
  replayId: `p11:${e.principal}:${e.nonce}`,
  replayUntil: e.timestamp + EVIDENCE_SKEW_MS + 1000,
});

// ---- PKCS#11 relabelling ------------------------------------------------------------------

/** A C_SetAttributeValue of a key's CKA_LABEL as the gateway forwards it: the object, the template as the module sent it, and its MAC. */
export const p11LabelEvidenceSchema = z.strictObject({
  kind: z.literal('p11-label'),
  principal: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/),
  timestamp: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  nonce: hex(16, 16),
  /** The module's object reference (k:<key id>:pub|priv). */
  object: z.string().regex(/^k:[0-9a-f-]{36}:(?:pub|priv)$/),
  template: hex(5, 65536),
  mac: hex(32, 32),
});
export type P11LabelEvidence = z.infer<typeof p11LabelEvidenceSchema>;

const labelBytes = (e: Omit<P11LabelEvidence, 'mac'>, template: Value): Buffer =>
  encodeValue([Buffer.from(P11_REQUEST_LABEL), Buffer.from(e.principal), e.timestamp, Buffer.from(e.nonce, 'hex'), OP.SET_ATTRIBUTES, Buffer.from(e.object), template]);

const p11LabelUnmacedSchema = p11LabelEvidenceSchema.omit({ mac: true });

/** The module's side (tests play it): the MAC over a relabelling. */
export function macP11LabelRequest(request: Omit<P11LabelEvidence, 'mac'>, requestKey: Uint8Array): P11LabelEvidence {
  const r = p11LabelUnmacedSchema.parse(request);
  const t = templateOf(r.template);
  if (!t) throw new Error('the template is not a wire-encoded attribute list');
  return { ...r, mac: toHex(hmacSha256(requestKey, labelBytes(r, t.value))) };
}

function verifyP11Relabel(evidence: unknown, o: PrincipalRequestOptions): PrincipalRequestResult {
  if (o.expect.target !== 'TrentService.CreateAlias') return fail(`a PKCS#11 relabelling is no evidence for ${o.expect.target}`);
  const r = p11LabelEvidenceSchema.safeParse(evidence);
  if (!r.success) return fail(`malformed PKCS#11 relabelling: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
  const e = r.data;
  const key = o.requestKeyFor(e.principal);
  if (!key) return fail(`PKCS#11 principal ${e.principal} is not enrolled at this signer`);
  const t = templateOf(e.template);
  if (!t) return fail('the template is not a wire-encoded attribute list');
  const mac = Buffer.from(hmacSha256(key, labelBytes(e, t.value)));
  if (!timingSafeEqual(mac, Buffer.from(e.mac, 'hex'))) return fail(`the PKCS#11 request MAC of ${e.principal} does not verify`);
  if (Math.abs(o.now - e.timestamp) > EVIDENCE_SKEW_MS) return fail(`the request is dated more than 5 minutes from ${new Date(o.now).toISOString()}`);
  // As the gateway reads it: CKA_LABEL entries only, the last one counting, the alias alias/<label>.
  const entries = [...(templateSchema.parse(t.value) as [number, Buffer][])];
  const label = entries.at(-1)?.[1];
  if (entries.some(([type]) => type !== CKA.LABEL) || !label?.length) return fail('the request sets no CKA_LABEL alone');
  const bad = o.expect.check({ AliasName: `alias/${label.toString('utf8')}`, TargetKeyId: e.object.split(':')[1]! });
  if (bad) return fail(`the signed request asks something else: ${bad}`);
  return proven(e);
}
