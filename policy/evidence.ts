// Request evidence: what lets each signer decide for itself that a Sign or Decrypt was asked
// for by a principal the key's policy allows, so that a compromised gateway alone cannot get
// a signature. The gateway forwards the evidence with every signing request; each signer
// verifies it with this module, maps the principal to its own registry entry, runs
// `authorize` (evaluate.ts) with its own copy of the key policy and governance, and signs
// only what the evidence says.
//
// KMS (SigV4). The evidence is the client's original HTTP request — method, path, query,
// headers, body — exactly as received. SigV4 is an HMAC under the principal's secret access
// key, so each signer keeps the application secrets itself: they are registered at every
// signer by the mpchsm:AddPrincipal operation, under administrator quorum, never taken from
// the gateway. The signer verifies the signature (sigv4.ts: recomputed with @smithy/signature-v4,
// credential scope of this region and kms, X-Amz-Date within ±5 minutes) and checks that
// host, x-amz-date and x-amz-target are signed, that X-Amz-Target is
// TrentService.<operation> (a signed Verify is not evidence for a Sign), that the body's
// KeyId resolves, by the signer's own alias table, to this key (policy/key-refs.ts), that the body's
// algorithm, MessageType and Message (or CiphertextBlob) are exactly what it is asked to
// process, and that the signature was not used before (caller's seen-set, kept for the
// window). SigV4 is a shared-secret MAC, so whoever holds the secret can mint evidence: the
// gateway holds no application secret (gateway/principals.ts), and one added later reaches the
// signers sealed to each of them by the proposing administrator's tool (membership.ts).
//
// PKCS#11. There is no SigV4, and the module (loaded into arbitrary client processes) holds no
// long-term secret and does no cryptography beyond hashing. So the PIN stands for keys derived
// by hashing alone: master = PBKDF2-HMAC-SHA256(PIN, the cluster's salt), a login key and a
// request key HMAC'd from it (derivePinKeys). The module derives them at C_Login (parameters
// fetched from the gateway: a lying gateway only makes the keys wrong) and sends the gateway
// only the login key, which it recognises by its hash — the PIN and the request key never
// reach the gateway. The request key is an application's second secret, registered at every
// signer with its SigV4 secret (mpchsm:AddPrincipal, under quorum, sealed to each signer). Every
// C_Sign/C_Decrypt carries the module's HMAC, under the request key, of the request's own
// arguments (key reference, mechanism and parameters, data or digest) with the principal, a
// timestamp and a nonce. Each signer recomputes it, applies the same ±5 minute freshness,
// reads what the request asks for with the gateway's mechanism table (contract/pkcs11/mechanisms.ts)
// — not with the gateway's reading of it — and requires exactly that key, algorithm and
// payload, refusing a nonce seen before.
import { createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { z } from 'zod';
import { isKeySpec, kmsSigningMessage } from '../contract/keys/specs.js';
import { planDecryption, planSignature } from '../contract/pkcs11/mechanisms.js';
import { decodeValue, encodeValue, OP, type Value } from '../contract/pkcs11/wire.js';
import { fromHex, toHex } from '../contract/bytes.js';
import { EVIDENCE_SKEW_MS, SigV4Error, verifySigV4, type ForwardedHttpRequest, type SigV4CheckOptions } from './sigv4.js';

/** admin-evidence.ts takes these from here. */

/** What the signer is asked to do; the evidence must say exactly this. */
export interface EvidenceExpectation {
  operation: 'Sign' | 'Decrypt';
  /** The key asked for: the request's own key reference must name it, by the signer's own tables. */
  keyId: string;
  /** The key id a client's reference names at this signer (policy/key-refs.ts), if any. */
  resolveKey: (ref: string) => string | undefined;
  /** The key's spec: how a PKCS#11 mechanism applies to it. */
  keySpec: string;
  /** SigningAlgorithm (Sign) or EncryptionAlgorithm (Decrypt). */
  algorithm: string;
  /** Sign: the Message bytes; Decrypt: the CiphertextBlob bytes. */
  payload: Uint8Array;
  /** Sign only; KMS's default is RAW. */
  messageType?: 'RAW' | 'DIGEST';
}

export type EvidenceResult =
  | {
      ok: true;
      /** The principal the request authenticates, by the signer's own registry. */
      principal: string;
      /** The key as the request names it (SigV4: the body's KeyId; PKCS#11: the key ref). */
      keyRef: string;
      /** Record in the seen-set until `replayUntil` (ms); later the date check refuses it. */
      replayId: string;
      replayUntil: number;
    }
  | { ok: false; reason: string };

const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

/** The body fields the evidence asserts, compared with the expectation. */
function mismatch(found: { keyRef?: string; algorithm?: string; messageType?: string; payload: Uint8Array }, expect: EvidenceExpectation): string | undefined {
  if (found.keyRef === undefined || expect.resolveKey(found.keyRef) !== expect.keyId) return `the request names key ${JSON.stringify(found.keyRef?.slice(0, 300) ?? null)}, not this key`;
  if (found.algorithm !== expect.algorithm) return `the request asks for algorithm ${found.algorithm ?? 'none'}, not ${expect.algorithm}`;
  if (expect.operation === 'Sign' && (found.messageType ?? 'RAW') !== (expect.messageType ?? 'RAW'))
    return `the request's MessageType is ${found.messageType ?? 'RAW'}, not ${expect.messageType ?? 'RAW'}`;
  const a = Buffer.from(found.payload);
  const b = Buffer.from(expect.payload);
  if (a.length !== b.length || !timingSafeEqual(a, b))
    return expect.operation === 'Sign' ? 'the request signs a different message' : 'the request decrypts a different ciphertext';
  return undefined;
}

// ---- SigV4 --------------------------------------------------------------------------------

const base64 = z.string().regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'base64');
const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/** Wire form of SigV4 evidence (body base64), as the gateway forwards it. */
export const sigv4EvidenceSchema = z.strictObject({
  kind: z.literal('sigv4'),
  method: z.string().max(16),
  path: z.string().max(2048),
  query: z.record(z.string(), z.union([z.string(), z.array(z.string())])).optional(),
  headers: z.record(z.string(), z.union([z.string().max(8192), z.array(z.string().max(8192)).max(16)])),
  body: base64.max(1 << 20),
});

const signBodySchema = z.object({
  KeyId: z.string(),
  Message: base64,
  MessageType: z.enum(['RAW', 'DIGEST']).optional(),
  SigningAlgorithm: z.string(),
  DryRun: z.boolean().optional(),
});
const decryptBodySchema = z.object({
  KeyId: z.string().optional(),
  CiphertextBlob: base64,
  EncryptionAlgorithm: z.string().optional(),
  DryRun: z.boolean().optional(),
});

/** A forwarded request whose SigV4 signature verified: who signed it, when, and what it asks. */
export type SigV4Check =
  | { ok: true; principal: string; signature: string; signedAt: number; target: string | undefined; body: Uint8Array }
  | { ok: false; reason: string };

/** What an evidence check says of each SigV4 refusal (sigv4.ts says it as AWS does). */
function sigv4Reason(e: SigV4Error, o: SigV4CheckOptions): string {
  switch (e.code) {
    case 'authorization':
      return 'the request carries no single well-formed AWS4-HMAC-SHA256 Authorization header';
    case 'credential':
      return 'malformed credential scope';
    case 'temporary-credentials':
      return 'temporary (STS) credentials are not mpchsm principals';
    case 'unknown-key':
      return `access key ${e.subject} is not registered at this signer`;
    case 'scope':
      return `the credential scope is ${e.subject}, not ${o.region}/kms`;
    case 'date':
      return 'X-Amz-Date is missing, malformed or not the credential scope date';
    case 'skew':
      return `the request was signed at ${e.subject}, more than 5 minutes from ${new Date(o.now).toISOString()}`;
    case 'unsigned-header':
      return `the ${e.subject} header is not signed`;
    case 'body-hash':
      return 'x-amz-content-sha256 does not match the body';
    case 'absent-header':
      return `signed header ${e.subject} is absent`;
    case 'signature':
      return 'the SigV4 signature does not verify';
  }
}

/**
 * The SigV4 check every kind of request evidence shares (a Sign or Decrypt here, an
 * administrator's change in admin-evidence.ts): sigv4.ts's, with x-amz-target signed too.
 */
export async function checkSigV4(req: ForwardedHttpRequest, o: SigV4CheckOptions): Promise<SigV4Check> {
  try {
    const v = await verifySigV4(req, o, ['x-amz-target']);
    return { ok: true, principal: v.principal, signature: v.signature, signedAt: v.signedAt, target: v.signed['x-amz-target'], body: req.body };
  } catch (e) {
    if (e instanceof SigV4Error) return fail(sigv4Reason(e, o));
    throw e;
  }
}

/** A client's KMS request, forwarded as SigV4 evidence, whose signature verified: who asked for which operation, with which JSON body, and how long its replay id stays spent. */
export type KmsRequestCheck =
  | { ok: true; principal: string; signature: string; target: string | undefined; body: unknown; replayId: string; replayUntil: number }
  | { ok: false; reason: string };

/** The check a signer makes of any forwarded KMS request (symmetric keys' uses, GenerateRandom): checkSigV4's, and a JSON body. */
export async function checkKmsRequest(evidence: unknown, o: SigV4CheckOptions): Promise<KmsRequestCheck> {
  const e = sigv4EvidenceSchema.safeParse(evidence);
  if (!e.success) return fail(`malformed evidence (a signed KMS API request is needed): ${e.error.issues[0]?.path.join('.')}: ${e.error.issues[0]?.message}`);
  const c = await checkSigV4(forwardedRequest(e.data), o);
  if (!c.ok) return c;
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(c.body).toString('utf8'));
  } catch {
    return fail('the request body is not JSON');
  }
  return { ok: true, principal: c.principal, signature: c.signature, target: c.target, body, replayId: `sigv4:${c.signature}`, replayUntil: c.signedAt + EVIDENCE_SKEW_MS + 1000 };
}

export interface SigV4EvidenceOptions extends SigV4CheckOptions {
  expect: EvidenceExpectation;
  /** replayIds already accepted (and not yet past their replayUntil). */
  seen: ReadonlySet<string>;
}

/** Verifies a client's SigV4-signed KMS request, forwarded by the gateway. */
export async function verifySigV4Request(req: ForwardedHttpRequest, o: SigV4EvidenceOptions): Promise<EvidenceResult> {
  const c = await checkSigV4(req, o);
  if (!c.ok) return c;
  const replayId = `sigv4:${c.signature}`;
  if (o.seen.has(replayId)) return fail('this signed request was already used (replay)');

  const op = o.expect.operation;
  if (c.target !== `TrentService.${op}`) return fail(`the signed request is ${c.target}, not TrentService.${op}`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(c.body).toString('utf8'));
  } catch {
    return fail('the request body is not JSON');
  }
  let found: Parameters<typeof mismatch>[0];
  if (op === 'Sign') {
    const b = signBodySchema.safeParse(json);
    if (!b.success) return fail(`the Sign request body is malformed: ${b.error.issues[0]?.path.join('.')}`);
    if (b.data.DryRun) return fail('the request is a dry run');
    const { KeyId: keyRef, SigningAlgorithm: algorithm, MessageType: messageType } = b.data;
    found = { keyRef, algorithm, messageType, payload: kmsSigningMessage(algorithm, messageType, fromB64(b.data.Message)) };
  } else {
    const b = decryptBodySchema.safeParse(json);
    if (!b.success) return fail(`the Decrypt request body is malformed: ${b.error.issues[0]?.path.join('.')}`);
    if (b.data.DryRun) return fail('the request is a dry run');
    found = { keyRef: b.data.KeyId, algorithm: b.data.EncryptionAlgorithm, payload: fromB64(b.data.CiphertextBlob) };
  }
  const bad = mismatch(found, o.expect);
  if (bad) return fail(bad);
  return { ok: true, principal: c.principal, keyRef: found.keyRef!, replayId, replayUntil: c.signedAt + EVIDENCE_SKEW_MS + 1000 };
}

// ---- PKCS#11 ------------------------------------------------------------------------------

export const pinKdfSchema = z.strictObject({
  salt: z.string().regex(/^(?:[0-9a-f]{2}){16,64}$/, '16 to 64 bytes, lower-case hex'),
  iterations: z.number().int().min(1000).max(10_000_000),
});
export type PinKdf = z.infer<typeof pinKdfSchema>;
/** PBKDF2 rounds for a new cluster: a PIN is 72 random bits, so the stretch need not be long. */
export const DEFAULT_PIN_ITERATIONS = 20_000;

const LOGIN_LABEL = 'mpchsm-p11-login-v1';
/** What the module's request MACs start with (pkcs11-shim/src/remote/auth.c): C_Sign, C_Decrypt, C_GenerateKeyPair. */
export const P11_REQUEST_LABEL = 'mpchsm-p11-request-v1';
export const hmacSha256 = (key: Uint8Array, data: Uint8Array | string) => new Uint8Array(createHmac('sha256', key).update(data).digest());

/**
 * The two keys a PIN stands for (the module computes the same, pkcs11-shim/src/base/hmac.c):
 * master = PBKDF2-HMAC-SHA256(PIN, salt, iterations, 32); the login key (the gateway's check at
 * C_Login) and the request key (the signers' check of each Sign/Decrypt) are HMACs of labels
 * under it, so holding one tells nothing of the other. Wipe both after use.
 */
export function derivePinKeys(pin: string, kdf: PinKdf): { loginKey: Uint8Array; requestKey: Uint8Array } {
  const k = pinKdfSchema.parse(kdf);
  const master = pbkdf2Sync(pin, fromHex(k.salt), k.iterations, 32, 'sha256');
  try {
    return { loginKey: hmacSha256(master, LOGIN_LABEL), requestKey: hmacSha256(master, P11_REQUEST_LABEL) };
  } finally {
    master.fill(0);
  }
}

/** What the gateway keeps to recognise a login key: its SHA-256. */
export const loginKeyHash = (loginKey: Uint8Array): string => toHex(sha256(loginKey));

const hex = (min: number, max: number) => z.string().regex(new RegExp(`^(?:[0-9a-f]{2}){${min},${max}}$`));

/**
 * The module's C_Sign/C_Decrypt request as the gateway forwards it: the arguments exactly as
 * the module sent them, and its MAC under the request key.
 */
export const p11EvidenceSchema = z.strictObject({
  kind: z.literal('p11'),
  operation: z.enum(['Sign', 'Decrypt']),
  principal: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/),
  /** The module's clock, ms since the epoch. */
  timestamp: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  nonce: hex(16, 16),
  /** The module's key reference (k:<key id>:priv). */
  key: z.string().min(1).max(256),
  mechanism: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** The mechanism parameters, wire-encoded (contract/pkcs11/wire.ts) as the module sent them. */
  params: hex(5, 1024),
  /** The data (or the digest the module computed: isDigest 1), or the ciphertext. */
  input: hex(0, 8192),
  isDigest: z.union([z.literal(0), z.literal(1)]),
  mac: hex(32, 32),
});
export type P11Evidence = z.infer<typeof p11EvidenceSchema>;

/** The bytes the module MACs: the request's own argument encodings after a label and the principal, time and nonce. */
function p11RequestBytes(e: Omit<P11Evidence, 'mac'>): { bytes: Buffer; params: Value[] } | undefined {
  const raw = Buffer.from(e.params, 'hex');
  let params: Value;
  try {
    params = decodeValue(raw);
  } catch {
    return undefined;
  }
  if (!Array.isArray(params) || !encodeValue(params).equals(raw)) return undefined;
  const bytes = encodeValue([
    Buffer.from(P11_REQUEST_LABEL),
    Buffer.from(e.principal),
    e.timestamp,
    Buffer.from(e.nonce, 'hex'),
    e.operation === 'Sign' ? OP.SIGN : OP.DECRYPT,
    Buffer.from(e.key),
    e.mechanism,
    params,
    Buffer.from(e.input, 'hex'),
    e.isDigest,
  ]);
  return { bytes, params };
}

const p11UnmacedSchema = p11EvidenceSchema.omit({ mac: true });

/** The module's side (tests play it): the MAC over a request. */
export function macP11Request(request: Omit<P11Evidence, 'mac'>, requestKey: Uint8Array): P11Evidence {
  const r = p11UnmacedSchema.parse(request);
  const m = p11RequestBytes(r);
  if (!m) throw new Error('the mechanism parameters are not one wire-encoded list');
  return { ...r, mac: toHex(hmacSha256(requestKey, m.bytes)) };
}

const PRIVATE_KEY_REF = /^k:([0-9a-f-]{36}):priv$/;

/** What a PKCS#11 request asks for, read by the signer itself with the gateway's mechanism table. */
function p11Asks(e: P11Evidence, params: Value[], keySpec: string): Parameters<typeof mismatch>[0] | string {
  const keyRef = PRIVATE_KEY_REF.exec(e.key)?.[1];
  if (!isKeySpec(keySpec)) return `unknown key spec ${keySpec}`;
  const input = Buffer.from(e.input, 'hex');
  try {
    if (e.operation === 'Decrypt') return { keyRef, algorithm: planDecryption(e.mechanism, params, keySpec), payload: input };
    const plan = planSignature(e.mechanism, params, input, e.isDigest === 1, keySpec);
    return { keyRef, algorithm: plan.algorithm, messageType: plan.messageType, payload: plan.message };
  } catch (err) {
    return `the request's mechanism does not apply: ${(err as Error).message}`;
  }
}

export interface P11EvidenceOptions {
  /** The request key the signer holds for a principal (registered under quorum), if any. */
  requestKeyFor: (principal: string) => Uint8Array | undefined;
  expect: EvidenceExpectation;
  now: number;
  seen: ReadonlySet<string>;
}

export function verifyP11Request(evidence: unknown, o: P11EvidenceOptions): EvidenceResult {
  const r = p11EvidenceSchema.safeParse(evidence);
  if (!r.success) return fail(`malformed PKCS#11 evidence: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
  const e = r.data;
  const key = o.requestKeyFor(e.principal);
  if (!key) return fail(`PKCS#11 principal ${e.principal} is not enrolled at this signer`);
  const m = p11RequestBytes(e);
  if (!m) return fail('the mechanism parameters are not one wire-encoded list');
  const mac = Buffer.from(hmacSha256(key, m.bytes));
  if (!timingSafeEqual(mac, Buffer.from(e.mac, 'hex'))) return fail(`the PKCS#11 request MAC of ${e.principal} does not verify`);
  if (Math.abs(o.now - e.timestamp) > EVIDENCE_SKEW_MS) return fail('the request is dated more than 5 minutes from now');
  const replayId = `p11:${e.principal}:${e.nonce}`;
  if (o.seen.has(replayId)) return fail('this signed request was already used (replay)');
  if (e.operation !== o.expect.operation) return fail(`the signed request is a ${e.operation}, not a ${o.expect.operation}`);
  const asks = p11Asks(e, m.params, o.expect.keySpec);
  if (typeof asks === 'string') return fail(asks);
  const bad = mismatch(asks, o.expect);
  if (bad) return fail(bad);
  return { ok: true, principal: e.principal, keyRef: e.key, replayId, replayUntil: e.timestamp + EVIDENCE_SKEW_MS + 1000 };
}

// ---- either -------------------------------------------------------------------------------

export const evidenceSchema = z.discriminatedUnion('kind', [sigv4EvidenceSchema, p11EvidenceSchema]);
export type Evidence = z.infer<typeof evidenceSchema>;

/** Encodes a received KMS request as evidence for the signers. */
export const sigv4Evidence = (req: ForwardedHttpRequest): Evidence => ({
  kind: 'sigv4',
  method: req.method,
  path: req.path,
  ...(req.query ? { query: req.query } : {}),
  headers: Object.fromEntries(Object.entries(req.headers).filter((e): e is [string, string | string[]] => e[1] !== undefined)),
  body: Buffer.from(req.body).toString('base64'),
});

/** The request SigV4 evidence carries (sigv4Evidence's inverse). */
export const forwardedRequest = (e: Extract<Evidence, { kind: 'sigv4' }>): ForwardedHttpRequest => ({ method: e.method, path: e.path, query: e.query, headers: e.headers, body: fromB64(e.body) });

/** A signer's single entry point: validates and verifies evidence of either kind. */
export async function verifyEvidence(
  evidence: unknown,
  o: SigV4EvidenceOptions & P11EvidenceOptions,
): Promise<EvidenceResult> {
  const r = evidenceSchema.safeParse(evidence);
  if (!r.success) return fail(`malformed evidence: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
  const e = r.data;
  if (e.kind === 'p11') return verifyP11Request(e, o);
  return verifySigV4Request(forwardedRequest(e), o);
}
