// Every role × every KMS operation through the AWS SDK on a real cluster. Applications use keys
// whose policy grants it and nothing else; key administrators manage and never sign or
// decrypt; auditors read. Every refusal is AccessDeniedException naming the missing
// permission, and is in the gateway's audit log with its reason. Operations under quorum are
// refused with a proposal (quorum.test.ts follows them through). Key policies also restrict a
// key's algorithms and set its rate limit, which the signers enforce.
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateRandomCommand,
  GetKeyPolicyCommand,
  GetPublicKeyCommand,
  ListAliasesCommand,
  ListKeyPoliciesCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  PutKeyPolicyCommand,
  ScheduleKeyDeletionCommand,
  SignCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAliasCommand,
  UpdateKeyDescriptionCommand,
  VerifyCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { auditEntries, createKey, failure, kms } from './helpers.js';

let tc: TestCluster;
let sk: string; // Ed25519 signing key, default policy
let ek: string; // RSA encryption key, default policy
let ciphertext: Uint8Array;
let signature: Uint8Array;
let account: string;

const message = new TextEncoder().encode('matrix');
let n = 0;
const unique = (prefix: string) => `${prefix}-${++n}-${Date.now()}`;

type Outcome = 'ok' | 'denied' | 'quorum' | { error: string };
type Role = 'admin' | 'app' | 'auditor';
interface Row {
  op: string;
  call: (c: KMSClient) => Promise<unknown>;
  expect: Record<Role, Outcome>;
}

const ROWS: Row[] = [
  // One approval, the administrator's own request (issue #16): made at once.
  { op: 'CreateKey', call: (c) => c.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' })), expect: { admin: 'ok', app: 'denied', auditor: 'denied' } },
  { op: 'DescribeKey', call: (c) => c.send(new DescribeKeyCommand({ KeyId: sk })), expect: { admin: 'ok', app: 'ok', auditor: 'ok' } },
  { op: 'ListKeys', call: (c) => c.send(new ListKeysCommand({})), expect: { admin: 'ok', app: 'ok', auditor: 'ok' } },
  { op: 'EnableKey', call: (c) => c.send(new EnableKeyCommand({ KeyId: sk })), expect: { admin: 'ok', app: 'denied', auditor: 'denied' } },
  { op: 'DisableKey', call: (c) => c.send(new DisableKeyCommand({ KeyId: sk })), expect: { admin: 'quorum', app: 'denied', auditor: 'denied' } },
  { op: 'ScheduleKeyDeletion', call: (c) => c.send(new ScheduleKeyDeletionCommand({ KeyId: sk, PendingWindowInDays: 7 })), expect: { admin: 'quorum', app: 'denied', auditor: 'denied' } },
  { op: 'CancelKeyDeletion', call: (c) => c.send(new CancelKeyDeletionCommand({ KeyId: sk })), expect: { admin: { error: 'KMSInvalidStateException' }, app: 'denied', auditor: 'denied' } },
  { op: 'UpdateKeyDescription', call: (c) => c.send(new UpdateKeyDescriptionCommand({ KeyId: sk, Description: unique('d') })), expect: { admin: 'ok', app: 'denied', auditor: 'denied' } },
  { op: 'GetPublicKey', call: (c) => c.send(new GetPublicKeyCommand({ KeyId: sk })), expect: { admin: 'ok', app: 'ok', auditor: 'ok' } },
  { op: 'Sign', call: (c) => c.send(new SignCommand({ KeyId: sk, Message: message, SigningAlgorithm: 'ED25519_SHA_512' })), expect: { admin: 'denied', app: 'ok', auditor: 'denied' } },
  { op: 'Verify', call: (c) => c.send(new VerifyCommand({ KeyId: sk, Message: message, Signature: signature, SigningAlgorithm: 'ED25519_SHA_512' })), expect: { admin: 'denied', app: 'ok', auditor: 'denied' } },
  { op: 'Encrypt', call: (c) => c.send(new EncryptCommand({ KeyId: ek, Plaintext: message, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })), expect: { admin: 'denied', app: 'ok', auditor: 'denied' } },
  { op: 'Decrypt', call: (c) => c.send(new DecryptCommand({ KeyId: ek, CiphertextBlob: ciphertext, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })), expect: { admin: 'denied', app: 'ok', auditor: 'denied' } },
  { op: 'GenerateRandom', call: (c) => c.send(new GenerateRandomCommand({ NumberOfBytes: 8 })), expect: { admin: 'denied', app: 'ok', auditor: 'denied' } },
  { op: 'CreateAlias', call: (c) => c.send(new CreateAliasCommand({ AliasName: `alias/${unique('a')}`, TargetKeyId: sk })), expect: { admin: 'ok', app: 'denied', auditor: 'denied' } },
  {
    op: 'UpdateAlias',
    call: async (c) => {
      const name = `alias/${unique('u')}`;
      await kms(tc, 'admin2').send(new CreateAliasCommand({ AliasName: name, TargetKeyId: sk }));
      return c.send(new UpdateAliasCommand({ AliasName: name, TargetKeyId: sk }));
    },
    expect: { admin: 'ok', app: 'denied', auditor: 'denied' },
  },
  {
    op: 'DeleteAlias',
    call: async (c) => {
      const name = `alias/${unique('x')}`;
      await kms(tc, 'admin2').send(new CreateAliasCommand({ AliasName: name, TargetKeyId: sk }));
      return c.send(new DeleteAliasCommand({ AliasName: name }));
    },
    expect: { admin: 'ok', app: 'denied', auditor: 'denied' },
  },
  { op: 'ListAliases', call: (c) => c.send(new ListAliasesCommand({})), expect: { admin: 'ok', app: 'ok', auditor: 'ok' } },
  { op: 'TagResource', call: (c) => c.send(new TagResourceCommand({ KeyId: sk, Tags: [{ TagKey: 'k', TagValue: 'v' }] })), expect: { admin: 'ok', app: 'denied', auditor: 'denied' } },
  { op: 'UntagResource', call: (c) => c.send(new UntagResourceCommand({ KeyId: sk, TagKeys: ['k'] })), expect: { admin: 'ok', app: 'denied', auditor: 'denied' } },
  { op: 'ListResourceTags', call: (c) => c.send(new ListResourceTagsCommand({ KeyId: sk })), expect: { admin: 'ok', app: 'denied', auditor: 'ok' } },
  { op: 'GetKeyPolicy', call: (c) => c.send(new GetKeyPolicyCommand({ KeyId: sk })), expect: { admin: 'ok', app: 'denied', auditor: 'ok' } },
  {
    op: 'PutKeyPolicy',
    call: async (c) => c.send(new PutKeyPolicyCommand({ KeyId: sk, Policy: (await kms(tc, 'admin1').send(new GetKeyPolicyCommand({ KeyId: sk }))).Policy! })),
    expect: { admin: 'quorum', app: 'denied', auditor: 'denied' },
  },
  { op: 'ListKeyPolicies', call: (c) => c.send(new ListKeyPoliciesCommand({ KeyId: sk })), expect: { admin: 'ok', app: 'denied', auditor: 'ok' } },
];

const PRINCIPALS: [string, Role][] = [
  ['admin1', 'admin'],
  ['admin3', 'admin'],
  ['app', 'app'],
  ['auditor', 'auditor'],
];

beforeAll(async () => {
  tc = await startCluster();
  [sk, ek] = [await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' }), await createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' })];
  const app = kms(tc, 'app');
  signature = (await app.send(new SignCommand({ KeyId: sk, Message: message, SigningAlgorithm: 'ED25519_SHA_512' }))).Signature!;
  ciphertext = (await app.send(new EncryptCommand({ KeyId: ek, Plaintext: message, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))).CiphertextBlob!;
  account = (await app.send(new DescribeKeyCommand({ KeyId: sk }))).KeyMetadata!.AWSAccountId!;
}, 180_000);

afterAll(async () => {
  await tc?.destroy();
});

describe('every role × every KMS operation', () => {
  it('covers every operation the gateway implements', async () => {
    const { OPERATIONS } = await import('../../gateway/kms/ops/index.js');
    expect(ROWS.map((r) => r.op).sort()).toEqual(Object.keys(OPERATIONS).sort());
  });

  for (const [name, role] of PRINCIPALS) {
    for (const row of ROWS) {
      const want = row.expect[role];
      it(`${name} ${row.op}: ${typeof want === 'string' ? want : `allowed (then ${want.error})`}`, async () => {
        const p = row.call(kms(tc, name));
        if (want === 'ok') {
          await p;
          return;
        }
        const e = await failure(p);
        if (typeof want === 'object') {
          expect(e.name).toBe(want.error);
          return;
        }
        expect(e.name).toBe('AccessDeniedException');
        if (want === 'quorum') {
          expect(e.message).toMatch(new RegExp(`needs approval by \\d of the 3 administrators.*Proposal p-[0-9a-f]+ holds this request.*mpchsm approve p-[0-9a-f]+ --as <administrator>`));
        } else {
          expect(e.message).toContain(`principal ${name} is not allowed kms:${row.op}`);
          expect(e.message).toContain(`[missing: kms:${row.op}]`);
        }
      });
    }
  }

  it('key administrators never sign or decrypt, and are told so', async () => {
    const e = await failure(kms(tc, 'admin2').send(new DecryptCommand({ KeyId: ek, CiphertextBlob: ciphertext, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })));
    expect(e.message).toMatch(/key administrators never sign or decrypt/);
  });

  it('every refusal is in the gateway’s audit log with its reason', () => {
    const refused = auditEntries(tc, 'gateway').filter((e) => e.outcome === 'refused');
    const reasons = refused.map((e) => String(e.reason));
    expect(reasons).toContainEqual(expect.stringMatching(/^AccessDeniedException: principal admin1 is not allowed kms:Sign.*\[missing: kms:Sign\]/));
    expect(reasons).toContainEqual(expect.stringMatching(/^AccessDeniedException: principal auditor is not allowed kms:TagResource/));
    const proposed = refused.find((e) => e.op === 'DisableKey' && (e.principal as { name: string }).name === 'admin1');
    expect(proposed?.detail).toMatchObject({ proposal: expect.stringMatching(/^p-/) });
  });
});

describe('key policies', () => {
  const user = (n: string) => `arn:aws:iam::${account}:user/${n}`;

  it('a key whose policy grants the application nothing is not the application’s', async () => {
    const Policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: ['admin1', 'admin2', 'admin3'].map(user) }, Action: 'kms:*', Resource: '*' }] });
    const keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY', Policy });
    for (const call of [
      () => kms(tc, 'app').send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: 'ED25519_SHA_512' })),
      () => kms(tc, 'app').send(new DescribeKeyCommand({ KeyId: keyId })),
    ]) {
      const e = await failure(call());
      expect([e.name, e.message]).toEqual(['AccessDeniedException', expect.stringMatching(/the key policy grants arn:aws:iam::\d+:user\/app no kms:\w+ \[missing: kms:\w+\]/)]);
    }
  });

  it('restricts a key’s algorithms and rate, at every signer', async () => {
    const Policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: ['admin1', 'admin2', 'admin3'].map(user) }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Allow', Principal: { AWS: user('app') }, Action: ['kms:Sign', 'kms:DescribeKey'], Resource: '*' },
      ],
      mpchsm: { allowedAlgorithms: ['ED25519_SHA_512'], rateLimit: { perMinute: 2 } },
    });
    const keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY', Policy });
    const app = kms(tc, 'app');
    const ph = await failure(app.send(new SignCommand({ KeyId: keyId, Message: new Uint8Array(64), MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' })));
    expect(ph.message).toMatch(/allows only the algorithms ED25519_SHA_512, not ED25519_PH_SHA_512 \[missing: kms:Sign\]/);
    for (let i = 0; i < 2; i++) await app.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: 'ED25519_SHA_512' }));
    const limited = await failure(app.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: 'ED25519_SHA_512' })));
    expect([limited.name, limited.message]).toEqual(['AccessDeniedException', expect.stringMatching(/a signer refused: .*allows 2 uses per minute/)]);
  });
});
