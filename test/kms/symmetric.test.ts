// SYMMETRIC_DEFAULT keys through the KMS API on a real cluster, with @aws-sdk/client-kms: a key
// made by DKG with no whole key anywhere; Encrypt/Decrypt (KeyId optional), GenerateDataKey
// (WithoutPlaintext), GenerateDataKeyPair (WithoutPlaintext), ReEncrypt; and the refusals AWS
// gives: wrong context, tampered ciphertext, another key's ciphertext, a disabled key, HMAC keys.
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyRotationCommand,
  GetKeyRotationStatusCommand,
  ListKeyRotationsCommand,
  RotateKeyOnDemandCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GetPublicKeyCommand,
  ReEncryptCommand,
  SignCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditVerifyAtRest, startCluster, type TestCluster } from '../helpers/cluster.js';
import { approved } from '../policy-cluster/helpers.js';
import { awsError, kmsClient } from './kms-client.js';

const LONG = 300_000;
const text = (s: string) => new TextEncoder().encode(s);

let tc: TestCluster;
let app: KMSClient;
let admin: KMSClient;
let keyA = '';
let keyB = '';

beforeAll(async () => {
  tc = await startCluster();
  app = kmsClient(tc, 'app');
  admin = kmsClient(tc, 'admin1');
  // No KeySpec: AWS's default, a symmetric encryption key.
  keyA = (await admin.send(new CreateKeyCommand({ Description: 'a' }))).KeyMetadata!.KeyId!;
  keyB = (await admin.send(new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' }))).KeyMetadata!.KeyId!;
}, LONG);

afterAll(async () => {
  await tc?.destroy();
}, LONG);

describe('SYMMETRIC_DEFAULT keys', () => {
  it('CreateKey with no KeySpec makes a symmetric ENCRYPT_DECRYPT key; it has no public key', async () => {
    const { KeyMetadata: m } = await app.send(new DescribeKeyCommand({ KeyId: keyA }));
    expect(m).toMatchObject({ KeySpec: 'SYMMETRIC_DEFAULT', CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT', EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'] });
    expect((await awsError(app.send(new GetPublicKeyCommand({ KeyId: keyA })))).name).toBe('UnsupportedOperationException');
    expect((await awsError(app.send(new SignCommand({ KeyId: keyA, Message: text('x'), SigningAlgorithm: 'ECDSA_SHA_256' })))).name).toBe('InvalidKeyUsageException');
  });

  it('HMAC keys are not supported yet, and say so', async () => {
    const e = await awsError(admin.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })));
    expect(e.name).toBe('UnsupportedOperationException');
    expect(e.message).toMatch(/HMAC_256.*not support|not support.*HMAC_256/);
  });

  it('Encrypt and Decrypt, with and without KeyId; the context must match', async () => {
    const context = { purpose: 'test', tenant: '7' };
    const enc = await app.send(new EncryptCommand({ KeyId: keyA, Plaintext: text('hello symmetric'), EncryptionContext: context }));
    expect(enc.EncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT');
    expect(enc.KeyId).toMatch(new RegExp(`key/${keyA}$`));
    const blob = enc.CiphertextBlob!;
    for (const KeyId of [keyA, undefined]) {
      const dec = await app.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { tenant: '7', purpose: 'test' }, ...(KeyId ? { KeyId } : {}) }));
      expect(new TextDecoder().decode(dec.Plaintext)).toBe('hello symmetric');
      expect(dec.KeyId).toMatch(new RegExp(`key/${keyA}$`));
    }
    for (const EncryptionContext of [undefined, { purpose: 'test' }, { purpose: 'test', tenant: '8' }] as (Record<string, string> | undefined)[]) {
      expect((await awsError(app.send(new DecryptCommand({ CiphertextBlob: blob, ...(EncryptionContext ? { EncryptionContext } : {}) })))).name).toBe('InvalidCiphertextException');
    }
    expect((await awsError(app.send(new EncryptCommand({ KeyId: keyA, Plaintext: text('x'), DryRun: true })))).name).toBe('DryRunOperationException');
    expect((await awsError(app.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context, DryRun: true })))).name).toBe('DryRunOperationException');
    // Two encryptions of the same plaintext differ (each its own nonce, hence key).
    const again = await app.send(new EncryptCommand({ KeyId: keyA, Plaintext: text('hello symmetric'), EncryptionContext: context }));
    expect(Buffer.from(again.CiphertextBlob!).equals(Buffer.from(blob))).toBe(false);
  });

  it('a tampered ciphertext, one of another key and garbage are refused as AWS refuses them', async () => {
    const blob = (await app.send(new EncryptCommand({ KeyId: keyA, Plaintext: text('p') }))).CiphertextBlob!;
    for (const at of [30, blob.length - 20, blob.length - 1]) {
      const bad = Uint8Array.from(blob);
      bad[at]! ^= 1;
      expect((await awsError(app.send(new DecryptCommand({ CiphertextBlob: bad })))).name).toBe('InvalidCiphertextException');
    }
    expect((await awsError(app.send(new DecryptCommand({ CiphertextBlob: blob, KeyId: keyB })))).name).toBe('IncorrectKeyException');
    expect((await awsError(app.send(new DecryptCommand({ CiphertextBlob: text('not a blob at all, not at all, really not') })))).name).toBe('InvalidCiphertextException');
  });

  it('GenerateDataKey and GenerateDataKeyWithoutPlaintext: the blob decrypts to the data key', async () => {
    const dk = await app.send(new GenerateDataKeyCommand({ KeyId: keyA, KeySpec: 'AES_256', EncryptionContext: { file: 'f1' } }));
    expect(dk.Plaintext!.length).toBe(32);
    const back = await app.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob!, EncryptionContext: { file: 'f1' } }));
    expect(Buffer.from(back.Plaintext!).equals(Buffer.from(dk.Plaintext!))).toBe(true);
    const n = await app.send(new GenerateDataKeyCommand({ KeyId: keyA, NumberOfBytes: 64 }));
    expect(n.Plaintext!.length).toBe(64);
    const wp = await app.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA, KeySpec: 'AES_128' }));
    expect('Plaintext' in wp).toBe(false);
    expect((await app.send(new DecryptCommand({ CiphertextBlob: wp.CiphertextBlob! }))).Plaintext!.length).toBe(16);
    expect((await awsError(app.send(new GenerateDataKeyCommand({ KeyId: keyA })))).name).toBe('ValidationException');
  });

  it('GenerateDataKeyPair(WithoutPlaintext): the decrypted private key matches the public key', async () => {
    const pair = await app.send(new GenerateDataKeyPairCommand({ KeyId: keyA, KeyPairSpec: 'ECC_NIST_P256', EncryptionContext: { k: 'v' } }));
    const priv = (await app.send(new DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob!, EncryptionContext: { k: 'v' } }))).Plaintext!;
    expect(Buffer.from(priv).equals(Buffer.from(pair.PrivateKeyPlaintext!))).toBe(true);
    const sig = nodeSign('sha256', text('m'), createPrivateKey({ key: Buffer.from(priv), format: 'der', type: 'pkcs8' }));
    expect(nodeVerify('sha256', text('m'), createPublicKey({ key: Buffer.from(pair.PublicKey!), format: 'der', type: 'spki' }), sig)).toBe(true);
    const wp = await app.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: keyA, KeyPairSpec: 'ECC_NIST_EDWARDS25519' }));
    expect('PrivateKeyPlaintext' in wp).toBe(false);
    const ed = (await app.send(new DecryptCommand({ CiphertextBlob: wp.PrivateKeyCiphertextBlob! }))).Plaintext!;
    expect(createPrivateKey({ key: Buffer.from(ed), format: 'der', type: 'pkcs8' }).asymmetricKeyType).toBe('ed25519');
  });

  it('ReEncrypt moves a ciphertext to another key and context', async () => {
    const blob = (await app.send(new EncryptCommand({ KeyId: keyA, Plaintext: text('moving'), EncryptionContext: { from: 'a' } }))).CiphertextBlob!;
    const re = await app.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceEncryptionContext: { from: 'a' }, DestinationKeyId: keyB, DestinationEncryptionContext: { to: 'b' } }));
    expect(re.SourceKeyId).toMatch(new RegExp(`key/${keyA}$`));
    expect(re.KeyId).toMatch(new RegExp(`key/${keyB}$`));
    const dec = await app.send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob!, KeyId: keyB, EncryptionContext: { to: 'b' } }));
    expect(new TextDecoder().decode(dec.Plaintext)).toBe('moving');
    expect((await awsError(app.send(new ReEncryptCommand({ CiphertextBlob: blob, DestinationKeyId: keyB })))).name).toBe('InvalidCiphertextException');
    expect((await awsError(app.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceKeyId: keyB, SourceEncryptionContext: { from: 'a' }, DestinationKeyId: keyB })))).name).toBe('IncorrectKeyException');
  });

  it('a disabled key neither encrypts nor decrypts; enabled again, its old ciphertexts decrypt', async () => {
    const blob = (await app.send(new EncryptCommand({ KeyId: keyB, Plaintext: text('kept') }))).CiphertextBlob!;
    await approved(tc, admin.send(new DisableKeyCommand({ KeyId: keyB })), ['admin1', 'admin2']);
    expect((await awsError(app.send(new EncryptCommand({ KeyId: keyB, Plaintext: text('x') })))).name).toBe('DisabledException');
    expect((await awsError(app.send(new DecryptCommand({ CiphertextBlob: blob })))).name).toBe('DisabledException');
    await admin.send(new EnableKeyCommand({ KeyId: keyB }));
    expect(new TextDecoder().decode((await app.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext)).toBe('kept');
  });

  it('rotation: on demand and enabled; old ciphertexts still decrypt, new ones use the new material', async () => {
    const old = (await app.send(new EncryptCommand({ KeyId: keyA, Plaintext: text('before rotation') }))).CiphertextBlob!;
    expect(await admin.send(new GetKeyRotationStatusCommand({ KeyId: keyA }))).toMatchObject({ KeyRotationEnabled: false });
    await admin.send(new EnableKeyRotationCommand({ KeyId: keyA, RotationPeriodInDays: 90 }));
    const status = await admin.send(new GetKeyRotationStatusCommand({ KeyId: keyA }));
    expect(status).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 90 });
    expect(status.NextRotationDate!.getTime()).toBeGreaterThan(Date.now() + 89 * 86_400_000);
    expect((await admin.send(new ListKeyRotationsCommand({ KeyId: keyA }))).Rotations).toEqual([]);
    await admin.send(new RotateKeyOnDemandCommand({ KeyId: keyA }));
    await admin.send(new RotateKeyOnDemandCommand({ KeyId: keyA }));
    const list = await admin.send(new ListKeyRotationsCommand({ KeyId: keyA, Limit: 1 }));
    expect(list.Rotations).toHaveLength(1);
    expect(list.Rotations![0]).toMatchObject({ RotationType: 'ON_DEMAND' });
    expect(list.Truncated).toBe(true);
    expect((await admin.send(new ListKeyRotationsCommand({ KeyId: keyA, Marker: list.NextMarker! }))).Rotations).toHaveLength(1);
    // The old blob names material 1; a new one the newest material (header bytes 21..24).
    const fresh = (await app.send(new EncryptCommand({ KeyId: keyA, Plaintext: text('after rotation') }))).CiphertextBlob!;
    const material = (b: Uint8Array) => Buffer.from(b).readUInt32BE(21);
    expect(material(old)).toBe(1);
    expect(material(fresh)).not.toBe(1);
    expect(new TextDecoder().decode((await app.send(new DecryptCommand({ CiphertextBlob: old }))).Plaintext)).toBe('before rotation');
    expect(new TextDecoder().decode((await app.send(new DecryptCommand({ CiphertextBlob: fresh }))).Plaintext)).toBe('after rotation');
    await admin.send(new DisableKeyRotationCommand({ KeyId: keyA }));
    expect(await admin.send(new GetKeyRotationStatusCommand({ KeyId: keyA }))).toMatchObject({ KeyRotationEnabled: false });
    expect(new TextDecoder().decode((await app.send(new DecryptCommand({ CiphertextBlob: fresh }))).Plaintext)).toBe('after rotation');
  });

  it('a refresh of a symmetric key\'s shares (mpchsm key refresh) keeps every ciphertext decrypting', async () => {
    const blob = (await app.send(new EncryptCommand({ KeyId: keyB, Plaintext: text('across a refresh') }))).CiphertextBlob!;
    const out = JSON.parse((await tc.mpchsm('key', 'refresh', keyB, '--as', 'admin1', '--dir', tc.dir, '--json')).stdout);
    expect(out).toEqual({ KeyId: keyB, Holders: [1, 2, 3] });
    expect(new TextDecoder().decode((await app.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext)).toBe('across a refresh');
    const after = (await app.send(new EncryptCommand({ KeyId: keyB, Plaintext: text('after') }))).CiphertextBlob!;
    expect(new TextDecoder().decode((await app.send(new DecryptCommand({ CiphertextBlob: after }))).Plaintext)).toBe('after');
  });

  it('an asymmetric key does not rotate; an application may not rotate a key', async () => {
    const rsa = (await admin.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
    expect((await awsError(admin.send(new EnableKeyRotationCommand({ KeyId: rsa })))).name).toBe('UnsupportedOperationException');
    expect((await awsError(admin.send(new RotateKeyOnDemandCommand({ KeyId: rsa })))).name).toBe('UnsupportedOperationException');
    expect((await awsError(app.send(new RotateKeyOnDemandCommand({ KeyId: keyA })))).name).toBe('AccessDeniedException');
  });

  it('audit verify holds: every signer release of these requests is in the gateway\'s log, the same request named alike', async () => {
    const r = await auditVerifyAtRest(tc);
    expect(r.code, r.out).toBe(0);
    // And doctor's key inventory finds the symmetric keys where the gateway says they are.
    const d = await tc.mpchsmStatus('doctor', '--dir', tc.dir);
    expect(d.out).not.toMatch(new RegExp(`${keyA}|${keyB}`));
  }, 120_000);

  it('a key administrator may not encrypt, decrypt or make data keys', async () => {
    const blob = (await app.send(new EncryptCommand({ KeyId: keyA, Plaintext: text('p') }))).CiphertextBlob!;
    expect((await awsError(admin.send(new DecryptCommand({ CiphertextBlob: blob })))).name).toBe('AccessDeniedException');
    expect((await awsError(admin.send(new GenerateDataKeyCommand({ KeyId: keyA, NumberOfBytes: 32 })))).name).toBe('AccessDeniedException');
  });
});
