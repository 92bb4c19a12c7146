// The vocabulary shared by the benchmark's orchestrator (run.ts) and its client processes
// (worker.ts): what is measured, and the messages they exchange over the IPC channel.
import { z } from 'zod';

export const ALGS = ['rsa2048', 'p256', 'ed25519'] as const;
export type Alg = (typeof ALGS)[number];

/** Where a client loop runs: mpchsm through either facade, or SoftHSMv2 (one whole key, one process). */
export const TARGETS = ['kms', 'p11', 'softhsm'] as const;
export type Target = (typeof TARGETS)[number];

export const ALG_LABEL: Readonly<Record<Alg, string>> = {
  rsa2048: 'RSA-2048 PKCS#1 v1.5',
  p256: 'ECDSA P-256',
  ed25519: 'Ed25519',
};
export const TARGET_LABEL: Readonly<Record<Target, string>> = {
  kms: 'mpchsm KMS',
  p11: 'mpchsm PKCS#11',
  softhsm: 'SoftHSMv2 PKCS#11',
};

/** KMS key spec and signing algorithm of each benchmarked algorithm. */
export const KMS_SPEC: Readonly<Record<Alg, { keySpec: 'RSA_2048' | 'ECC_NIST_P256' | 'ECC_NIST_EDWARDS25519'; algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' | 'ECDSA_SHA_256' | 'ED25519_SHA_512' }>> = {
  rsa2048: { keySpec: 'RSA_2048', algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' },
  p256: { keySpec: 'ECC_NIST_P256', algorithm: 'ECDSA_SHA_256' },
  ed25519: { keySpec: 'ECC_NIST_EDWARDS25519', algorithm: 'ED25519_SHA_512' },
};

/** The symmetric operations measured (KMS only): what envelope encryption calls, per message. */
export const SYMMETRIC_OPS = ['GenerateDataKey', 'Decrypt'] as const;
export type SymmetricOp = (typeof SYMMETRIC_OPS)[number];
export const SYMMETRIC_LABEL: Readonly<Record<SymmetricOp, string>> = {
  GenerateDataKey: 'GenerateDataKey (AES_256)',
  Decrypt: 'Decrypt (of a data key)',
};

// ---- orchestrator → worker ------------------------------------------------------------------

const alg = z.enum(ALGS);
const keyRef = z.string().min(1).max(128);
const proposalId = z.string().regex(/^[A-Za-z0-9-]{1,64}$/);

export const kmsCredentialsSchema = z.strictObject({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1) });

export const workerInitSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('kms'),
    endpoint: z.url(),
    region: z.string().min(1),
    /** Signs (the application principal). */
    app: kmsCredentialsSchema,
    /** Creates keys (a key administrator). */
    admin: kmsCredentialsSchema,
  }),
  z.strictObject({
    kind: z.literal('p11'),
    module: z.string().min(1),
    /** Signs: CKU_USER. */
    userPin: z.string().min(1),
    /** Creates keys: the PIN and user type that may (SO for mpchsm, USER for SoftHSM). */
    keygenPin: z.string().min(1),
    keygenUser: z.enum(['so', 'user']),
  }),
]);
export type WorkerInit = z.infer<typeof workerInitSchema>;

export const workerCommandSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('init'), init: workerInitSchema }),
  /** Makes one key; `label` names it (PKCS#11 CKA_LABEL, KMS Description). */
  z.strictObject({ op: z.literal('keygen'), alg, label: z.string().min(1).max(64) }),
  /**
   * `concurrency` closed-loop clients sign for `durationMs` (or until `maxOps`); the first
   * signature is verified against `spki` before any figure counts.
   */
  z.strictObject({
    op: z.literal('sign'),
    alg,
    keyRef,
    spki: z.base64(),
    concurrency: z.number().int().min(1).max(256),
    durationMs: z.number().int().min(1).max(600_000),
    maxOps: z.number().int().min(1).optional(),
  }),
  /**
   * Full TLS handshakes against a local server (nginx) by `concurrency` closed-loop clients
   * for `durationMs`; the first checks the server presents `ca`'s certificate for `spki`.
   */
  z.strictObject({
    op: z.literal('handshakes'),
    port: z.number().int().min(1).max(65535),
    ca: z.string().startsWith('-----BEGIN CERTIFICATE-----'),
    spki: z.base64(),
    concurrency: z.number().int().min(1).max(256),
    durationMs: z.number().int().min(1).max(600_000),
  }),
  /** KMS: makes a SYMMETRIC_DEFAULT key (CreateKey with no KeySpec); `label` is its Description. */
  z.strictObject({ op: z.literal('symmetricKey'), label: z.string().min(1).max(64) }),
  /**
   * KMS: `concurrency` closed-loop clients call `operation` with symmetric key `keyRef` for
   * `durationMs` (or until `maxOps`); the first answer is checked before any figure counts.
   */
  z.strictObject({
    op: z.literal('symmetric'),
    operation: z.enum(SYMMETRIC_OPS),
    keyRef,
    concurrency: z.number().int().min(1).max(256),
    durationMs: z.number().int().min(1).max(600_000),
    maxOps: z.number().int().min(1).optional(),
  }),
  /** KMS: the DER SPKI of a key (made by an approved proposal, so the worker has not seen it). */
  z.strictObject({ op: z.literal('publicKey'), keyRef }),
  /** A cheap call that reaches the service but signs nothing (KMS DescribeKey): the facade's floor. */
  z.strictObject({ op: z.literal('ping'), keyRef, count: z.number().int().min(1).max(100_000) }),
  z.strictObject({ op: z.literal('close') }),
]);
export type WorkerCommand = z.infer<typeof workerCommandSchema>;
export const requestSchema = z.strictObject({ id: z.number().int(), command: workerCommandSchema });

// ---- worker → orchestrator ------------------------------------------------------------------

export const keygenResultSchema = z.strictObject({
  /** KMS KeyId, or the hex CKA_ID of the PKCS#11 private key. */
  keyRef,
  /** DER SubjectPublicKeyInfo, base64. */
  spki: z.base64(),
  ms: z.number().nonnegative(),
});
export type KeygenResult = z.infer<typeof keygenResultSchema>;

/**
 * `unavailable`: the service refused the key type as not supported (e.g. threshold ECDSA
 * missing). `proposal`: the governance holds key creation for administrators' approval.
 */
export const keygenAnswerSchema = z.discriminatedUnion('status', [
  z.strictObject({ status: z.literal('ok'), result: keygenResultSchema }),
  z.strictObject({ status: z.literal('unavailable'), reason: z.string() }),
  z.strictObject({ status: z.literal('proposal'), proposalId, ms: z.number().nonnegative() }),
]);
export type KeygenAnswer = z.infer<typeof keygenAnswerSchema>;

/** A symmetric key made, or why not (as keygenAnswerSchema; a symmetric key has no public key). */
export const symmetricKeyAnswerSchema = z.discriminatedUnion('status', [
  z.strictObject({ status: z.literal('ok'), keyRef, ms: z.number().nonnegative() }),
  z.strictObject({ status: z.literal('unavailable'), reason: z.string() }),
  z.strictObject({ status: z.literal('proposal'), proposalId, ms: z.number().nonnegative() }),
]);
export type SymmetricKeyAnswer = z.infer<typeof symmetricKeyAnswerSchema>;

export const latencySummarySchema = z.strictObject({
  count: z.number().int().nonnegative(),
  mean: z.number().nonnegative(),
  p50: z.number().nonnegative(),
  p95: z.number().nonnegative(),
  p99: z.number().nonnegative(),
  max: z.number().nonnegative(),
});
export type LatencySummary = z.infer<typeof latencySummarySchema>;

export const loadResultSchema = z.strictObject({
  ops: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  firstError: z.string().optional(),
  wallMs: z.number().nonnegative(),
  latencyMs: latencySummarySchema,
});
export type LoadResult = z.infer<typeof loadResultSchema>;

export const responseSchema = z.union([
  z.strictObject({ id: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.strictObject({ id: z.number().int(), ok: z.literal(false), error: z.string() }),
]);
export type Response = z.infer<typeof responseSchema>;
