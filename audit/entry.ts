// What an audit log holds. Each line is one JSON object:
//   { v, seq, prev, time, kind, ...fields }
// `prev` is the SHA-256 (hex) of the previous line's exact bytes (without its newline), so
// the lines form a hash chain; seq 0 is the `open` entry naming the party and its key, and
// `checkpoint` entries carry the party's signature over the chain's head (see chain.ts).
//
// `event` entries record one decision. They describe a request — who, what, under which
// policy, with whom, with what result — and never its secrets: a message is recorded by its
// digest, shares, nonces and credentials never appear (`assertNoSecrets` refuses
// secret-looking fields before anything is written).

import { z } from 'zod';

export const AUDIT_VERSION = 1;

export type AuditErrorCode = 'invalid-event' | 'secret-field' | 'wrong-party' | 'corrupt' | 'closed' | 'io';

export class AuditError extends Error {
  override name = 'AuditError';
  constructor(
    readonly code: AuditErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export const hashSchema = z.string().regex(/^[0-9a-f]{64}$/, 'SHA-256, lower-case hex');
const seqSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** Correlation, session and key ids: printable, no spaces, bounded. */
const idSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,127}$/, 'an identifier (1-128 printable characters, no spaces)');
const nameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'a party or principal name');
const text = (max: number) => z.string().max(max);

/** A reference to one entry of a party's log: "entry `seq` of that log hashes to `hash`". */
export const headSchema = z.strictObject({ seq: seqSchema, hash: hashSchema });
export type Head = z.infer<typeof headSchema>;
/** A head certified by the party: Ed25519 signature, hex (chain.ts says over what). */
export type SignedHead = Head & { sig: string };

export const principalSchema = z.strictObject({
  /** The authenticated principal's name. */
  name: text(128).optional(),
  /** AWS access key id (an identifier, not the secret access key). */
  accessKeyId: text(128).optional(),
  /** Where the request came from, e.g. `127.0.0.1:53122` or `pkcs11`. */
  source: text(256).optional(),
});

export const OUTCOMES = ['ok', 'refused', 'failed'] as const;
/** What the action released: cross-checking pairs gateway releases with signer partials. */
export const OUTPUTS = ['signature', 'plaintext', 'partial', 'key', 'none'] as const;

const eventShape = {
  /** Correlation id shared by the gateway's entry and every signer entry of one operation. */
  request: idSchema,
  /** Operation, e.g. `Sign`, `Decrypt`, `CreateKey`, `frost.sign`, `rsa.partial`. */
  op: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/),
  principal: principalSchema.optional(),
  /** The authenticated party that relayed the request (at a signer: the gateway's fingerprint). */
  caller: text(128).optional(),
  keyId: idSchema.optional(),
  /** The key as the client named it (a KeyId, ARN or alias, a PKCS#11 key ref): recorded by signers. */
  keyRef: text(2048).optional(),
  /**
   * The client's operation as a signer read it from the evidence (`Sign`, `Decrypt`,
   * `CreateKey`, `ReshareKey`, a key or alias change): what the cross-check compares with the
   * gateway's claim. Older entries lack it.
   */
  operation: z.string().regex(/^[A-Za-z][A-Za-z0-9]{0,63}$/).optional(),
  algorithm: text(64).optional(),
  /**
   * Digest of the message or ciphertext (hex, 16-64 bytes); never the message itself. A Sign or
   * Decrypt records SHA-256 of the Message or CiphertextBlob as the client sent it, at the
   * gateway and at each signer alike.
   */
  digest: z.string().regex(/^(?:[0-9a-f]{2}){16,64}$/, 'a digest: 16-64 bytes of lower-case hex').optional(),
  /** SHA-256 (hex) of the canonical JSON of the evidence a signer acted on (contract/canonical.ts). */
  evidenceHash: hashSchema.optional(),
  policy: z
    .strictObject({
      version: z.union([text(128), z.number().int()]),
      /** Ids (or signer names) of the approvals that decided it. */
      approvals: z.array(text(128)).max(64).default([]),
    })
    .optional(),
  /** Signers that took part; `entry` is the signer's own log entry for this request. */
  signers: z
    .array(z.strictObject({ name: nameSchema, id: z.number().int().min(0).optional(), entry: headSchema.optional() }))
    .max(256)
    .optional(),
  /** Heads of other parties' logs known when acting (evidence against later truncation). */
  heads: z
    .array(z.strictObject({ party: nameSchema, seq: seqSchema, hash: hashSchema }))
    .max(256)
    .optional(),
  /** Protocol session id. */
  session: idSchema.optional(),
  outcome: z.enum(OUTCOMES),
  /** Why it was refused or failed. */
  reason: text(1024).optional(),
  output: z.enum(OUTPUTS).default('none'),
  startedAt: z.iso.datetime({ offset: true }),
  durationMs: z.number().min(0).max(1e9),
  /** A few extra scalar facts; names are checked like every other field. */
  detail: z
    .record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,31}$/), z.union([text(256), z.number(), z.boolean()]))
    .refine((r) => Object.keys(r).length <= 32, 'at most 32 detail fields')
    .optional(),
};

const needsReason = (e: { outcome: string; reason?: string | undefined }) => e.outcome === 'ok' || (e.reason !== undefined && e.reason.length > 0);
const reasonRule = { message: 'a refusal or failure needs a reason', path: ['reason'] };

/** An event as stored. */
export const auditEventSchema = z.strictObject(eventShape).refine(needsReason, reasonRule);
export type AuditEvent = z.infer<typeof auditEventSchema>;

/**
 * An event as given to `AuditLog.append`: `startedAt` may be a Date or epoch milliseconds,
 * and `durationMs` defaults to the time from `startedAt` to the append.
 */
export type AuditEventInput = Omit<z.input<typeof auditEventSchema>, 'startedAt' | 'durationMs'> & {
  startedAt: Date | number | string;
  durationMs?: number;
};

const base = { v: z.literal(AUDIT_VERSION), seq: seqSchema, prev: hashSchema, time: z.iso.datetime({ offset: true }) };

export const openEntrySchema = z.strictObject({
  ...base,
  kind: z.literal('open'),
  party: nameSchema,
  fingerprint: hashSchema,
  signPublicKey: hashSchema,
  /** The writer signs a checkpoint at least every this many entries. */
  checkpointEvery: z.number().int().min(1).max(1_000_000),
});

export const checkpointEntrySchema = z.strictObject({
  ...base,
  kind: z.literal('checkpoint'),
  sig: z.string().regex(/^[0-9a-f]{128}$/),
});

export const recoveredEntrySchema = z.strictObject({
  ...base,
  kind: z.literal('recovered'),
  /** Bytes of a torn final line removed on open, their SHA-256, and where they were saved. */
  droppedBytes: z.number().int().min(1),
  droppedSha256: hashSchema,
  savedAs: text(256),
});

export const eventEntrySchema = z.strictObject({ ...base, kind: z.literal('event'), ...eventShape }).refine(needsReason, reasonRule);

/**
 * What an intent names: the request the signers will record it under, and what the gateway is
 * about to ask of them. The `event` entry with the same `request` is its outcome.
 */
const intentShape = {
  request: eventShape.request,
  op: eventShape.op,
  principal: eventShape.principal,
  keyId: eventShape.keyId,
  operation: eventShape.operation,
  algorithm: eventShape.algorithm,
  digest: eventShape.digest,
  session: eventShape.session,
  startedAt: eventShape.startedAt,
  detail: eventShape.detail,
};
/** An intent as stored: written (durably) before the gateway asks any signer under `request`. */
export const auditIntentSchema = z.strictObject(intentShape);
export type AuditIntent = z.infer<typeof auditIntentSchema>;
export type AuditIntentInput = Omit<z.input<typeof auditIntentSchema>, 'startedAt'> & { startedAt: Date | number | string };
export const intentEntrySchema = z.strictObject({ ...base, kind: z.literal('intent'), ...intentShape });

export const logEntrySchema = z.union([openEntrySchema, checkpointEntrySchema, recoveredEntrySchema, eventEntrySchema, intentEntrySchema]);
export type OpenEntry = z.infer<typeof openEntrySchema>;
export type CheckpointEntry = z.infer<typeof checkpointEntrySchema>;
export type RecoveredEntry = z.infer<typeof recoveredEntrySchema>;
export type EventEntry = z.infer<typeof eventEntrySchema>;
export type IntentEntry = z.infer<typeof intentEntrySchema>;
export type LogEntry = OpenEntry | CheckpointEntry | RecoveredEntry | EventEntry | IntentEntry;

/** Parses one stored line; returns the first problem as text when it is not a valid entry. */
export function parseEntry(text: string): { entry: LogEntry } | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { error: 'not JSON' };
  }
  const kind = (json as { kind?: unknown } | null)?.kind;
  const schema =
    kind === 'open'
      ? openEntrySchema
      : kind === 'checkpoint'
        ? checkpointEntrySchema
        : kind === 'recovered'
          ? recoveredEntrySchema
          : kind === 'event'
            ? eventEntrySchema
            : kind === 'intent'
              ? intentEntrySchema
              : undefined;
  if (!schema) return { error: `unknown kind ${JSON.stringify(kind)}` };
  const r = schema.safeParse(json);
  if (!r.success) return { error: issueText(r.error) };
  return { entry: r.data };
}

export const issueText = (e: z.ZodError): string => {
  const i = e.issues[0];
  return i ? `${i.path.join('.') || '(entry)'}: ${i.message}` : 'invalid';
};

// Field names that name a secret. Known event fields never match.
const SECRET_NAME = /secret|passw|passphrase|pin(?:code)?$|share|priv|seed|mnemonic|plaintext|^message$|^msg$|nonce|token|credential/i;
// Values that are obviously private key material.
const SECRET_VALUE = /PRIVATE KEY-----/;

/**
 * Throws `AuditError('secret-field')` when `value` holds a field whose name says it is a
 * secret (password, PIN, share, private key, seed, nonce, token, credential, message or
 * plaintext, …) or a string that is a PEM private key. Walks nested objects and arrays.
 */
export function assertNoSecrets(value: unknown, path = ''): void {
  if (typeof value === 'string') {
    if (SECRET_VALUE.test(value)) throw new AuditError('secret-field', `audit field ${path || '(value)'} holds private key material`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => assertNoSecrets(v, `${path}[${i}]`));
    return;
  }
  if (value instanceof Uint8Array) throw new AuditError('secret-field', `audit field ${path || '(value)'} holds raw bytes; record a digest instead`);
  if (value === null || typeof value !== 'object' || value instanceof Date) return;
  for (const [k, v] of Object.entries(value)) {
    const p = path ? `${path}.${k}` : k;
    if (SECRET_NAME.test(k)) throw new AuditError('secret-field', `audit field ${p} looks like a secret and is refused`);
    assertNoSecrets(v, p);
  }
}

function startedAt(input: { startedAt: Date | number | string }): Date {
  const started = input.startedAt instanceof Date ? input.startedAt : new Date(input.startedAt);
  if (Number.isNaN(started.getTime())) throw new AuditError('invalid-event', 'audit event: startedAt is not a valid time');
  return started;
}

/** Validates an intent for appending, as `toAuditEvent` does an event. */
export function toAuditIntent(input: AuditIntentInput): AuditIntent {
  assertNoSecrets(input);
  const r = auditIntentSchema.safeParse({ ...input, startedAt: startedAt(input).toISOString() });
  if (!r.success) throw new AuditError('invalid-event', `audit intent: ${issueText(r.error)}`);
  return r.data;
}

/** Validates an event for appending: no secrets, known fields only, times normalised. */
export function toAuditEvent(input: AuditEventInput, now: Date): AuditEvent {
  assertNoSecrets(input);
  const started = startedAt(input);
  const r = auditEventSchema.safeParse({
    ...input,
    startedAt: started.toISOString(),
    durationMs: input.durationMs ?? Math.max(0, now.getTime() - started.getTime()),
  });
  if (!r.success) throw new AuditError('invalid-event', `audit event: ${issueText(r.error)}`);
  return r.data;
}
