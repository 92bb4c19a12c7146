// Issue #20: every AWS KMS operation the SDK offers and mpchsm does not implement answers
// UnsupportedOperationException (400) naming it, while a target that is no KMS operation stays
// UnknownOperationException; a GrantTokens value is refused with InvalidGrantTokenException
// (no grants are issued here) on every operation that takes one, never silently accepted.
import * as kms from '@aws-sdk/client-kms';
import { DescribeKeyCommand, GetPublicKeyCommand, SignCommand, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_KMS_OPERATIONS } from '../../gateway/kms/aws-operations.js';
import { OPERATIONS } from '../../gateway/kms/ops/index.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { createKey } from '../policy-cluster/helpers.js';
import { awsError, kmsClient } from './kms-client.js';
import { signRequest } from './sign-request.js';

type AnyCommand = new (input: object) => Parameters<KMSClient['send']>[0];
/** The SDK's commands by operation name (ListKeysCommand → ListKeys). */
const SDK_COMMANDS = new Map(
  Object.entries(kms)
    .filter(([name, v]) => name.endsWith('Command') && typeof v === 'function' && 'getEndpointParameterInstructions' in v)
    .map(([name, v]) => [name.slice(0, -'Command'.length), v as unknown as AnyCommand]),
);

let tc: TestCluster;
let admin: KMSClient;
let app: KMSClient;
let keyId: string;

beforeAll(async () => {
  tc = await startCluster();
  admin = kmsClient(tc, 'admin1');
  app = kmsClient(tc, 'app');
  keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
}, 120_000);

afterAll(async () => {
  admin?.destroy();
  app?.destroy();
  await tc?.destroy();
});

describe('operations mpchsm does not implement', () => {
  it("the gateway's list of AWS KMS operations is the SDK's", () => {
    expect(SDK_COMMANDS.size).toBeGreaterThan(50);
    expect([...AWS_KMS_OPERATIONS].sort()).toEqual([...SDK_COMMANDS.keys()].sort());
    for (const name of Object.keys(OPERATIONS)) expect(AWS_KMS_OPERATIONS.has(name), name).toBe(true);
  });

  it('each answers UnsupportedOperationException (400) naming it, through the SDK', async () => {
    const missing = [...SDK_COMMANDS].filter(([name]) => !Object.hasOwn(OPERATIONS, name));
    expect(missing.map(([n]) => n)).toEqual(expect.arrayContaining(['CreateGrant', 'ListGrants', 'GenerateMac', 'GetParametersForImport', 'ReplicateKey', 'ConnectCustomKeyStore']));
    for (const [name, Command] of missing) {
      const e = await awsError(admin.send(new Command({ KeyId: keyId })));
      expect(e.name, name).toBe('UnsupportedOperationException');
      expect(e.status, name).toBe(400);
      expect(e.message, name).toContain(name);
    }
  }, 60_000);

  it('a target that is not a KMS operation stays UnknownOperationException', async () => {
    const p = tc.principal('admin1');
    for (const target of ['TrentService.Frobnicate', 'TrentService.createGrant', 'TrentService.hasOwnProperty']) {
      const signed = await signRequest(
        { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY },
        { host: new URL(tc.endpoint).host, target, body: '{}', region: p.AWS_REGION },
      );
      const { host: _host, ...headers } = signed.headers;
      const res = await fetch(`${tc.endpoint}/`, { method: 'POST', headers, body: signed.body });
      expect(res.status, target).toBe(400);
      expect(((await res.json()) as { __type: string }).__type, target).toBe('UnknownOperationException');
    }
  });
});

describe('GrantTokens', () => {
  it('a token is refused with InvalidGrantTokenException on every operation that takes GrantTokens', async () => {
    const message = Buffer.from('grant tokens');
    const signature = (await app.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: 'ED25519_SHA_512' }))).Signature!;
    const GrantTokens = ['AQpAM2RhZTk1MGMyNTk2ZmZmMzEyYWVhOWViN2I1MWM0ZmFlYzdjZWJhNzJiYjQ3MWE5MDk2ZGFiOGVlYWRkNzMxMBKiAQEBAgB4'];
    const calls: [string, () => Promise<unknown>][] = [
      ['Sign', () => app.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: 'ED25519_SHA_512', GrantTokens }))],
      ['Verify', () => app.send(new kms.VerifyCommand({ KeyId: keyId, Message: message, Signature: signature, SigningAlgorithm: 'ED25519_SHA_512', GrantTokens }))],
      ['GetPublicKey', () => app.send(new GetPublicKeyCommand({ KeyId: keyId, GrantTokens }))],
      ['DescribeKey', () => app.send(new DescribeKeyCommand({ KeyId: keyId, GrantTokens }))],
      ['Encrypt', () => app.send(new kms.EncryptCommand({ KeyId: keyId, Plaintext: message, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256', GrantTokens }))],
      ['Decrypt', () => app.send(new kms.DecryptCommand({ KeyId: keyId, CiphertextBlob: new Uint8Array(256), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256', GrantTokens }))],
    ];
    for (const [name, call] of calls) {
      const e = await awsError(call());
      expect(e.name, name).toBe('InvalidGrantTokenException');
      expect(e.status, name).toBe(400);
      expect(e.message, name).toMatch(/grant/i);
    }
  });

  it('no tokens (an empty list) is accepted; other validation errors still come first', async () => {
    expect((await app.send(new DescribeKeyCommand({ KeyId: keyId, GrantTokens: [] }))).KeyMetadata?.KeyId).toBe(keyId);
    const e = await awsError(app.send(new SignCommand({ KeyId: keyId, Message: new Uint8Array(0), SigningAlgorithm: 'ED25519_SHA_512', GrantTokens: ['x'] })));
    expect(e.name).toBe('ValidationException');
  });
});
