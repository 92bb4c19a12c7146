// GetPublicKey, Sign, Verify, Encrypt, Decrypt, GenerateRandom. Sign and Decrypt run a session
// on t signers (the cluster verifies the result before releasing it), GenerateRandom combines t
// signers' contributions; Verify and Encrypt need only the public key and run here.
import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import { z } from 'zod';
import { DecodeError } from '../../../signers/protocols/rsa/padding.js';
import type { KeyRecord } from '../../keys.js';
import { SIGNING_ALGORITHMS_BY_SPEC, kmsSigningMessage, type MessageType, type SigningAlgorithm } from '../../../contract/keys/specs.js';
import { parseSpki } from '../../../contract/keys/spki.js';
import { RANDOM_MAX_BYTES } from '../../../contract/signer-rpc/random.js';
import { VerifyError, checkSigningRequest, verifySignature } from '../../verify.js';
import { operation, type OpContext } from '../context.js';
import { KmsError } from '../errors.js';
import { blob, grantTokens, keyIdField, str } from '../input.js';
import { ENCRYPTION_ALGORITHMS, algorithms, specOf, type EncryptionAlgorithm } from '../metadata.js';
import { encryptionContext, isSymmetric, openFor, sealWith } from './symmetric.js';

const AWS_SIGNING_ALGORITHMS = [
  'RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA_384', 'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_384', 'RSASSA_PKCS1_V1_5_SHA_512',
  'ECDSA_SHA_256', 'ECDSA_SHA_384', 'ECDSA_SHA_512', 'SM2DSA', 'ML_DSA_SHAKE_256',
  'ED25519_SHA_512', 'ED25519_PH_SHA_512',
] as const;
const AWS_ENCRYPTION_ALGORITHMS = ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'] as const;
const OAEP_HASH = { RSAES_OAEP_SHA_1: { name: 'sha1', length: 20 }, RSAES_OAEP_SHA_256: { name: 'sha256', length: 32 } } as const;

const dryRun = z.boolean().optional();
const recipient = z.strictObject({ KeyEncryptionAlgorithm: z.enum(['RSAES_OAEP_SHA_256']).optional(), AttestationDocument: blob(1, 262144).optional() }).optional();

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

/** A key usable for `usage`: Enabled (DisabledException / KMSInvalidStateException otherwise), right KeyUsage. */
function usableKey(ctx: OpContext, ref: string, usage: KeyRecord['keyUsage']): KeyRecord {
  const key = ctx.key(ref, { aliases: true });
  ctx.requireEnabled(key);
  if (key.keyUsage !== usage) {
    throw new KmsError('InvalidKeyUsageException', `${ctx.arns.key(key.keyId)} key usage is ${key.keyUsage} which is not valid for ${ctx.operation}.`);
  }
  return key;
}

function dryRunDone(): never {
  throw new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
}

/** The checks AWS makes on Sign/Verify parameters, as AWS errors. */
function checkSigning(ctx: OpContext, key: KeyRecord, algorithm: string, messageType: string, message: Uint8Array): void {
  if (messageType === 'EXTERNAL_MU') throw new KmsError('ValidationException', 'MessageType EXTERNAL_MU is only for ML-DSA keys, which mpchsm does not support');
  try {
    checkSigningRequest(specOf(key), algorithm as SigningAlgorithm, messageType as MessageType, message);
  } catch (e) {
    if (!(e instanceof VerifyError)) throw e;
    if (e.code === 'unknown-algorithm' || e.code === 'algorithm-not-for-key-spec') {
      const valid = SIGNING_ALGORITHMS_BY_SPEC[specOf(key)].join(', ');
      throw new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec} of ${ctx.arns.key(key.keyId)}; use one of ${valid}.`);
    }
    if (e.code === 'bad-digest-length') throw new KmsError('ValidationException', `Digest is invalid length for algorithm ${algorithm}: ${e.message}`);
    throw new KmsError('ValidationException', e.message);
  }
}

export const GetPublicKey = operation(z.strictObject({ KeyId: keyIdField, GrantTokens: grantTokens }), async (ctx, input) => {
  const key = ctx.key(input.KeyId, { aliases: true });
  ctx.requireEnabled(key);
  if (isSymmetric(key)) throw new KmsError('UnsupportedOperationException', `${ctx.arns.key(key.keyId)} is a symmetric key: it has no public key.`);
  return {
    KeyId: ctx.arns.key(key.keyId),
    PublicKey: key.publicKey,
    CustomerMasterKeySpec: key.keySpec,
    KeySpec: key.keySpec,
    KeyUsage: key.keyUsage,
    ...algorithms(key),
  };
});

const signingInput = {
  KeyId: keyIdField,
  // AWS: a RAW message up to 4096 bytes; a DIGEST must be exactly the algorithm's digest length.
  Message: blob(1, 4096),
  MessageType: z.enum(['RAW', 'DIGEST', 'EXTERNAL_MU']).optional(),
  SigningAlgorithm: z.enum(AWS_SIGNING_ALGORITHMS),
  GrantTokens: grantTokens,
  DryRun: dryRun,
};

export const Sign = operation(z.strictObject(signingInput), async (ctx, input) => {
  const key = usableKey(ctx, input.KeyId, 'SIGN_VERIFY');
  const messageType = input.MessageType ?? 'RAW';
  checkSigning(ctx, key, input.SigningAlgorithm, messageType, input.Message);
  const message = kmsSigningMessage(input.SigningAlgorithm, messageType as MessageType, input.Message);
  ctx.noteRequest(input.SigningAlgorithm, message);
  if (input.DryRun) dryRunDone();
  let signature: Uint8Array;
  try {
    signature = await ctx.deps.cluster.sign({
      keyId: key.keyId,
      algorithm: input.SigningAlgorithm as SigningAlgorithm,
      messageType: messageType as MessageType,
      message,
      trace: ctx.trace,
      evidence: ctx.requestEvidence(),
    });
  } catch (e) {
    throw ctx.clusterFailure(e, key);
  }
  return { KeyId: ctx.arns.key(key.keyId), Signature: b64(signature), SigningAlgorithm: input.SigningAlgorithm };
});

export const Verify = operation(z.strictObject({ ...signingInput, Signature: blob(1, 6144) }), async (ctx, input) => {
  const key = usableKey(ctx, input.KeyId, 'SIGN_VERIFY');
  const messageType = input.MessageType ?? 'RAW';
  checkSigning(ctx, key, input.SigningAlgorithm, messageType, input.Message);
  if (input.DryRun) dryRunDone();
  const valid = verifySignature({
    keySpec: specOf(key),
    spki: Buffer.from(key.publicKey, 'base64'),
    algorithm: input.SigningAlgorithm as SigningAlgorithm,
    messageType: messageType as MessageType,
    message: kmsSigningMessage(input.SigningAlgorithm, messageType as MessageType, input.Message),
    signature: input.Signature,
  });
  // AWS answers an invalid signature with an error, never SignatureValid: false.
  if (!valid) throw new KmsError('KMSInvalidSignatureException', 'The signature is not valid for this message, key and signing algorithm.');
  return { KeyId: ctx.arns.key(key.keyId), SignatureValid: true, SigningAlgorithm: input.SigningAlgorithm };
});

/** A symmetric key encrypts with SYMMETRIC_DEFAULT only (the default). */
function symmetricAlgorithm(ctx: OpContext, key: KeyRecord, algorithm: string | undefined): void {
  if (algorithm !== undefined && algorithm !== 'SYMMETRIC_DEFAULT')
    throw new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec} of ${ctx.arns.key(key.keyId)}; use SYMMETRIC_DEFAULT.`);
}

/** The OAEP algorithm for an ENCRYPT_DECRYPT key; SYMMETRIC_DEFAULT (the default) is not one. */
function oaepAlgorithm(ctx: OpContext, key: KeyRecord, algorithm: string | undefined): EncryptionAlgorithm {
  const alg = algorithm ?? 'SYMMETRIC_DEFAULT';
  if (!(ENCRYPTION_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new KmsError(
      'InvalidKeyUsageException',
      `Algorithm ${alg} is incompatible with key spec ${key.keySpec} of ${ctx.arns.key(key.keyId)}; specify EncryptionAlgorithm ${ENCRYPTION_ALGORITHMS.join(' or ')}.`,
    );
  }
  return alg as EncryptionAlgorithm;
}

function noEncryptionContext(context: Record<string, string> | undefined): void {
  if (context && Object.keys(context).length > 0) {
    throw new KmsError('ValidationException', 'EncryptionContext is not supported with asymmetric keys (RSAES_OAEP has no associated data); omit it');
  }
}

/** An RSA key's modulus n and its length k in bytes. */
function rsaModulus(key: KeyRecord): { n: bigint; k: number } {
  const parsed = parseSpki(Buffer.from(key.publicKey, 'base64'));
  if (parsed.kind !== 'rsa') throw new Error(`key ${key.keyId} is not RSA`);
  return { n: parsed.n, k: Math.ceil(parsed.modulusBits / 8) };
}

export const Encrypt = operation(
  z.strictObject({
    KeyId: keyIdField,
    Plaintext: blob(1, 4096),
    EncryptionContext: encryptionContext,
    GrantTokens: grantTokens,
    EncryptionAlgorithm: z.enum(AWS_ENCRYPTION_ALGORITHMS).optional(),
    DryRun: dryRun,
  }),
  async (ctx, input) => {
    const key = usableKey(ctx, input.KeyId, 'ENCRYPT_DECRYPT');
    if (isSymmetric(key)) {
      symmetricAlgorithm(ctx, key, input.EncryptionAlgorithm);
      const ciphertext = await sealWith(ctx, key, input.Plaintext, input.DryRun);
      return { CiphertextBlob: b64(ciphertext), KeyId: ctx.arns.key(key.keyId), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
    }
    const algorithm = oaepAlgorithm(ctx, key, input.EncryptionAlgorithm);
    noEncryptionContext(input.EncryptionContext);
    const hash = OAEP_HASH[algorithm];
    const max = rsaModulus(key).k - 2 * hash.length - 2; // RFC 8017 §7.1.1: mLen ≤ k − 2hLen − 2
    if (input.Plaintext.length > max) {
      throw new KmsError('ValidationException', `Plaintext is ${input.Plaintext.length} bytes; ${algorithm} with ${key.keySpec} encrypts at most ${max} bytes`);
    }
    if (input.DryRun) dryRunDone();
    const publicKey = createPublicKey({ key: Buffer.from(key.publicKey, 'base64'), format: 'der', type: 'spki' });
    const ciphertext = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.name }, input.Plaintext);
    return { CiphertextBlob: b64(ciphertext), KeyId: ctx.arns.key(key.keyId), EncryptionAlgorithm: algorithm };
  },
);

export const Decrypt = operation(
  z.strictObject({
    CiphertextBlob: blob(1, 6144),
    EncryptionContext: encryptionContext,
    GrantTokens: grantTokens,
    KeyId: keyIdField.optional(),
    EncryptionAlgorithm: z.enum(AWS_ENCRYPTION_ALGORITHMS).optional(),
    Recipient: recipient,
    DryRun: dryRun,
    DryRunModifiers: z.array(z.enum(['IGNORE_CIPHERTEXT'])).optional(),
  }),
  async (ctx, input) => {
    if (input.Recipient) throw new KmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported');
    // Without a KeyId the ciphertext must be symmetric: its header names its key (as in AWS).
    if (input.KeyId === undefined || isSymmetric(ctx.key(input.KeyId, { aliases: true }))) {
      if (input.EncryptionAlgorithm !== undefined && input.EncryptionAlgorithm !== 'SYMMETRIC_DEFAULT')
        throw new KmsError('InvalidKeyUsageException', `Algorithm ${input.EncryptionAlgorithm} is for asymmetric keys; a symmetric ciphertext takes SYMMETRIC_DEFAULT (and KeyId is required for asymmetric ones)`);
      const { key, plaintext } = await openFor(ctx, input.KeyId, undefined, input.DryRun);
      return { KeyId: ctx.arns.key(key.keyId), Plaintext: b64(plaintext), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
    }
    const key = usableKey(ctx, input.KeyId, 'ENCRYPT_DECRYPT');
    const algorithm = oaepAlgorithm(ctx, key, input.EncryptionAlgorithm);
    noEncryptionContext(input.EncryptionContext);
    const ignoreCiphertext = input.DryRunModifiers?.includes('IGNORE_CIPHERTEXT') ?? false;
    const invalidCiphertext = () => new KmsError('InvalidCiphertextException', `The ciphertext is not a ${algorithm} ciphertext of ${ctx.arns.key(key.keyId)}.`);
    if (!(input.DryRun && ignoreCiphertext) && !ciphertextInRange(key, input.CiphertextBlob)) throw invalidCiphertext();
    if (input.DryRun) dryRunDone();
    let plaintext: Uint8Array;
    try {
      ctx.noteRequest(algorithm, input.CiphertextBlob);
      plaintext = await ctx.deps.cluster.decrypt({ keyId: key.keyId, algorithm, ciphertext: input.CiphertextBlob, trace: ctx.trace, evidence: ctx.requestEvidence() });
    } catch (e) {
      if (e instanceof DecodeError) throw invalidCiphertext();
      throw ctx.clusterFailure(e, key);
    }
    return { KeyId: ctx.arns.key(key.keyId), Plaintext: b64(plaintext), EncryptionAlgorithm: algorithm };
  },
);

/** RSADP takes exactly k bytes encoding 0 < c < n; anything else is no ciphertext of this key. */
function ciphertextInRange(key: KeyRecord, c: Uint8Array): boolean {
  const { n, k } = rsaModulus(key);
  if (c.length !== k) return false;
  const value = BigInt('0x' + Buffer.from(c).toString('hex'));
  return value > 0n && value < n;
}

export const GenerateRandom = operation(
  z.strictObject({ NumberOfBytes: z.number().int().min(1).max(RANDOM_MAX_BYTES), CustomKeyStoreId: str(1, 64).optional(), Recipient: recipient }),
  async (ctx, input) => {
    if (input.CustomKeyStoreId !== undefined) throw new KmsError('CustomKeyStoreNotFoundException', 'mpchsm has no custom key stores; omit CustomKeyStoreId');
    if (input.Recipient) throw new KmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported');
    try {
      // t signers' contributions, each for this signed request (gateway/random.ts).
      return { Plaintext: b64(await ctx.deps.cluster.generateRandom({ numberOfBytes: input.NumberOfBytes, trace: ctx.trace, evidence: ctx.requestEvidence()?.evidence })) };
    } catch (e) {
      throw ctx.clusterFailure(e);
    }
  },
);
