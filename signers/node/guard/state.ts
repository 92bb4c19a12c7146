// What a signer's policy guard holds, sealed in this signer's store, never taken from the
// gateway's word: the record names and their schemas (principal registry, governance chain,
// each key's record, aliases, admitted and retired signers, and the ledger: the last change
// processed, the proposals applied, the approval nonces and administrators' requests consumed,
// each until it expires); the same in memory (GuardState); and how the guard refuses.
import { z } from 'zod';
import type { AuditLog } from '../../../audit/log.js';
import { canonicalJson } from '../../../contract/canonical.js';
import type { IdentitySecrets } from '../../../contract/identity/identity.js';
import type { ShareStore } from '../../../contract/io/sealed-store.js';
import { KEY_USAGES } from '../../../contract/keys/specs.js';
import { rotationSettingSchema, tagsSchema } from '../../../contract/signer-rpc/authority.js';
import { digestHex } from '../../../contract/signer-rpc/released.js';
import { uuidSchema } from '../../../contract/signer-rpc/relayed.js';
import type { CounterUse, GovernanceDocument, KeyPolicy } from '../../../policy/index.js';
import { peerSchema, type Peer } from '../config.js';
import type { ReplayLedger } from '../replay-ledger.js';
import { RpcError } from '../rpc.js';
import { tpmBlobSchema } from '../../../contract/bytes.js';
import { KeyedSerialQueue } from '../../../contract/serial-queue.js';

export const REGISTRY = 'policy.registry';
export const GOVERNANCE = 'policy.governance';
export const ALIASES = 'policy.aliases';
export const LEDGER = 'policy.ledger';
export const KEY_PREFIX = 'policy.key.';
/** Beside the sealed store: requests released for and rate buckets (replay-ledger.ts). */
export const REPLAYS_FILE = 'replays.jsonl';
/** Party ids of signers removed by approved RemoveSigner proposals: never trusted again. */
export const RETIRED = 'policy.retired';
export const retiredSchema = z.array(z.number().int().min(1).max(255));
/**
 * Keys whose older sharing an approved restoration revived (guard/restore.ts): key id → the
 * revived package's digest. This signer's own share of such a key is of a later sharing: it
 * takes part in the resharing from the revived one as a receiver only. Cleared once reshared.
 */
export const REVIVED = 'policy.revived';
export const revivedSchema = z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/));
/** Signers admitted by approved AddSigner proposals, beside those configured at bootstrap. */
export const ADMITTED = 'policy.admitted';
export const admittedSchema = z.array(peerSchema).max(255);
/**
 * Signers pinned here under require_attestation whose TPM has not yet answered this signer's
 * credential (tpm/activation.ts), with the EK and AK their attestation named: this signer seals
 * them no state and reshares them no key until it has.
 */
export const AWAITING_ACTIVATION = 'policy.awaiting-activation';
export const awaitingActivationSchema = z.array(z.strictObject({ id: z.number().int().min(1).max(255), ekPublic: tpmBlobSchema, akPublic: tpmBlobSchema })).max(255);
export type AwaitingActivation = z.infer<typeof awaitingActivationSchema>[number];

const NAME_RE = /^[A-Za-z0-9_.@-]{1,64}$/;

const registeredPrincipalSchema = z
  .strictObject({
    name: z.string().regex(NAME_RE),
    role: z.enum(['admin', 'app', 'auditor']),
    accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/),
    /** Every principal's: its requests are verified here, never at the gateway. */
    secretAccessKey: z.string().min(20).max(256),
    /** Applications and administrators: the key their PKCS#11 requests are MAC'd with (policy/evidence.ts). */
    pinRequestKey: z.string().regex(/^[0-9a-f]{64}$/).optional(),
    /** The gateway's check at C_Login (public), kept for a gateway that lost its directory. */
    pinLoginHash: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  })
  .refine((p) => (p.role === 'auditor') === (p.pinRequestKey === undefined), 'applications and administrators, and only they, have a PIN request key');
export type RegisteredPrincipal = z.infer<typeof registeredPrincipalSchema>;

export const registrySchema = z
  .strictObject({
    clusterId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    region: z.string().regex(/^[a-z0-9-]{1,32}$/),
    account: z.string().regex(/^\d{12}$/),
    principals: z.array(registeredPrincipalSchema).min(1).max(1024),
  })
  .superRefine((r, ctx) => {
    const names = r.principals.map((p) => p.name);
    const keys = r.principals.map((p) => p.accessKeyId);
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', path: ['principals'], message: 'a principal is listed twice' });
    if (new Set(keys).size !== keys.length) ctx.addIssue({ code: 'custom', path: ['principals'], message: 'an access key id is listed twice' });
  });
type Registry = z.infer<typeof registrySchema>;

/** What `signer enrol` receives on stdin (with the operator secret) at bootstrap. */
export const enrolmentSchema = registrySchema.and(z.object({ governance: z.unknown() }));

export const keyStateSchema = z.strictObject({
  keyId: uuidSchema,
  keySpec: z.string(),
  keyUsage: z.enum(KEY_USAGES),
  origin: z.enum(['AWS_KMS', 'EXTERNAL']),
  /** The key policy document, as written. */
  policy: z.string(),
  state: z.enum(['Enabled', 'Disabled', 'PendingDeletion']),
  createdAt: z.number(),
  /** createdAt of the last approved proposal applied to the key: an older one is stale. */
  lastChange: z.number(),
  /** PendingDeletion: when this signer may destroy its share (by its own clock, from when it applied the deletion). */
  deletionDate: z.number().optional(),
  /** Kept for a gateway that lost its directory (gateway/gateway-recovery.ts); they carry no authority. */
  description: z.string().max(8192).optional(),
  tags: tagsSchema.optional(),
  /** A symmetric key's automatic rotation (EnableKeyRotation, DisableKeyRotation), kept for the same reason. */
  rotation: rotationSettingSchema.optional(),
  /**
   * Made by a key generation the gateway has not committed yet (guard/keys.ts): the only kind of
   * key forgotten on the gateway's word, which gives back the authority it spent (`proposal:ID`
   * or `request:REPLAY-ID`, spent until `until`).
   */
  pending: z.strictObject({ authority: z.string().max(256).optional(), until: z.number().optional() }).optional(),
});
export type KeyState = z.infer<typeof keyStateSchema>;

export const ledgerSchema = z.strictObject({
  /** The last change (gateway sequence number) processed. */
  seq: z.number().int().min(0),
  /** Proposals applied (or used to create a key), until they expire. */
  proposals: z.record(z.string(), z.number()),
  /** Per-signature approval nonces consumed, until they expire. */
  nonces: z.record(z.string(), z.number()),
  /** Principals' requests applied at once (replay id), until their date leaves the window. */
  requests: z.record(z.string(), z.number()),
  /** The highest signature counter of each WebAuthn credential whose approval was spent here (policy/webauthn.ts). */
  webauthn: z.record(z.string(), z.number().int().min(0)).optional(),
});
type Ledger = z.infer<typeof ledgerSchema>;

export const aliasesSchema = z.record(z.string(), uuidSchema);

/**
 * What an active signer hands a newly admitted one (sealed to it: signers/node/admission.ts):
 * its whole policy state. The newcomer takes it only if every active signer sent the same.
 */
export const admissionStateSchema = z.strictObject({
  registry: registrySchema,
  chain: z.array(z.unknown()).min(1).max(10_000),
  keys: z.array(keyStateSchema).max(100_000),
  aliases: aliasesSchema,
  retired: retiredSchema,
  admitted: admittedSchema,
  ledger: ledgerSchema,
  /** A restored newcomer's own shares of a revived sharing are that sharing's: it learns which here. */
  revived: revivedSchema.default({}),
  /** Signers still awaiting their TPM's answer at the signer handing this over: the newcomer awaits them too. */
  awaiting: awaitingActivationSchema.default([]),
});
export type AdmissionState = z.infer<typeof admissionStateSchema>;

/** This signer's identity and party id (what a secret sealed to it is opened with), and its configured cluster. */
export interface SelfIdentity {
  identity: IdentitySecrets;
  party: number;
  /** The signers configured at bootstrap (this one included). */
  peers: readonly Peer[];
  threshold: number;
}

/** The guard's state: the sealed records as loaded and changed since, and what it keeps in memory only. */
export interface GuardState {
  readonly store: ShareStore;
  readonly audit: AuditLog;
  readonly self: SelfIdentity;
  registry: Registry;
  readonly byAccessKey: Map<string, RegisteredPrincipal>;
  readonly byName: Map<string, RegisteredPrincipal>;
  /** The verified governance chain; its last version is in force. */
  chain: unknown[];
  governance: GovernanceDocument;
  readonly keys: Map<string, KeyState>;
  /** Parsed key policies, by key id. */
  readonly policies: Map<string, KeyPolicy>;
  aliases: Record<string, string>;
  /** Keys that have released anything since start (they can no longer be forgotten). */
  readonly used: Set<string>;
  /** Creation authorities (`proposal:ID`, `request:REPLAY-ID`) whose key is being made or is pending: → key id. */
  readonly creating: Map<string, string>;
  ledger: Ledger;
  retiredIds: Set<number>;
  admittedPeers: Peer[];
  /** AWAITING_ACTIVATION. */
  awaitingActivation: AwaitingActivation[];
  /** Keys whose older sharing a restoration revived: key id → package digest (REVIVED). */
  revived: Record<string, string>;
  /** Requests released for and rate buckets, kept across restarts. */
  readonly replays: ReplayLedger;
}

/** A refusal for policy reasons; the gateway turns "access denied" into AccessDeniedException. */
export const denied = (why: string) => new RpcError(403, 'access-denied', `access denied: ${why}`);

/** The first problem zod found, as a refusal names it. */
export const firstIssue = (e: z.ZodError) => `${e.issues[0]?.path.join('.')}: ${e.issues[0]?.message}`;

export const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/** SHA-256 of the canonical JSON of what a signer acted on. */
export const evidenceHashOf = (v: unknown): string => digestHex(new TextEncoder().encode(canonicalJson(v)));

/**
 * Refuses approvals whose WebAuthn counters another use passed here since they were verified
 * (another request may have spent a later assertion of the credential meanwhile).
 */
export function checkCounters(s: GuardState, counters: readonly CounterUse[]): void {
  for (const c of counters) if (c.counter !== 0 && c.counter <= (s.ledger.webauthn?.[c.credentialId] ?? 0)) throw denied(`the WebAuthn signature counter ${c.counter} of credential ${c.credentialId} was already passed`);
}

/** Records the WebAuthn counters spent approvals carried (the caller saves the ledger). */
export function recordCounters(s: GuardState, counters: readonly CounterUse[]): void {
  if (!counters.length) return;
  const next = { ...s.ledger.webauthn };
  for (const c of counters) next[c.credentialId] = Math.max(next[c.credentialId] ?? 0, c.counter);
  s.ledger.webauthn = next;
}

/** Seals the ledger, without the entries that have expired. */
export async function saveLedger(s: GuardState): Promise<void> {
  const now = Date.now();
  const live = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).filter(([, until]) => until > now));
  s.ledger = { seq: s.ledger.seq, proposals: live(s.ledger.proposals), nonces: live(s.ledger.nonces), requests: live(s.ledger.requests), ...(s.ledger.webauthn ? { webauthn: s.ledger.webauthn } : {}) };
  await s.store.put(LEDGER, json(s.ledger));
}

/** The guard's state held both in memory and as one sealed record each. */
type SealedField = 'aliases' | 'revived' | 'awaitingActivation' | 'admittedPeers';
const sealedChanges = new WeakMap<GuardState, KeyedSerialQueue>();

/**
 * Changes one of them: one change at a time per record, each from the one before, and in memory
 * only once sealed. Two changes at once (two founders answering, a key forgotten while an alias
 * moves) must not each write the record from the same old value: the last write would undo the
 * other. `change` answers undefined for no change.
 */
export function changeSealed<F extends SealedField>(s: GuardState, record: string, field: F, change: (current: GuardState[F]) => GuardState[F] | undefined): Promise<void> {
  let queue = sealedChanges.get(s);
  if (!queue) sealedChanges.set(s, (queue = new KeyedSerialQueue()));
  return queue.run(record, async () => {
    const next = change(s[field]);
    if (next === undefined) return;
    await s.store.put(record, json(next));
    s[field] = next;
  });
}
