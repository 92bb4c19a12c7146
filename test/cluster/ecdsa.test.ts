// Threshold ECDSA (DKLs23) through the KMS facade on a real cluster: P-256, P-384 and
// secp256k1 keys are born by distributed key generation (under the CreateKey approval) and sign
// as standard ECDSA (DER).
import { createPublicKey, verify } from 'node:crypto';
import { GetPublicKeyCommand, KMSClient, SignCommand, VerifyCommand } from '@aws-sdk/client-kms';
import { p256, p384 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawPublicKeyFromSpki } from '../../contract/keys/spki.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { createKey } from '../policy-cluster/helpers.js';

let tc: TestCluster;
const client = (name: string) => {
  const p = tc.principal(name);
  return new KMSClient({ endpoint: p.MPCHSM_KMS_ENDPOINT, region: p.AWS_REGION, credentials: { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY }, maxAttempts: 1 });
};

beforeAll(async () => {
  tc = await startCluster();
}, 120_000);

afterAll(async () => {
  await tc?.destroy();
});

const CASES = [
  { spec: 'ECC_NIST_P256', algorithm: 'ECDSA_SHA_256', hash: sha256, node: 'sha256', noble: p256 },
  { spec: 'ECC_NIST_P384', algorithm: 'ECDSA_SHA_384', hash: sha384, node: 'sha384', noble: p384 },
  { spec: 'ECC_SECG_P256K1', algorithm: 'ECDSA_SHA_256', hash: sha256, node: 'sha256', noble: secp256k1 },
] as const;

describe('threshold ECDSA through the KMS API', () => {
  for (const c of CASES) {
    it(`${c.spec}: DKG, then RAW and DIGEST signatures that OpenSSL and noble verify`, async () => {
      const app = client('app');
      const keyId = await createKey(tc, { KeySpec: c.spec, KeyUsage: 'SIGN_VERIFY' });
      const spki = Buffer.from((await app.send(new GetPublicKeyCommand({ KeyId: keyId }))).PublicKey!);
      const point = rawPublicKeyFromSpki(c.spec, spki);
      for (const messageType of ['RAW', 'DIGEST'] as const) {
        const message = Buffer.from(`threshold ecdsa ${messageType} ${Math.random()}`);
        const digest = c.hash(message);
        const out = await app.send(new SignCommand({ KeyId: keyId, Message: messageType === 'RAW' ? message : digest, MessageType: messageType, SigningAlgorithm: c.algorithm }));
        const der = Buffer.from(out.Signature!);
        expect(c.noble.verify(der, digest, point, { prehash: false, format: 'der', lowS: false })).toBe(true);
        if (c.spec !== 'ECC_SECG_P256K1') expect(verify(c.node, message, createPublicKey({ key: spki, format: 'der', type: 'spki' }), der)).toBe(true);
        const checked = await app.send(new VerifyCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', Signature: der, SigningAlgorithm: c.algorithm }));
        expect(checked.SignatureValid).toBe(true);
      }
    }, 60_000);
  }
});
