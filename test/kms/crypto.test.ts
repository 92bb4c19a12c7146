// The KMS API's key creation and cryptography, driven with @aws-sdk/client-kms against a real
// cluster; every signature is checked with node:crypto (OpenSSL) or noble against the DER
// public key GetPublicKey returns, and Decrypt opens what node:crypto encrypted.
import { constants, createHash, createPublicKey, publicEncrypt, verify, type KeyObject } from 'node:crypto';
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GetPublicKeyCommand,
  ListKeysCommand,
  SignCommand,
  VerifyCommand,
  type KMSClient,
  type KeySpec,
  type KeyUsageType,
  type SigningAlgorithmSpec,
} from '@aws-sdk/client-kms';
import { ed25519ph } from '@noble/curves/ed25519.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { createKey as createApprovedKey } from '../policy-cluster/helpers.js';
import { awsError, kmsClient } from './kms-client.js';

let tc: TestCluster;
let app: KMSClient;
/** Creates keys (CreateKey is an administrator's, approved by one administrator: policy-cluster/). */
let admin: KMSClient;
let ed: string;
let rsaSign: string;
let rsaEnc: string;
const publicKeys = new Map<string, KeyObject>();

const text = (s: string) => new TextEncoder().encode(s);
const MESSAGE = text('mpchsm: threshold keys behind the KMS API');

async function createKey(KeySpec: KeySpec, KeyUsage: KeyUsageType, Description = ''): Promise<string> {
  return createApprovedKey(tc, { KeySpec, KeyUsage, Description });
}

async function publicKey(keyId: string): Promise<KeyObject> {
  let k = publicKeys.get(keyId);
  if (!k) {
    const out = await app.send(new GetPublicKeyCommand({ KeyId: keyId }));
    k = createPublicKey({ key: Buffer.from(out.PublicKey!), format: 'der', type: 'spki' });
    publicKeys.set(keyId, k);
  }
  return k;
}

beforeAll(async () => {
  tc = await startCluster();
  app = kmsClient(tc, 'app');
  admin = kmsClient(tc, 'admin1');
  [ed, rsaSign, rsaEnc] = await Promise.all([
    createKey('ECC_NIST_EDWARDS25519', 'SIGN_VERIFY', 'ed25519 test key'),
    createKey('RSA_2048', 'SIGN_VERIFY'),
    createKey('RSA_2048', 'ENCRYPT_DECRYPT'),
  ]);
}, 120_000);

afterAll(async () => {
  await tc?.destroy();
});

describe('CreateKey and DescribeKey', () => {
  it('describes a key with the metadata fields clients read', async () => {
    const { KeyMetadata: m } = await app.send(new DescribeKeyCommand({ KeyId: ed }));
    const region = tc.principal('app').AWS_REGION;
    expect(m!.Arn).toMatch(new RegExp(`^arn:aws:kms:${region}:\\d{12}:key/${ed}$`));
    expect(m!.AWSAccountId).toBe(m!.Arn!.split(':')[4]);
    expect(m!.KeyId).toBe(ed);
    expect(m!.CreationDate).toBeInstanceOf(Date);
    expect(Math.abs(m!.CreationDate!.getTime() - Date.now())).toBeLessThan(120_000);
    expect(m).toMatchObject({
      Enabled: true,
      Description: 'ed25519 test key',
      KeyUsage: 'SIGN_VERIFY',
      KeyState: 'Enabled',
      KeySpec: 'ECC_NIST_EDWARDS25519',
      CustomerMasterKeySpec: 'ECC_NIST_EDWARDS25519',
      KeyManager: 'CUSTOMER',
      Origin: 'AWS_KMS',
      MultiRegion: false,
      SigningAlgorithms: ['ED25519_SHA_512', 'ED25519_PH_SHA_512'],
    });
    expect(m!.EncryptionAlgorithms).toBeUndefined();
    expect(m!.DeletionDate).toBeUndefined();

    const enc = (await app.send(new DescribeKeyCommand({ KeyId: m!.Arn!.replace(ed, rsaEnc) }))).KeyMetadata!;
    expect(enc.EncryptionAlgorithms).toEqual(['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256']);
    expect(enc.SigningAlgorithms).toBeUndefined();
    expect(enc.KeySpec).toBe('RSA_2048');
  });

  it('makes ECDSA keys for signing only (threshold ECDSA: see test/cluster/ecdsa.test.ts)', async () => {
    const before = (await app.send(new ListKeysCommand({}))).Keys!.length;
    for (const KeySpec of ['ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ECC_SECG_P256K1'] as const) {
      const e = await awsError(admin.send(new CreateKeyCommand({ KeySpec, KeyUsage: 'ENCRYPT_DECRYPT' })));
      expect([e.name, e.status]).toEqual(['ValidationException', 400]);
    }
    expect((await app.send(new ListKeysCommand({}))).Keys!.length).toBe(before);
  });

  it('answers specs mpchsm does not support with UnsupportedOperationException', async () => {
    const cases: { KeySpec?: KeySpec; KeyUsage?: KeyUsageType }[] = [
      { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' },
      { KeySpec: 'ML_DSA_44', KeyUsage: 'SIGN_VERIFY' },
      { KeySpec: 'SM2', KeyUsage: 'SIGN_VERIFY' },
      { KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT' },
      { KeySpec: 'ECC_NIST_P521', KeyUsage: 'KEY_AGREEMENT' },
    ];
    for (const c of cases) {
      const e = await awsError(admin.send(new CreateKeyCommand(c)));
      expect(e.name, JSON.stringify(c)).toBe('UnsupportedOperationException');
      expect(e.message).toMatch(/not support/);
    }
    expect((await awsError(admin.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY', Origin: 'EXTERNAL' })))).name).toBe('UnsupportedOperationException');
    expect((await awsError(admin.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY', MultiRegion: true })))).name).toBe('UnsupportedOperationException');
    expect((await awsError(admin.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY', CustomKeyStoreId: 'cks-1' })))).name).toBe('CustomKeyStoreNotFoundException');
  });

  it('refuses usages that do not fit the spec, and a missing usage for asymmetric keys', async () => {
    const missing = await awsError(admin.send(new CreateKeyCommand({ KeySpec: 'RSA_2048' })));
    expect(missing.name).toBe('ValidationException');
    expect(missing.message).toMatch(/KeyUsage is required/);
    const wrong = await awsError(admin.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'ENCRYPT_DECRYPT' })));
    expect(wrong.name).toBe('ValidationException');
    expect((await awsError(admin.send(new CreateKeyCommand({ KeySpec: 'RSA_1024' as KeySpec, KeyUsage: 'SIGN_VERIFY' })))).name).toBe('ValidationException');
  });
});

describe('GetPublicKey', () => {
  it('returns DER SubjectPublicKeyInfo with the key spec, usage and algorithms', async () => {
    const out = await app.send(new GetPublicKeyCommand({ KeyId: rsaSign }));
    expect(out.KeyId).toMatch(new RegExp(`:key/${rsaSign}$`));
    expect(out).toMatchObject({ KeySpec: 'RSA_2048', CustomerMasterKeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
    expect(out.SigningAlgorithms).toHaveLength(6);
    const key = createPublicKey({ key: Buffer.from(out.PublicKey!), format: 'der', type: 'spki' });
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect((await publicKey(ed)).asymmetricKeyType).toBe('ed25519');
    expect((await app.send(new GetPublicKeyCommand({ KeyId: rsaEnc }))).EncryptionAlgorithms).toEqual(['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256']);
  });

  it('NotFoundException for unknown keys, aliases and foreign ARNs', async () => {
    for (const KeyId of ['0c6b7a1e-0000-4000-8000-000000000000', 'alias/none', 'arn:aws:kms:eu-west-1:111122223333:key/' + ed]) {
      expect((await awsError(app.send(new GetPublicKeyCommand({ KeyId })))).name, KeyId).toBe('NotFoundException');
    }
  });
});

describe('Sign and Verify', () => {
  it('Ed25519 (ED25519_SHA_512, RAW): node:crypto verifies the signature', async () => {
    const out = await app.send(new SignCommand({ KeyId: ed, Message: MESSAGE, SigningAlgorithm: 'ED25519_SHA_512' }));
    expect(out.SigningAlgorithm).toBe('ED25519_SHA_512');
    expect(out.KeyId).toMatch(new RegExp(`:key/${ed}$`));
    expect(verify(null, MESSAGE, await publicKey(ed), out.Signature!)).toBe(true);
    expect(verify(null, text('another message'), await publicKey(ed), out.Signature!)).toBe(false);
  });

  it('Ed25519ph (ED25519_PH_SHA_512, DIGEST): noble verifies the signature over the digest, hashed again as AWS does (test/kms/ed25519ph.test.ts)', async () => {
    const digest = createHash('sha512').update(MESSAGE).digest();
    const out = await app.send(new SignCommand({ KeyId: ed, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' }));
    const raw = (await publicKey(ed)).export({ format: 'der', type: 'spki' }).subarray(-32);
    expect(ed25519ph.verify(out.Signature!, digest, raw)).toBe(true);
    expect(ed25519ph.verify(out.Signature!, text('x'), raw)).toBe(false);
  });

  it('Ed25519 algorithms take only their message type', async () => {
    const digest = createHash('sha512').update(MESSAGE).digest();
    const pureDigest = await awsError(app.send(new SignCommand({ KeyId: ed, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_SHA_512' })));
    expect(pureDigest.name).toBe('ValidationException');
    const phRaw = await awsError(app.send(new SignCommand({ KeyId: ed, Message: MESSAGE, MessageType: 'RAW', SigningAlgorithm: 'ED25519_PH_SHA_512' })));
    expect(phRaw.name).toBe('ValidationException');
  });

  const RSA: [SigningAlgorithmSpec, string, 'pss' | 'pkcs1'][] = [
    ['RSASSA_PKCS1_V1_5_SHA_256', 'sha256', 'pkcs1'],
    ['RSASSA_PKCS1_V1_5_SHA_384', 'sha384', 'pkcs1'],
    ['RSASSA_PKCS1_V1_5_SHA_512', 'sha512', 'pkcs1'],
    ['RSASSA_PSS_SHA_256', 'sha256', 'pss'],
    ['RSASSA_PSS_SHA_384', 'sha384', 'pss'],
    ['RSASSA_PSS_SHA_512', 'sha512', 'pss'],
  ];
  for (const [algorithm, hash, padding] of RSA) {
    it(`${algorithm}, RAW and DIGEST: node:crypto verifies, and so does KMS Verify`, async () => {
      const key = await publicKey(rsaSign);
      const opts = padding === 'pss' ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: createHash(hash).digest().length } : { key, padding: constants.RSA_PKCS1_PADDING };
      const digest = createHash(hash).update(MESSAGE).digest();
      for (const [MessageType, Message] of [['RAW', MESSAGE], ['DIGEST', digest]] as const) {
        const out = await app.send(new SignCommand({ KeyId: rsaSign, Message, MessageType, SigningAlgorithm: algorithm }));
        expect(out.Signature!.length).toBe(256);
        expect(verify(hash, MESSAGE, opts, out.Signature!), `${algorithm} ${MessageType}`).toBe(true);
        const v = await app.send(new VerifyCommand({ KeyId: rsaSign, Message, MessageType, Signature: out.Signature!, SigningAlgorithm: algorithm }));
        expect(v.SignatureValid).toBe(true);
      }
    });
  }

  it('Verify answers a bad signature with KMSInvalidSignatureException', async () => {
    const out = await app.send(new SignCommand({ KeyId: ed, Message: MESSAGE, SigningAlgorithm: 'ED25519_SHA_512' }));
    expect((await app.send(new VerifyCommand({ KeyId: ed, Message: MESSAGE, Signature: out.Signature!, SigningAlgorithm: 'ED25519_SHA_512' }))).SignatureValid).toBe(true);
    const bad = Uint8Array.from(out.Signature!);
    bad[5]! ^= 1;
    const e = await awsError(app.send(new VerifyCommand({ KeyId: ed, Message: MESSAGE, Signature: bad, SigningAlgorithm: 'ED25519_SHA_512' })));
    expect([e.name, e.status]).toEqual(['KMSInvalidSignatureException', 400]);
    const other = await awsError(app.send(new VerifyCommand({ KeyId: ed, Message: text('other'), Signature: out.Signature!, SigningAlgorithm: 'ED25519_SHA_512' })));
    expect(other.name).toBe('KMSInvalidSignatureException');
  });

  it('enforces AWS size rules: RAW ≤ 4096 bytes, DIGEST exactly the digest length', async () => {
    const max = await app.send(new SignCommand({ KeyId: rsaSign, Message: new Uint8Array(4096), SigningAlgorithm: 'RSASSA_PSS_SHA_256' }));
    expect(max.Signature!.length).toBe(256);
    expect((await awsError(app.send(new SignCommand({ KeyId: rsaSign, Message: new Uint8Array(4097), SigningAlgorithm: 'RSASSA_PSS_SHA_256' })))).name).toBe('ValidationException');
    const short = await awsError(app.send(new SignCommand({ KeyId: rsaSign, Message: new Uint8Array(31), MessageType: 'DIGEST', SigningAlgorithm: 'RSASSA_PSS_SHA_256' })));
    expect(short.name).toBe('ValidationException');
    expect(short.message).toMatch(/Digest is invalid length/);
    const long = await awsError(app.send(new SignCommand({ KeyId: rsaSign, Message: new Uint8Array(48), MessageType: 'DIGEST', SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' })));
    expect(long.name).toBe('ValidationException');
  });

  it('a wrong algorithm or key usage is InvalidKeyUsageException', async () => {
    for (const [KeyId, SigningAlgorithm] of [
      [rsaSign, 'ED25519_SHA_512'],
      [rsaSign, 'ECDSA_SHA_256'],
      [ed, 'RSASSA_PSS_SHA_256'],
      [ed, 'ECDSA_SHA_512'],
    ] as const) {
      const e = await awsError(app.send(new SignCommand({ KeyId, Message: MESSAGE, SigningAlgorithm })));
      expect(e.name, `${SigningAlgorithm} on ${KeyId}`).toBe('InvalidKeyUsageException');
    }
    expect((await awsError(app.send(new SignCommand({ KeyId: rsaEnc, Message: MESSAGE, SigningAlgorithm: 'RSASSA_PSS_SHA_256' })))).name).toBe('InvalidKeyUsageException');
  });

  it('DryRun checks the request and signs nothing', async () => {
    const e = await awsError(app.send(new SignCommand({ KeyId: ed, Message: MESSAGE, SigningAlgorithm: 'ED25519_SHA_512', DryRun: true })));
    expect([e.name, e.status]).toEqual(['DryRunOperationException', 412]);
  });
});

describe('Encrypt and Decrypt (RSAES_OAEP)', () => {
  for (const [algorithm, hash, limit] of [['RSAES_OAEP_SHA_1', 'sha1', 214], ['RSAES_OAEP_SHA_256', 'sha256', 190]] as const) {
    it(`${algorithm}: Decrypt opens node:crypto ciphertext; Encrypt's limit is k − 2·hLen − 2 = ${limit}`, async () => {
      const plaintext = text(`secret for ${algorithm}`);
      const ciphertext = publicEncrypt({ key: await publicKey(rsaEnc), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, plaintext);
      const out = await app.send(new DecryptCommand({ KeyId: rsaEnc, CiphertextBlob: ciphertext, EncryptionAlgorithm: algorithm }));
      expect(Buffer.from(out.Plaintext!).equals(Buffer.from(plaintext))).toBe(true);
      expect(out.EncryptionAlgorithm).toBe(algorithm);
      expect(out.KeyId).toMatch(new RegExp(`:key/${rsaEnc}$`));

      const full = new Uint8Array(limit).fill(7);
      const enc = await app.send(new EncryptCommand({ KeyId: rsaEnc, Plaintext: full, EncryptionAlgorithm: algorithm }));
      expect(enc.CiphertextBlob!.length).toBe(256);
      const back = await app.send(new DecryptCommand({ KeyId: rsaEnc, CiphertextBlob: enc.CiphertextBlob!, EncryptionAlgorithm: algorithm }));
      expect(Buffer.from(back.Plaintext!).equals(Buffer.from(full))).toBe(true);
      const tooLong = await awsError(app.send(new EncryptCommand({ KeyId: rsaEnc, Plaintext: new Uint8Array(limit + 1), EncryptionAlgorithm: algorithm })));
      expect(tooLong.name).toBe('ValidationException');
      expect(tooLong.message).toMatch(new RegExp(`at most ${limit} bytes`));
    });
  }

  it('a ciphertext that does not decrypt is InvalidCiphertextException', async () => {
    const ciphertext = publicEncrypt({ key: await publicKey(rsaEnc), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, text('x'));
    const wrongAlg = await awsError(app.send(new DecryptCommand({ KeyId: rsaEnc, CiphertextBlob: ciphertext, EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' })));
    expect([wrongAlg.name, wrongAlg.status]).toEqual(['InvalidCiphertextException', 400]);
    const truncated = await awsError(app.send(new DecryptCommand({ KeyId: rsaEnc, CiphertextBlob: ciphertext.subarray(1), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })));
    expect(truncated.name).toBe('InvalidCiphertextException');
    const aboveModulus = await awsError(app.send(new DecryptCommand({ KeyId: rsaEnc, CiphertextBlob: new Uint8Array(256).fill(0xff), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })));
    expect(aboveModulus.name).toBe('InvalidCiphertextException');
  });

  it('needs an OAEP algorithm, an ENCRYPT_DECRYPT key, a KeyId (without one a ciphertext must be symmetric), and no encryption context', async () => {
    expect((await awsError(app.send(new EncryptCommand({ KeyId: rsaEnc, Plaintext: text('x') })))).name).toBe('InvalidKeyUsageException');
    expect((await awsError(app.send(new EncryptCommand({ KeyId: rsaSign, Plaintext: text('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })))).name).toBe('InvalidKeyUsageException');
    expect((await awsError(app.send(new EncryptCommand({ KeyId: ed, Plaintext: text('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })))).name).toBe('InvalidKeyUsageException');
    expect((await awsError(app.send(new DecryptCommand({ CiphertextBlob: new Uint8Array(256), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })))).name).toBe('InvalidKeyUsageException');
    expect((await awsError(app.send(new DecryptCommand({ CiphertextBlob: new Uint8Array(256) })))).name).toBe('InvalidCiphertextException');
    const ctx = await awsError(app.send(new EncryptCommand({ KeyId: rsaEnc, Plaintext: text('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256', EncryptionContext: { purpose: 'test' } })));
    expect(ctx.name).toBe('ValidationException');
    expect((await awsError(app.send(new EncryptCommand({ KeyId: rsaEnc, Plaintext: new Uint8Array(0), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })))).name).toBe('ValidationException');
  });
});

describe('principals', () => {
  it('every bootstrap principal authenticates; administrators and auditors may describe keys', async () => {
    for (const name of ['admin1', 'admin2', 'admin3', 'auditor']) {
      const out = await kmsClient(tc, name).send(new DescribeKeyCommand({ KeyId: ed }));
      expect(out.KeyMetadata!.KeyId).toBe(ed);
    }
  });
});
