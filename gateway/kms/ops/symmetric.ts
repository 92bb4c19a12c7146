// Symmetric (SYMMETRIC_DEFAULT) keys: Encrypt and Decrypt of their blobs (called from
// crypto.ts), ReEncrypt, GenerateDataKey(WithoutPlaintext), GenerateDataKeyPair(WithoutPlaintext).
// Each blob's AES-256-GCM key is the threshold PRF's output on its header and encryption
// context (contract/keys/ciphertext.ts), evaluated by t signers on the input each derives from
// the client's signed request (policy/symmetric-evidence.ts); the gateway derives the same input
// here to check their proofs. A data key is derived from the same output, so no single party
// chooses it either.
import { generateKeyPairSync, hkdfSync } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../../../contract/canonical.js';
import { CiphertextError, openBlob, sealBlob } from '../../../contract/keys/ciphertext.js';
import { SYMMETRIC_KEY_SPEC } from '../../../contract/keys/specs.js';
import { evaluationInput, evaluationsOf, headerOf, requestSignature, SymmetricRequestError, type Evaluation, type SymmetricOperation } from '../../../policy/index.js';
import type { KeyRecord } from '../../keys.js';
import { newestMaterial } from '../../tprf.js';
import { operation, type OpContext } from '../context.js';
import { KmsError } from '../errors.js';
import { blob, grantTokens, keyIdField } from '../input.js';

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
export const encryptionContext = z.record(z.string().min(1).max(2048), z.string().max(2048)).optional();
const DATA_KEY_INFO = 'mpchsm/data-key/v1';

export const isSymmetric = (key: KeyRecord): boolean => key.keySpec === SYMMETRIC_KEY_SPEC;

const invalidCiphertext = (why: string) => new KmsError('InvalidCiphertextException', why);

/** The request's evaluations, as every signer will read them from the same signed request. */
function evaluations(ctx: OpContext): Evaluation[] {
  const signature = requestSignature(ctx.extras.evidence);
  if (!signature) throw new KmsError('AccessDeniedException', 'symmetric keys are used only through SigV4-signed KMS requests');
  try {
    // A dry run is read as the request it would be (the signers refuse one; here it ends before them).
    return evaluationsOf(ctx.operation as SymmetricOperation, { ...ctx.extras.parameters, DryRun: undefined }, signature);
  } catch (e) {
    if (e instanceof SymmetricRequestError) throw e.code === 'bad-ciphertext' ? invalidCiphertext(`The ciphertext is not an mpchsm symmetric ciphertext: ${e.message}.`) : new KmsError('ValidationException', e.message);
    throw e;
  }
}

/** A symmetric key the request may use: Enabled, SYMMETRIC_DEFAULT; `action` is checked against its policy here (the signers check again). */
function symmetricKey(ctx: OpContext, ref: string, action?: 'ReEncryptFrom' | 'ReEncryptTo'): KeyRecord {
  const key = ctx.key(ref, { aliases: true, ...(action ? { action } : {}) });
  ctx.requireEnabled(key);
  if (!isSymmetric(key)) throw new KmsError('InvalidKeyUsageException', `${ctx.arns.key(key.keyId)} is a ${key.keySpec} key; ${ctx.operation} with it takes an asymmetric EncryptionAlgorithm`);
  return key;
}

/** The PRF output for evaluation `index` of the request with `key`, and the blob header it stands for. */
async function evaluate(ctx: OpContext, key: KeyRecord, e: Evaluation, index: number): Promise<{ output: Uint8Array; headerBytes: Uint8Array }> {
  const material = e.kind === 'open' ? e.header.material : newestMaterial(key);
  const input = evaluationInput(e, key.keyId, material);
  // The signers' audit entries name the whole client request by its SHA-256; so does the gateway's.
  ctx.noteRequest(SYMMETRIC_KEY_SPEC, new TextEncoder().encode(canonicalJson(ctx.extras.evidence)));
  try {
    const output = await ctx.deps.cluster.prf.evaluate(key, { material, evaluation: index, input, evidence: ctx.extras.evidence, trace: ctx.trace });
    return { output, headerBytes: headerOf(e, key.keyId, material).headerBytes };
  } catch (e) {
    throw ctx.clusterFailure(e, key);
  }
}

/** Encrypt with a symmetric key: a new blob of `plaintext`. */
export async function sealWith(ctx: OpContext, key: KeyRecord, plaintext: Uint8Array, dryRun: boolean | undefined): Promise<Uint8Array> {
  const e = evaluations(ctx).at(-1)!;
  if (e.kind !== 'seal') throw new KmsError('ValidationException', `${ctx.operation} does not seal`);
  if (dryRun) dryRunDone();
  const { output, headerBytes } = await evaluate(ctx, key, e, ctx.operation === 'ReEncrypt' ? 1 : 0);
  return sealBlob(output, headerBytes, e.context, plaintext);
}

/** Decrypt (or ReEncrypt's source): the blob's key, named by its header, and its plaintext. */
export async function openFor(ctx: OpContext, keyRef: string | undefined, action?: 'ReEncryptFrom', dryRun?: boolean): Promise<{ key: KeyRecord; plaintext: Uint8Array }> {
  const e = evaluations(ctx)[0]!;
  if (e.kind !== 'open') throw new KmsError('ValidationException', `${ctx.operation} does not open a ciphertext`);
  const blobKey = symmetricKeyOrInvalid(ctx, e.header.keyId, action);
  if (action) ctx.sourceKeyId = blobKey.keyId;
  if (keyRef !== undefined && ctx.key(keyRef, { aliases: true, ...(action ? { action } : {}) }).keyId !== blobKey.keyId)
    throw new KmsError('IncorrectKeyException', `The key ID in the request does not identify a KMS key that can perform this operation: the ciphertext was made with ${ctx.arns.key(blobKey.keyId)}.`);
  if (dryRun) dryRunDone();
  const { output } = await evaluate(ctx, blobKey, e, 0);
  const blobBytes = new Uint8Array(Buffer.from(String(ctx.extras.parameters.CiphertextBlob), 'base64'));
  try {
    return { key: blobKey, plaintext: openBlob(output, blobBytes, e.context) };
  } catch (err) {
    if (err instanceof CiphertextError) throw invalidCiphertext('The ciphertext is invalid or was not encrypted under this key and encryption context.');
    throw err;
  }
}

/** The key a blob's header names: one unknown here means the blob is no ciphertext of this cluster. */
function symmetricKeyOrInvalid(ctx: OpContext, keyId: string, action?: 'ReEncryptFrom'): KeyRecord {
  if (!ctx.deps.cluster.keys.get(keyId)) throw invalidCiphertext('The ciphertext refers to a key that does not exist here.');
  return symmetricKey(ctx, keyId, action);
}

function dryRunDone(): never {
  throw new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
}

const dataKeyInput = {
  KeyId: keyIdField,
  EncryptionContext: encryptionContext,
  NumberOfBytes: z.number().int().min(1).max(1024).optional(),
  KeySpec: z.enum(['AES_256', 'AES_128']).optional(),
  GrantTokens: grantTokens,
  Recipient: z.unknown().optional(),
  DryRun: z.boolean().optional(),
};

/** A data key's length: KeySpec or NumberOfBytes, exactly one of them (as AWS). */
function dataKeyLength(input: { NumberOfBytes?: number | undefined; KeySpec?: 'AES_256' | 'AES_128' | undefined }): number {
  if ((input.NumberOfBytes === undefined) === (input.KeySpec === undefined)) throw new KmsError('ValidationException', 'Specify either KeySpec or NumberOfBytes, but not both.');
  return input.NumberOfBytes ?? (input.KeySpec === 'AES_128' ? 16 : 32);
}

async function generateDataKey(ctx: OpContext, input: z.infer<z.ZodObject<typeof dataKeyInput>>, plaintext: boolean) {
  if (input.Recipient !== undefined) throw new KmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported');
  const length = dataKeyLength(input);
  const key = symmetricKey(ctx, input.KeyId);
  const e = evaluations(ctx)[0]!;
  if (e.kind !== 'seal') throw new KmsError('ValidationException', `${ctx.operation} does not seal`);
  if (input.DryRun) dryRunDone();
  const { output, headerBytes } = await evaluate(ctx, key, e, 0);
  const dataKey = new Uint8Array(hkdfSync('sha256', output, headerBytes, DATA_KEY_INFO, length));
  const ciphertext = sealBlob(output, headerBytes, e.context, dataKey);
  return { KeyId: ctx.arns.key(key.keyId), CiphertextBlob: b64(ciphertext), ...(plaintext ? { Plaintext: b64(dataKey) } : {}) };
}

export const GenerateDataKey = operation(z.strictObject(dataKeyInput), (ctx, input) => generateDataKey(ctx, input, true));
export const GenerateDataKeyWithoutPlaintext = operation(z.strictObject(dataKeyInput), (ctx, input) => generateDataKey(ctx, input, false));

const KEY_PAIR_SPECS = ['RSA_2048', 'RSA_3072', 'RSA_4096', 'ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ECC_SECG_P256K1', 'ECC_NIST_EDWARDS25519', 'SM2'] as const;
const NAMED_CURVE: Record<string, string> = { ECC_NIST_P256: 'prime256v1', ECC_NIST_P384: 'secp384r1', ECC_NIST_P521: 'secp521r1', ECC_SECG_P256K1: 'secp256k1' };

/** A data key pair (PKCS#8 and SPKI DER), made here as AWS makes it: returned to the caller, not kept. */
function makeKeyPair(spec: (typeof KEY_PAIR_SPECS)[number]): { privateKey: Uint8Array; publicKey: Uint8Array } {
  const pair =
    spec.startsWith('RSA_') ? generateKeyPairSync('rsa', { modulusLength: Number(spec.slice(4)) })
    : spec === 'ECC_NIST_EDWARDS25519' ? generateKeyPairSync('ed25519')
    : NAMED_CURVE[spec] ? generateKeyPairSync('ec', { namedCurve: NAMED_CURVE[spec]! })
    : undefined;
  if (!pair) throw new KmsError('UnsupportedOperationException', `KeyPairSpec ${spec} is not supported`);
  return {
    privateKey: new Uint8Array(pair.privateKey.export({ type: 'pkcs8', format: 'der' })),
    publicKey: new Uint8Array(pair.publicKey.export({ type: 'spki', format: 'der' })),
  };
}

const keyPairInput = z.strictObject({
  KeyId: keyIdField,
  KeyPairSpec: z.enum(KEY_PAIR_SPECS),
  EncryptionContext: encryptionContext,
  GrantTokens: grantTokens,
  Recipient: z.unknown().optional(),
  DryRun: z.boolean().optional(),
});

async function generateDataKeyPair(ctx: OpContext, input: z.infer<typeof keyPairInput>, plaintext: boolean) {
  if (input.Recipient !== undefined) throw new KmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported');
  const key = symmetricKey(ctx, input.KeyId);
  const pair = makeKeyPair(input.KeyPairSpec);
  const sealed = await sealWith(ctx, key, pair.privateKey, input.DryRun);
  return {
    KeyId: ctx.arns.key(key.keyId),
    KeyPairSpec: input.KeyPairSpec,
    PublicKey: b64(pair.publicKey),
    PrivateKeyCiphertextBlob: b64(sealed),
    ...(plaintext ? { PrivateKeyPlaintext: b64(pair.privateKey) } : {}),
  };
}

export const GenerateDataKeyPair = operation(keyPairInput, (ctx, input) => generateDataKeyPair(ctx, input, true));
export const GenerateDataKeyPairWithoutPlaintext = operation(keyPairInput, (ctx, input) => generateDataKeyPair(ctx, input, false));

const SYMMETRIC_ONLY = z.enum(['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE']).optional();

export const ReEncrypt = operation(
  z.strictObject({
    CiphertextBlob: blob(1, 6144),
    SourceEncryptionContext: encryptionContext,
    SourceKeyId: keyIdField.optional(),
    DestinationKeyId: keyIdField,
    DestinationEncryptionContext: encryptionContext,
    SourceEncryptionAlgorithm: SYMMETRIC_ONLY,
    DestinationEncryptionAlgorithm: SYMMETRIC_ONLY,
    GrantTokens: grantTokens,
    DryRun: z.boolean().optional(),
  }),
  async (ctx, input) => {
    for (const alg of [input.SourceEncryptionAlgorithm, input.DestinationEncryptionAlgorithm])
      if (alg !== undefined && alg !== 'SYMMETRIC_DEFAULT') throw new KmsError('UnsupportedOperationException', `ReEncrypt with ${alg} is not supported: mpchsm re-encrypts between symmetric keys`);
    const destination = symmetricKey(ctx, input.DestinationKeyId, 'ReEncryptTo');
    const source = await openFor(ctx, input.SourceKeyId, 'ReEncryptFrom', input.DryRun);
    const ciphertext = await sealWith(ctx, destination, source.plaintext, input.DryRun);
    return {
      CiphertextBlob: b64(ciphertext),
      SourceKeyId: ctx.arns.key(source.key.keyId),
      KeyId: ctx.arns.key(destination.keyId),
      SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    };
  },
);
