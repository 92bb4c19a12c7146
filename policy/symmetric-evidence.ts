// What a symmetric (SYMMETRIC_DEFAULT) request asks of the threshold PRF, read from the client's
// own signed KMS request — by each signer for itself, and by the gateway with the same function
// so that it can check the signers' partials against the same input.
//
// Each request asks for one PRF evaluation per key it touches (ReEncrypt: two):
//   seal  Encrypt, GenerateDataKey*, ReEncrypt's destination: a new blob whose nonce is derived
//         from the client's SigV4 signature — an HMAC under the principal's secret, so the
//         gateway can neither choose a nonce (to obtain the data key of an existing blob) nor
//         predict one; a signed request is used once (the replay ledger).
//   open  Decrypt, ReEncrypt's source: the header of the CiphertextBlob the client sent.
// The encryption context is the request's own. The PRF input is then prfInput(header, context)
// (contract/keys/ciphertext.ts): a gateway that lies about any of it gets a partial for an
// input no client asked about, or none.
import { sha256 } from '@noble/hashes/sha2.js';
import { z } from 'zod';
import { encodeHeader, parseBlob, prfInput, CiphertextError, type BlobHeader, type EncryptionContext } from '../contract/keys/ciphertext.js';
import { lengthPrefixed } from '../contract/identity/signed-request.js';
import { checkKmsRequest, evidenceSchema } from './evidence.js';
import type { SigV4CheckOptions } from './sigv4.js';
import type { Action } from './roles.js';

export const SYMMETRIC_OPERATIONS = [
  'Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext',
  'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext',
] as const;
export type SymmetricOperation = (typeof SYMMETRIC_OPERATIONS)[number];
export const isSymmetricOperation = (v: unknown): v is SymmetricOperation => (SYMMETRIC_OPERATIONS as readonly unknown[]).includes(v);

/** One PRF evaluation a request asks for. */
export type Evaluation =
  | { kind: 'seal'; action: Action; keyRef: string; context: EncryptionContext; nonce: Uint8Array }
  | { kind: 'open'; action: Action; keyRef: string | undefined; context: EncryptionContext; header: BlobHeader; headerBytes: Uint8Array };

const base64 = z.string().regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'base64');
const context = z.record(z.string(), z.string()).optional();
const sealBody = z.object({ KeyId: z.string(), EncryptionContext: context, DryRun: z.boolean().optional() });
const decryptBody = z.object({ KeyId: z.string().optional(), CiphertextBlob: base64, EncryptionContext: context, DryRun: z.boolean().optional() });
const reEncryptBody = z.object({
  CiphertextBlob: base64,
  SourceKeyId: z.string().optional(),
  SourceEncryptionContext: context,
  DestinationKeyId: z.string(),
  DestinationEncryptionContext: context,
  DryRun: z.boolean().optional(),
});

const NONCE_DOMAIN = new TextEncoder().encode('mpchsm/symmetric-nonce/v1');
const utf8 = (s: string) => new TextEncoder().encode(s);

/** A sealing evaluation's nonce: from the client's SigV4 signature, the operation and the evaluation's place. */
export const sealNonce = (signature: string, operation: SymmetricOperation, index: number): Uint8Array =>
  sha256(lengthPrefixed(NONCE_DOMAIN, utf8(signature), utf8(operation), Uint8Array.of(index)));

function open(action: Action, keyRef: string | undefined, blobB64: string, ctx: EncryptionContext | undefined): Evaluation {
  const { header, headerBytes } = parseBlob(new Uint8Array(Buffer.from(blobB64, 'base64')));
  return { kind: 'open', action, keyRef, context: ctx ?? {}, header, headerBytes };
}

/**
 * The evaluations a symmetric request asks for, from its operation, its JSON body and its SigV4
 * signature. Throws SymmetricRequestError when the body is not a request of that operation, or
 * its ciphertext is no blob of this format (the gateway answers InvalidCiphertextException).
 */
export function evaluationsOf(operation: SymmetricOperation, body: unknown, signature: string): Evaluation[] {
  const parse = <T>(schema: z.ZodType<T>): T => {
    const r = schema.safeParse(body);
    if (!r.success) throw new SymmetricRequestError('malformed', `the ${operation} request body is malformed: ${r.error.issues[0]?.path.join('.')}`);
    if ((r.data as { DryRun?: boolean }).DryRun) throw new SymmetricRequestError('malformed', 'the request is a dry run');
    return r.data;
  };
  try {
    if (operation === 'Decrypt') {
      const b = parse(decryptBody);
      return [open('kms:Decrypt', b.KeyId, b.CiphertextBlob, b.EncryptionContext)];
    }
    if (operation === 'ReEncrypt') {
      const b = parse(reEncryptBody);
      return [
        open('kms:ReEncryptFrom', b.SourceKeyId, b.CiphertextBlob, b.SourceEncryptionContext),
        { kind: 'seal', action: 'kms:ReEncryptTo', keyRef: b.DestinationKeyId, context: b.DestinationEncryptionContext ?? {}, nonce: sealNonce(signature, operation, 1) },
      ];
    }
    const b = parse(sealBody);
    return [{ kind: 'seal', action: `kms:${operation}`, keyRef: b.KeyId, context: b.EncryptionContext ?? {}, nonce: sealNonce(signature, operation, 0) }];
  } catch (e) {
    if (e instanceof CiphertextError) throw new SymmetricRequestError('bad-ciphertext', e.message);
    throw e;
  }
}

export class SymmetricRequestError extends Error {
  override readonly name = 'SymmetricRequestError';
  constructor(
    readonly code: 'malformed' | 'bad-ciphertext',
    message: string,
  ) {
    super(message);
  }
}

/** The header an evaluation's blob has: a sealed one's with this key's material `material`. */
export function headerOf(e: Evaluation, keyId: string, material: number): { header: BlobHeader; headerBytes: Uint8Array } {
  if (e.kind === 'open') return { header: e.header, headerBytes: e.headerBytes };
  const header = { keyId, material, nonce: e.nonce };
  return { header, headerBytes: encodeHeader(header) };
}

/** The PRF input of an evaluation. */
export const evaluationInput = (e: Evaluation, keyId: string, material: number): Uint8Array => prfInput(headerOf(e, keyId, material).headerBytes, e.context);

/** The SigV4 signature of a forwarded KMS request (the gateway verified it already). */
export function requestSignature(evidence: unknown): string | undefined {
  const e = evidenceSchema.safeParse(evidence);
  if (!e.success || e.data.kind !== 'sigv4') return undefined;
  const auth = [e.data.headers.authorization ?? []].flat();
  return auth.length === 1 ? /Signature=([0-9a-f]{64})/.exec(auth[0]!)?.[1] : undefined;
}

export type SymmetricEvidenceResult =
  | { ok: true; principal: string; operation: SymmetricOperation; evaluations: Evaluation[]; replayId: string; replayUntil: number }
  | { ok: false; reason: string };

/**
 * A signer's check of a symmetric request forwarded by the gateway: the client's SigV4 signature
 * (sigv4.ts), a KMS symmetric operation signed as X-Amz-Target, not seen before; and what it asks.
 */
export async function verifySymmetricEvidence(evidence: unknown, o: SigV4CheckOptions): Promise<SymmetricEvidenceResult> {
  const c = await checkKmsRequest(evidence, o);
  if (!c.ok) return c;
  const operation = c.target?.startsWith('TrentService.') ? c.target.slice('TrentService.'.length) : undefined;
  if (!isSymmetricOperation(operation)) return { ok: false, reason: `the signed request is ${c.target ?? 'no operation'}, not a symmetric key operation` };
  try {
    const evaluations = evaluationsOf(operation, c.body, c.signature);
    return { ok: true, principal: c.principal, operation, evaluations, replayId: c.replayId, replayUntil: c.replayUntil };
  } catch (err) {
    if (err instanceof SymmetricRequestError) return { ok: false, reason: err.message };
    throw err;
  }
}
