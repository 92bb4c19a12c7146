// Per-signature approvals (key policy `mpchsm.approvalsPerSignature` = k): before a key signs,
// k distinct administrators approve that one signature — key, algorithm, message digest — with
// their governance approval keys. Each approval expires and carries a random nonce; it is
// single-use: the verifier refuses nonces already in the caller's used-nonce store, and
// returns the nonces the caller must record (until their expiry) once the signature is made.
// An approval is signed with the approver's Ed25519 approval key, or made by a WebAuthn
// credential the governance enrols for the approver, with the statement's digest as the
// challenge (webauthn.ts); then the caller also records the credential's signature counter.
import { ed25519Sign } from '../contract/identity/curve25519.js';
import { z } from 'zod';
import { ALGORITHM_INFO, HASHES, isClusterSigningAlgorithm, RSA_PKCS1_RAW, type ClusterSigningAlgorithm, type MessageType } from '../contract/keys/specs.js';
import { toHex } from '../contract/bytes.js';
import { canonicalDigest, DOMAINS } from '../contract/canonical.js';
import { ADMIN_NAME_RE, approvalKeyOf, signatureHexSchema, verifyAdminProof, type GovernanceDocument } from './governance.js';
import { CounterBook, webauthnAssertionSchema, type CounterUse } from './webauthn.js';

/** Longest an approval may be valid, counted from the verifier's clock. */
export const MAX_SIGN_APPROVAL_TTL_MS = 24 * 3600_000;

export const signApprovalStatementSchema = z.strictObject({
  clusterId: z.string().min(1).max(64),
  keyId: z.string().min(1).max(256),
  algorithm: z.custom<ClusterSigningAlgorithm>(isClusterSigningAlgorithm, 'unknown signing algorithm'),
  /** messageDigestFor(algorithm, messageType, message), hex (RSASSA_PKCS1_V1_5_RAW: up to 501 bytes). */
  digest: z.string().regex(/^(?:[0-9a-f]{2}){1,512}$/, '1 to 512 bytes, lower-case hex'),
  expiresAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** At least 16 random bytes, hex. */
  nonce: z.string().regex(/^(?:[0-9a-f]{2}){16,64}$/, '16 to 64 bytes, lower-case hex'),
  approver: z.string().regex(ADMIN_NAME_RE),
});
export type SignApprovalStatement = z.infer<typeof signApprovalStatementSchema>;
export const keySignApprovalSchema = signApprovalStatementSchema.extend({ signature: signatureHexSchema });
export const webauthnSignApprovalSchema = signApprovalStatementSchema.extend({ webauthn: webauthnAssertionSchema });
export const signApprovalSchema = z.union([keySignApprovalSchema, webauthnSignApprovalSchema]);
export type SignApproval = z.infer<typeof signApprovalSchema>;

/** The statement an approval approves, without its signature or assertion. */
export function statementOf(a: SignApproval): SignApprovalStatement {
  const { signature: _s, webauthn: _w, ...s } = a as SignApproval & { signature?: unknown; webauthn?: unknown };
  return s;
}

export const signApprovalDigest = (s: SignApprovalStatement): Uint8Array => canonicalDigest(DOMAINS.signApproval, s);

export function signSignApproval(statement: SignApprovalStatement, approvalSecretKey: Uint8Array): z.infer<typeof keySignApprovalSchema> {
  const s = signApprovalStatementSchema.parse(statement);
  return { ...s, signature: toHex(ed25519Sign(signApprovalDigest(s), approvalSecretKey)) };
}

/**
 * The digest an approval names: the message itself for MessageType DIGEST, else its hash with
 * the algorithm's hash function (SHA-512 for ED25519_SHA_512); for raw PKCS#1 v1.5, the bytes
 * signed. Gateway, signers and approvers' tools all compute it this way.
 */
export function messageDigestFor(algorithm: ClusterSigningAlgorithm, messageType: MessageType, message: Uint8Array): string {
  if (algorithm === RSA_PKCS1_RAW) {
    if (messageType !== 'DIGEST') throw new RangeError(`${algorithm} takes its input as it is (DIGEST)`);
    return toHex(message);
  }
  const info = ALGORITHM_INFO[algorithm];
  if (messageType === 'RAW') return toHex(HASHES[info.hash](message));
  if (message.length !== info.digestLength) throw new RangeError(`${algorithm} takes a ${info.digestLength}-byte digest, not ${message.length} bytes`);
  return toHex(message);
}

export interface SignApprovalCheck {
  approvals: readonly unknown[];
  /** k, from the key policy. */
  required: number;
  governance: GovernanceDocument;
  keyId: string;
  algorithm: string;
  /** Hex digest of the message to sign (messageDigestFor). */
  digest: string;
  now: number;
  /** Nonces already consumed (the caller's store). */
  usedNonces: ReadonlySet<string>;
  /** The highest WebAuthn signature counter the caller recorded, by credential id. */
  counters?: Readonly<Record<string, number>>;
}

export type SignApprovalResult =
  | { ok: true; approvers: string[]; /** record these as used until expiresAt */ nonces: { nonce: string; expiresAt: number }[]; /** WebAuthn approvals' counters, when there are any */ counters?: CounterUse[] }
  | { ok: false; reason: string };

export function verifySignApprovals(c: SignApprovalCheck): SignApprovalResult {
  const n = c.governance.administrators.length;
  if (c.required > n) return { ok: false, reason: `the key needs ${c.required} approvals per signature but governance has only ${n} administrators` };
  const digest = c.digest.toLowerCase();
  const approvers = new Set<string>();
  const nonces: { nonce: string; expiresAt: number }[] = [];
  const book = new CounterBook(c.counters);
  for (const [i, raw] of c.approvals.entries()) {
    const r = signApprovalSchema.safeParse(raw);
    if (!r.success) return { ok: false, reason: `signature approval [${i}] is malformed: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}` };
    const s = statementOf(r.data);
    const by = `the signature approval by ${s.approver}`;
    if (!approvalKeyOf(c.governance, s.approver)) return { ok: false, reason: `${s.approver} is not an administrator in governance v${c.governance.version} and cannot approve signatures` };
    const v = verifyAdminProof(c.governance, s.approver, r.data, signApprovalDigest(s), book);
    if (!v.ok) return { ok: false, reason: `${by} ${v.reason}` };
    if (s.clusterId !== c.governance.clusterId) return { ok: false, reason: `${by} is for cluster ${s.clusterId}` };
    if (s.keyId !== c.keyId) return { ok: false, reason: `${by} is for key ${s.keyId}, not ${c.keyId}` };
    if (s.algorithm !== c.algorithm) return { ok: false, reason: `${by} is for ${s.algorithm}, not ${c.algorithm}` };
    if (s.digest !== digest) return { ok: false, reason: `${by} is for another message digest` };
    if (c.now >= s.expiresAt) return { ok: false, reason: `${by} expired at ${new Date(s.expiresAt).toISOString()}` };
    if (s.expiresAt > c.now + MAX_SIGN_APPROVAL_TTL_MS) return { ok: false, reason: `${by} is valid for longer than 24 hours` };
    if (c.usedNonces.has(s.nonce) || nonces.some((x) => x.nonce === s.nonce)) return { ok: false, reason: `${by} was already used (nonce ${s.nonce})` };
    nonces.push({ nonce: s.nonce, expiresAt: s.expiresAt });
    approvers.add(s.approver);
  }
  if (approvers.size < c.required) {
    return {
      ok: false,
      reason: `the signature needs approval by ${c.required} distinct administrators; it has ${approvers.size}${approvers.size ? ` (${[...approvers].join(', ')})` : ''}`,
    };
  }
  return { ok: true, approvers: [...approvers], nonces, ...(book.uses.length ? { counters: book.uses } : {}) };
}
