// Key management through the KMS API with @aws-sdk/client-kms against a real cluster: listing
// and paging, aliases, key states, tags, key policies and descriptions. Under the default
// governance CreateKey needs one administrator's approval and DisableKey, ScheduleKeyDeletion
// and PutKeyPolicy two: those go through `mpchsm approve` (test/policy-cluster/helpers.ts);
// reads of tags and policies are the auditor's (applications may not).
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
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
  type KMSClient,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { approve, approved, createKey, failure, proposalIn } from '../policy-cluster/helpers.js';
import { awsError, kmsClient } from './kms-client.js';

let tc: TestCluster;
let admin: KMSClient;
let app: KMSClient;
let auditor: KMSClient;
let k1: string; // Ed25519, created with tags and a policy
let k2: string; // Ed25519
let k3: string; // Ed25519, for state changes
let enc: string; // RSA ENCRYPT_DECRYPT
let arn: (keyId: string) => string;

// Everyone everything, within their role's ceiling.
const POLICY = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: '*' }, Action: 'kms:*', Resource: '*' }] });
const msg = new TextEncoder().encode('m');

beforeAll(async () => {
  tc = await startCluster();
  admin = kmsClient(tc, 'admin1');
  app = kmsClient(tc, 'app');
  auditor = kmsClient(tc, 'auditor');
  const ed = (extra: object = {}) => createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY', ...extra });
  [k1, k2, k3, enc] = await Promise.all([
    ed({ Tags: [{ TagKey: 'team', TagValue: 'payments' }, { TagKey: 'env', TagValue: 'test' }], Policy: POLICY }),
    ed(),
    ed(),
    createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }),
  ]);
  const sample = (await app.send(new DescribeKeyCommand({ KeyId: k1 }))).KeyMetadata!.Arn!;
  arn = (keyId) => sample.replace(/key\/.*$/, `key/${keyId}`);
}, 120_000);

afterAll(async () => {
  await tc?.destroy();
});

describe('ListKeys', () => {
  it('pages with Limit/Marker through every key exactly once', async () => {
    const seen: string[] = [];
    let Marker: string | undefined;
    do {
      const out = await app.send(new ListKeysCommand({ Limit: 1, Marker }));
      expect(out.Keys!.length).toBeLessThanOrEqual(1);
      for (const k of out.Keys!) {
        expect(k.KeyArn).toBe(arn(k.KeyId!));
        seen.push(k.KeyId!);
      }
      expect(out.Truncated).toBe(out.NextMarker !== undefined);
      Marker = out.NextMarker;
    } while (Marker);
    expect(seen.sort()).toEqual([k1, k2, k3, enc].sort());
    const all = await app.send(new ListKeysCommand({}));
    expect(all.Truncated).toBe(false);
    expect(all.Keys!.map((k) => k.KeyId)).toEqual(expect.arrayContaining([k1, k2, k3, enc]));
  });

  it('refuses a bad Marker and an out-of-range Limit', async () => {
    expect((await awsError(app.send(new ListKeysCommand({ Marker: 'bm90LWEtbWFya2Vy==' })))).name).toBe('InvalidMarkerException');
    expect((await awsError(app.send(new ListKeysCommand({ Limit: 0 })))).name).toBe('ValidationException');
    expect((await awsError(app.send(new ListKeysCommand({ Limit: 1001 })))).name).toBe('ValidationException');
  });
});

describe('aliases', () => {
  it('CreateAlias names a key for DescribeKey, Sign and GetPublicKey (by name or ARN)', async () => {
    await admin.send(new CreateAliasCommand({ AliasName: 'alias/payments-signing', TargetKeyId: k1 }));
    await admin.send(new CreateAliasCommand({ AliasName: 'alias/second', TargetKeyId: arn(k1) }));
    const aliasArn = arn(k1).replace(/key\/.*$/, 'alias/payments-signing');
    for (const KeyId of ['alias/payments-signing', aliasArn, 'alias/second']) {
      expect((await app.send(new DescribeKeyCommand({ KeyId }))).KeyMetadata!.KeyId).toBe(k1);
    }
    expect((await app.send(new SignCommand({ KeyId: 'alias/payments-signing', Message: msg, SigningAlgorithm: 'ED25519_SHA_512' }))).KeyId).toBe(arn(k1));
    expect((await app.send(new GetPublicKeyCommand({ KeyId: aliasArn }))).KeyId).toBe(arn(k1));
  });

  it('refuses duplicates, reserved and malformed names, and aliases as targets', async () => {
    const dup = await awsError(admin.send(new CreateAliasCommand({ AliasName: 'alias/payments-signing', TargetKeyId: k2 })));
    expect([dup.name, dup.status]).toEqual(['AlreadyExistsException', 400]);
    expect((await awsError(admin.send(new CreateAliasCommand({ AliasName: 'alias/aws/ebs', TargetKeyId: k2 })))).name).toBe('ValidationException');
    expect((await awsError(admin.send(new CreateAliasCommand({ AliasName: 'payments', TargetKeyId: k2 })))).name).toBe('ValidationException');
    expect((await awsError(admin.send(new CreateAliasCommand({ AliasName: 'alias/bad name', TargetKeyId: k2 })))).name).toBe('ValidationException');
    expect((await awsError(admin.send(new CreateAliasCommand({ AliasName: 'alias/x', TargetKeyId: 'alias/second' })))).name).toBe('NotFoundException');
    expect((await awsError(admin.send(new CreateAliasCommand({ AliasName: 'alias/x', TargetKeyId: '0c6b7a1e-0000-4000-8000-000000000000' })))).name).toBe('NotFoundException');
  });

  it('UpdateAlias moves an alias to a key of the same usage only', async () => {
    await admin.send(new UpdateAliasCommand({ AliasName: 'alias/second', TargetKeyId: k2 }));
    expect((await app.send(new DescribeKeyCommand({ KeyId: 'alias/second' }))).KeyMetadata!.KeyId).toBe(k2);
    const usage = await awsError(admin.send(new UpdateAliasCommand({ AliasName: 'alias/second', TargetKeyId: enc })));
    expect(usage.name).toBe('ValidationException');
    expect((await awsError(admin.send(new UpdateAliasCommand({ AliasName: 'alias/none', TargetKeyId: k2 })))).name).toBe('NotFoundException');
  });

  it('ListAliases lists all, or one key’s, with paging', async () => {
    await admin.send(new CreateAliasCommand({ AliasName: 'alias/third', TargetKeyId: k2 }));
    const all = await app.send(new ListAliasesCommand({}));
    expect(all.Aliases!.map((a) => a.AliasName)).toEqual(['alias/payments-signing', 'alias/second', 'alias/third']);
    const first = all.Aliases![0]!;
    expect(first.TargetKeyId).toBe(k1);
    expect(first.AliasArn).toBe(arn(k1).replace(/key\/.*$/, 'alias/payments-signing'));
    expect(first.CreationDate).toBeInstanceOf(Date);
    expect(first.LastUpdatedDate).toBeInstanceOf(Date);
    const ofK2 = await app.send(new ListAliasesCommand({ KeyId: k2 }));
    expect(ofK2.Aliases!.map((a) => a.AliasName)).toEqual(['alias/second', 'alias/third']);
    const p1 = await app.send(new ListAliasesCommand({ Limit: 2 }));
    expect([p1.Aliases!.length, p1.Truncated]).toEqual([2, true]);
    const p2 = await app.send(new ListAliasesCommand({ Limit: 2, Marker: p1.NextMarker }));
    expect([p2.Aliases!.map((a) => a.AliasName), p2.Truncated]).toEqual([['alias/third'], false]);
    expect((await awsError(app.send(new ListAliasesCommand({ KeyId: 'alias/second' })))).name).toBe('NotFoundException');
  });

  it('DeleteAlias removes the name, not the key', async () => {
    await admin.send(new DeleteAliasCommand({ AliasName: 'alias/third' }));
    expect((await awsError(app.send(new DescribeKeyCommand({ KeyId: 'alias/third' })))).name).toBe('NotFoundException');
    expect((await app.send(new DescribeKeyCommand({ KeyId: k2 }))).KeyMetadata!.KeyState).toBe('Enabled');
    expect((await awsError(admin.send(new DeleteAliasCommand({ AliasName: 'alias/third' })))).name).toBe('NotFoundException');
  });
});

describe('key states', () => {
  it('DisableKey: DisabledException for use, EnableKey restores', async () => {
    await approved(tc, admin.send(new DisableKeyCommand({ KeyId: k3 })), ['admin1', 'admin2']);
    const m = (await app.send(new DescribeKeyCommand({ KeyId: k3 }))).KeyMetadata!;
    expect([m.Enabled, m.KeyState]).toEqual([false, 'Disabled']);
    const sign = await awsError(app.send(new SignCommand({ KeyId: k3, Message: msg, SigningAlgorithm: 'ED25519_SHA_512' })));
    expect([sign.name, sign.message]).toEqual(['DisabledException', `${arn(k3)} is disabled.`]);
    expect((await awsError(app.send(new GetPublicKeyCommand({ KeyId: k3 })))).name).toBe('DisabledException');
    await admin.send(new EnableKeyCommand({ KeyId: arn(k3) }));
    expect((await app.send(new SignCommand({ KeyId: k3, Message: msg, SigningAlgorithm: 'ED25519_SHA_512' }))).Signature!.length).toBe(64);
  });

  it('management operations take key ids or ARNs, not aliases', async () => {
    await admin.send(new CreateAliasCommand({ AliasName: 'alias/state-key', TargetKeyId: k3 }));
    expect((await awsError(admin.send(new DisableKeyCommand({ KeyId: 'alias/state-key' })))).name).toBe('NotFoundException');
  });

  it('ScheduleKeyDeletion (7–30 days) → PendingDeletion; CancelKeyDeletion → Disabled', async () => {
    for (const PendingWindowInDays of [6, 31]) {
      expect((await awsError(admin.send(new ScheduleKeyDeletionCommand({ KeyId: k3, PendingWindowInDays })))).name).toBe('ValidationException');
    }
    const out = await approved(tc, admin.send(new ScheduleKeyDeletionCommand({ KeyId: k3, PendingWindowInDays: 7 })), ['admin1', 'admin3']);
    expect(out).toMatchObject({ KeyId: arn(k3), KeyState: 'PendingDeletion', PendingWindowInDays: 7 });
    const deletionDate = (out.DeletionDate as number) * 1000; // the approval's answer is JSON: epoch seconds
    expect(Math.abs(deletionDate - (Date.now() + 7 * 86_400_000))).toBeLessThan(120_000);
    const m = (await app.send(new DescribeKeyCommand({ KeyId: k3 }))).KeyMetadata!;
    expect([m.KeyState, m.Enabled, m.DeletionDate?.getTime()]).toEqual(['PendingDeletion', false, deletionDate]);

    const pending = `${arn(k3)} is pending deletion.`;
    const sign = await awsError(app.send(new SignCommand({ KeyId: 'alias/state-key', Message: msg, SigningAlgorithm: 'ED25519_SHA_512' })));
    expect([sign.name, sign.message]).toEqual(['KMSInvalidStateException', pending]);
    // Operations under quorum are proposed first; executing them then fails the same way.
    for (const call of [() => admin.send(new DisableKeyCommand({ KeyId: k3 })), () => admin.send(new ScheduleKeyDeletionCommand({ KeyId: k3 }))]) {
      const id = proposalIn(await failure(call()));
      await approve(tc, id, 'admin1');
      await expect(approve(tc, id, 'admin2')).rejects.toThrow(/KMSInvalidStateException: proposal p-[0-9a-f]+ was approved, but executing it failed: .* is pending deletion/);
    }
    for (const call of [
      () => admin.send(new EnableKeyCommand({ KeyId: k3 })),
      () => admin.send(new TagResourceCommand({ KeyId: k3, Tags: [{ TagKey: 'a', TagValue: 'b' }] })),
      () => admin.send(new UntagResourceCommand({ KeyId: k3, TagKeys: ['a'] })),
      () => admin.send(new UpdateKeyDescriptionCommand({ KeyId: k3, Description: 'x' })),
      () => admin.send(new CreateAliasCommand({ AliasName: 'alias/doomed', TargetKeyId: k3 })),
      () => app.send(new GetPublicKeyCommand({ KeyId: k3 })),
    ]) {
      expect((await awsError(call())).name).toBe('KMSInvalidStateException');
    }
    // Reading it is still allowed.
    expect((await auditor.send(new ListResourceTagsCommand({ KeyId: k3 }))).Tags).toEqual([]);
    expect((await auditor.send(new GetKeyPolicyCommand({ KeyId: k3 }))).Policy).toBeDefined();

    expect((await admin.send(new CancelKeyDeletionCommand({ KeyId: k3 }))).KeyId).toBe(arn(k3));
    const after = (await app.send(new DescribeKeyCommand({ KeyId: k3 }))).KeyMetadata!;
    expect([after.KeyState, after.Enabled, after.DeletionDate]).toEqual(['Disabled', false, undefined]);
    const again = await awsError(admin.send(new CancelKeyDeletionCommand({ KeyId: k3 })));
    expect([again.name, again.message]).toEqual(['KMSInvalidStateException', `${arn(k3)} is not pending deletion.`]);
    await admin.send(new EnableKeyCommand({ KeyId: k3 }));
    expect((await app.send(new DescribeKeyCommand({ KeyId: k3 }))).KeyMetadata!.KeyState).toBe('Enabled');
  });

  it('key state survives a gateway restart', async () => {
    await approved(tc, admin.send(new DisableKeyCommand({ KeyId: k2 })), ['admin2', 'admin3']);
    await tc.down();
    await tc.up();
    // New clients: the old ones' kept-alive connections died with the gateway.
    [admin, app, auditor] = [kmsClient(tc, 'admin1'), kmsClient(tc, 'app'), kmsClient(tc, 'auditor')];
    expect((await app.send(new DescribeKeyCommand({ KeyId: k2 }))).KeyMetadata!.KeyState).toBe('Disabled');
    expect((await app.send(new DescribeKeyCommand({ KeyId: 'alias/payments-signing' }))).KeyMetadata!.KeyId).toBe(k1);
    expect((await auditor.send(new GetKeyPolicyCommand({ KeyId: k1 }))).Policy).toBe(POLICY);
    await admin.send(new EnableKeyCommand({ KeyId: k2 }));
  });
});

describe('tags', () => {
  it('keeps tags given at creation; TagResource adds or replaces, UntagResource removes', async () => {
    const initial = await auditor.send(new ListResourceTagsCommand({ KeyId: k1 }));
    expect(initial.Tags).toEqual([{ TagKey: 'env', TagValue: 'test' }, { TagKey: 'team', TagValue: 'payments' }]);
    await admin.send(new TagResourceCommand({ KeyId: arn(k1), Tags: [{ TagKey: 'env', TagValue: 'prod' }, { TagKey: 'owner', TagValue: '' }] }));
    const p1 = await auditor.send(new ListResourceTagsCommand({ KeyId: k1, Limit: 2 }));
    expect([p1.Tags, p1.Truncated]).toEqual([[{ TagKey: 'env', TagValue: 'prod' }, { TagKey: 'owner', TagValue: '' }], true]);
    const p2 = await auditor.send(new ListResourceTagsCommand({ KeyId: k1, Limit: 2, Marker: p1.NextMarker }));
    expect([p2.Tags, p2.Truncated]).toEqual([[{ TagKey: 'team', TagValue: 'payments' }], false]);
    await admin.send(new UntagResourceCommand({ KeyId: k1, TagKeys: ['owner', 'absent'] }));
    expect((await auditor.send(new ListResourceTagsCommand({ KeyId: k1 }))).Tags!.map((t) => t.TagKey)).toEqual(['env', 'team']);
  });

  it('refuses reserved aws: keys, duplicates and more than 50 tags (TagException)', async () => {
    const reserved = await awsError(admin.send(new TagResourceCommand({ KeyId: k1, Tags: [{ TagKey: 'aws:owner', TagValue: 'x' }] })));
    expect(reserved.name).toBe('TagException');
    const dup = await awsError(admin.send(new TagResourceCommand({ KeyId: k1, Tags: [{ TagKey: 'a', TagValue: '1' }, { TagKey: 'a', TagValue: '2' }] })));
    expect(dup.name).toBe('TagException');
    const many = Array.from({ length: 49 }, (_, i) => ({ TagKey: `k${i}`, TagValue: 'v' }));
    expect((await awsError(admin.send(new TagResourceCommand({ KeyId: k1, Tags: many })))).name).toBe('TagException');
    expect((await awsError(admin.send(new TagResourceCommand({ KeyId: k1, Tags: [{ TagKey: '', TagValue: 'v' }] })))).name).toBe('ValidationException');
    expect((await auditor.send(new ListResourceTagsCommand({ KeyId: k1 }))).Tags!.length).toBe(2);
  });
});

describe('key policies', () => {
  it('a key created with a policy returns it; others have the default policy', async () => {
    expect(await auditor.send(new GetKeyPolicyCommand({ KeyId: k1 }))).toMatchObject({ Policy: POLICY, PolicyName: 'default' });
    const def = JSON.parse((await auditor.send(new GetKeyPolicyCommand({ KeyId: k2, PolicyName: 'default' }))).Policy!);
    const account = arn(k2).split(':')[4];
    expect(def.Statement[0]).toMatchObject({ Effect: 'Allow', Sid: 'Allow access for Key Administrators', Principal: { AWS: ['admin1', 'admin2', 'admin3'].map((n) => `arn:aws:iam::${account}:user/${n}`) } });
    expect(def.Statement[1]).toMatchObject({ Effect: 'Allow', Principal: { AWS: [`arn:aws:iam::${account}:user/app`] }, Action: expect.arrayContaining(['kms:Sign', 'kms:Decrypt']) });
    expect((await auditor.send(new ListKeyPoliciesCommand({ KeyId: k2 }))).PolicyNames).toEqual(['default']);
  });

  it('PutKeyPolicy replaces the policy; malformed documents and other names are refused', async () => {
    const policy = JSON.stringify({ Version: '2012-10-17', Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' } });
    await approved(tc, admin.send(new PutKeyPolicyCommand({ KeyId: k2, Policy: policy })), ['admin1', 'admin2']);
    expect((await auditor.send(new GetKeyPolicyCommand({ KeyId: k2 }))).Policy).toBe(policy);
    for (const bad of ['not json', '[]', '{"Version":"2012-10-17"}']) {
      expect((await awsError(admin.send(new PutKeyPolicyCommand({ KeyId: k2, Policy: bad })))).name).toBe('MalformedPolicyDocumentException');
    }
    expect((await awsError(auditor.send(new GetKeyPolicyCommand({ KeyId: k2, PolicyName: 'other' })))).name).toBe('NotFoundException');
    expect((await awsError(admin.send(new PutKeyPolicyCommand({ KeyId: k2, Policy: 'x'.repeat(32769) })))).name).toBe('ValidationException');
  });
});

describe('UpdateKeyDescription', () => {
  it('changes the description DescribeKey shows', async () => {
    await admin.send(new UpdateKeyDescriptionCommand({ KeyId: k2, Description: 'rotated signing key' }));
    expect((await app.send(new DescribeKeyCommand({ KeyId: k2 }))).KeyMetadata!.Description).toBe('rotated signing key');
    expect((await awsError(admin.send(new UpdateKeyDescriptionCommand({ KeyId: k2, Description: 'x'.repeat(8193) })))).name).toBe('ValidationException');
  });
});
