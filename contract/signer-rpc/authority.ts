// What the gateway hands a signer beside a protocol request — the client's evidence for a
// Sign or Decrypt, a key creation's or refresh's authority, a numbered key or membership change —
// defined once for both sides. The signer checks every field itself (signers/node/guard/);
// the gateway only builds them.
import { z } from 'zod';
import { KEY_USAGES } from '../keys/specs.js';
import { uuidSchema } from './relayed.js';

const NAME_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
const base64 = z.string().regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'base64');

/** Beside a Sign/Decrypt protocol request: what the client asked, and its proof. */
export const useSchema = z.strictObject({
  operation: z.enum(['Sign', 'Decrypt']),
  algorithm: z.string().min(1).max(64),
  messageType: z.enum(['RAW', 'DIGEST']).optional(),
  /** The Message (Sign) or CiphertextBlob (Decrypt) the client sent, base64. */
  payload: base64.max(16384),
  /** policy/evidence.ts: the client's signed request (sigv4) or PKCS#11 statement (p11). */
  evidence: z.unknown(),
  /** Per-signature approvals (policy/sign-approvals.ts) for keys that need them. */
  signApprovals: z.array(z.unknown()).max(64).optional(),
});
export type Use = z.infer<typeof useSchema>;

/** What the gateway forwards for a Sign or Decrypt: the evidence and any signature approvals. */
export interface RequestEvidence {
  evidence: unknown;
  signApprovals?: unknown[];
}

/** The `use` member the gateway adds to a signing or decryption request. */
export const useOf = (operation: Use['operation'], algorithm: string, messageType: Use['messageType'], payload: Uint8Array, e: RequestEvidence | undefined): Use | undefined =>
  e && {
    operation,
    algorithm,
    ...(messageType ? { messageType } : {}),
    payload: Buffer.from(payload).toString('base64'),
    evidence: e.evidence,
    ...(e.signApprovals?.length ? { signApprovals: e.signApprovals } : {}),
  };

/** A symmetric key's automatic rotation as a signer keeps it (not when the next one falls due: the gateway's clock decides that). */
export const rotationSettingSchema = z.strictObject({ enabled: z.boolean(), periodDays: z.number().int().min(90).max(2560) });

/** A key's tags as KMS has them (at most 50; TagKey 1-128, TagValue 0-256 characters). */
export const tagsSchema = z.array(z.strictObject({ TagKey: z.string().min(1).max(128), TagValue: z.string().max(256) })).max(50);

const approvalFields = { proposal: z.unknown().optional(), approvals: z.array(z.unknown()).max(64).optional() };

/** Beside a key-generation or key-installation request. */
export const creationSchema = z.strictObject({
  keySpec: z.string().min(1).max(64),
  keyUsage: z.enum(KEY_USAGES),
  origin: z.enum(['AWS_KMS', 'EXTERNAL']),
  /** The key policy asked for (CreateKey's Policy); under quorum the proposal's. */
  policy: z.string().max(32768).optional(),
  /** CreateKey's Description and Tags: kept in the signer's record of the key, for a gateway that lost its own (gateway/gateway-recovery.ts). */
  description: z.string().max(8192).optional(),
  tags: tagsSchema.optional(),
  /** The administrator's CreateKey request (policy/admin-evidence.ts); under quorum, the proposer's, if any. */
  evidence: z.unknown().optional(),
  ...approvalFields,
});
export type Creation = z.infer<typeof creationSchema>;

/**
 * Beside a refresh (a resharing to the same holders): the administrator's MpcHsm.RefreshKeyShares
 * request for this key, or an approved proposal (the proposer's request counting, if forwarded).
 */
export const reshareAuthoritySchema = z.strictObject({
  parameters: z.record(z.string(), z.unknown()),
  evidence: z.unknown().optional(),
  ...approvalFields,
});
export type ReshareAuthority = z.infer<typeof reshareAuthoritySchema>;

/**
 * Changes to keys and aliases a signer keeps its own copy of. Tags, descriptions and automatic
 * rotation settings carry no authority: the signers keep them so that a gateway that lost its
 * directory rebuilds them.
 */
export const SIGNER_CHANGES = [
  'PutKeyPolicy', 'DisableKey', 'EnableKey', 'ScheduleKeyDeletion', 'CancelKeyDeletion', 'CreateAlias', 'UpdateAlias', 'DeleteAlias',
  'TagResource', 'UntagResource', 'UpdateKeyDescription', 'EnableKeyRotation', 'DisableKeyRotation',
] as const;
export type SignerChangeOperation = (typeof SIGNER_CHANGES)[number];

/** Changes to who may act: approved proposals, or (UpdateGovernance) a signed next version. */
export const MEMBERSHIP_CHANGES = ['AddPrincipal', 'RemovePrincipal', 'UpdateGovernance', 'AddSigner', 'RemoveSigner', 'RestoreSigner'] as const;

const changeFields = {
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  parameters: z.record(z.string(), z.unknown()),
  ...approvalFields,
};
const keyChangeSchema = z.strictObject({
  ...changeFields,
  keyId: uuidSchema,
  operation: z.enum(SIGNER_CHANGES),
  /** The administrator's request for this change (policy/admin-evidence.ts); under quorum, the proposer's, if any. */
  evidence: z.unknown().optional(),
});
const membershipChangeSchema = z.strictObject({
  ...changeFields,
  /** For the audit entry only: the proposal's proposer is who asked, and a governance link proves itself. */
  principal: z.string().regex(NAME_RE),
  operation: z.enum(MEMBERSHIP_CHANGES),
});
/** One change, numbered by the gateway so every signer applies them in the same order. */
export const changeSchema = z.union([keyChangeSchema, membershipChangeSchema]);
export type SignerChange = z.infer<typeof changeSchema>;
export type KeyChange = z.infer<typeof keyChangeSchema>;
export type MembershipChange = z.infer<typeof membershipChangeSchema>;
/** A change as the gateway hands it over, before it is numbered. */
export type UnnumberedChange = Omit<KeyChange, 'seq'> | Omit<MembershipChange, 'seq'>;
