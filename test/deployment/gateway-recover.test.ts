// Total loss of the gateway (docs/operations.md): a real cluster with Ed25519, P-256, RSA and a
// rotated symmetric key, aliases, tags, a description and a non-default key policy; the gateway
// stopped and its directory deleted except the identity files an operator backs up (store/ and
// identity.json); `mpchsm gateway init --recover`; started again, ListKeys, ListAliases,
// ListResourceTags, DescribeKey and GetKeyPolicy answer as before, every key signs or decrypts
// as before, and the audit logs record the recovery. Nothing is taken on fewer than the
// threshold's word: with one signer up the recovering gateway refuses to start, and an alias a
// lying gateway gave one signer alone (with an administrator's genuine request) is not recovered.
import { execFileSync } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  CreateAliasCommand, CreateKeyCommand, EnableKeyRotationCommand, GetKeyRotationStatusCommand, DecryptCommand, DescribeKeyCommand, EncryptCommand, GetKeyPolicyCommand, GetPublicKeyCommand, KMSClient,
  ListAliasesCommand, ListKeysCommand, type CreateKeyCommandInput, ListResourceTagsCommand, RotateKeyOnDemandCommand, SignCommand, TagResourceCommand, UntagResourceCommand, UpdateKeyDescriptionCommand,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayAuditPath, signerAuditPath } from '../../audit/paths.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { auditVerifyAtRest, mpchsmBin, repoRoot, startCluster, type TestCluster } from '../helpers/cluster.js';
import { appRequest, gatewayIdentity, nextSeq, refusal, signerClients } from '../policy-cluster/helpers.js';

let tc: TestCluster;
const client = (name: string) => {
  const p = tc.principal(name);
  return new KMSClient({ endpoint: p.MPCHSM_KMS_ENDPOINT, region: p.AWS_REGION, credentials: { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY }, maxAttempts: 1 });
};
const text = (s: string) => new TextEncoder().encode(s);
/** `mpchsm ARGS` with `input` on standard input (a passphrase). */
const mpchsmWith = (input: string, ...args: string[]) => execFileSync(process.execPath, [mpchsmBin, ...args], { cwd: repoRoot, input, timeout: 120_000, encoding: 'utf8' });

beforeAll(async () => {
  tc = await startCluster();
}, 300_000);
afterAll(async () => {
  await tc?.destroy();
});

describe('total loss of the gateway', () => {
  it('rebuilds keys, policies, descriptions, tags and aliases from the signers', async () => {
    const admin = client('admin1');
    const app = client('app');
    const create = async (input: CreateKeyCommandInput) => (await admin.send(new CreateKeyCommand(input))).KeyMetadata!.KeyId!;
    const ed = await create({ KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
    const p256 = await create({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', Description: 'p256 at creation', Tags: [{ TagKey: 'team', TagValue: 'a' }, { TagKey: 'gone', TagValue: 'soon' }] });
    // A non-default key policy: the default one with another statement id.
    const policy = JSON.parse((await admin.send(new GetKeyPolicyCommand({ KeyId: ed, PolicyName: 'default' }))).Policy!) as { Statement: { Sid?: string }[] };
    policy.Statement[0]!.Sid = 'RecoveredWithTheKey';
    const rsa = await create({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY', Policy: JSON.stringify(policy) });
    const sym = await create({ Description: 'symmetric', Tags: [{ TagKey: 'kind', TagValue: 'sym' }] });
    const before1 = (await app.send(new EncryptCommand({ KeyId: sym, Plaintext: text('first material') }))).CiphertextBlob!;
    await admin.send(new RotateKeyOnDemandCommand({ KeyId: sym }));
    await admin.send(new EnableKeyRotationCommand({ KeyId: sym, RotationPeriodInDays: 180 }));
    const before2 = (await app.send(new EncryptCommand({ KeyId: sym, Plaintext: text('rotated material') }))).CiphertextBlob!;
    await admin.send(new UpdateKeyDescriptionCommand({ KeyId: ed, Description: 'ed25519, described later' }));
    await admin.send(new TagResourceCommand({ KeyId: p256, Tags: [{ TagKey: 'team', TagValue: 'b' }, { TagKey: 'env', TagValue: 'prod' }] }));
    await admin.send(new UntagResourceCommand({ KeyId: p256, TagKeys: ['gone'] }));
    await admin.send(new CreateAliasCommand({ AliasName: 'alias/recover-ed', TargetKeyId: ed }));
    await admin.send(new CreateAliasCommand({ AliasName: 'alias/recover-sym', TargetKeyId: sym }));
    const keys = [ed, p256, rsa, sym];

    const answers = async () => ({
      keys: (await admin.send(new ListKeysCommand({}))).Keys,
      // An alias's dates are the recovering gateway's: the signers keep names and targets.
      aliases: (await admin.send(new ListAliasesCommand({}))).Aliases!.map(({ AliasName, AliasArn, TargetKeyId }) => ({ AliasName, AliasArn, TargetKeyId })),
      perKey: await Promise.all(
        keys.map(async (KeyId) => {
          const { CreationDate, ...metadata } = (await admin.send(new DescribeKeyCommand({ KeyId }))).KeyMetadata!;
          return {
            metadata,
            created: CreationDate!.getTime(),
            tags: (await admin.send(new ListResourceTagsCommand({ KeyId }))).Tags,
            policy: (await admin.send(new GetKeyPolicyCommand({ KeyId, PolicyName: 'default' }))).Policy,
            rotation: KeyId === sym ? await admin.send(new GetKeyRotationStatusCommand({ KeyId })) : undefined,
            publicKey: KeyId === sym ? undefined : Buffer.from((await app.send(new GetPublicKeyCommand({ KeyId }))).PublicKey!).toString('base64'),
          };
        }),
      ),
    });
    const before = await answers();
    expect(before.perKey[1]!.tags).toEqual([{ TagKey: 'env', TagValue: 'prod' }, { TagKey: 'team', TagValue: 'b' }]);
    expect(before.perKey[2]!.policy).toContain('RecoveredWithTheKey');
    expect(before.perKey[3]!.rotation).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 180 });

    // The new kinds of key change (tags, description, rotation setting) hold in the cross-check.
    const verified = await auditVerifyAtRest(tc);
    expect(verified.code, verified.out).toBe(0);

    // A lying gateway's alias, at signer1 alone: signer1 is then one change ahead of the others.
    const signers = signerClients(tc, await gatewayIdentity(tc));
    try {
      const parameters = { AliasName: 'alias/only-signer1', TargetKeyId: ed };
      const evidence = await appRequest(tc, 'TrentService.CreateAlias', parameters, 'admin1');
      const change = { keyId: ed, operation: 'CreateAlias', parameters, evidence, seq: await nextSeq(signers[0]!, ed) } as const;
      expect(await signers[0]!.call(signerRoutes.policy.apply, change)).toMatchObject({ applied: true });
      // Tags carry no authority, yet a signer keeps none on the gateway's word alone: an administrator must have asked.
      const tags = { keyId: p256, operation: 'TagResource', parameters: { KeyId: p256, Tags: [{ TagKey: 'forged', TagValue: 'x' }] }, seq: await nextSeq(signers[1]!, p256) } as const;
      expect((await refusal(signers[1]!.call(signerRoutes.policy.apply, tags))).message).toMatch(/access denied: .*(request|approv)/);
    } finally {
      for (const c of signers) c.close();
    }

    // The loss: everything but the identity files the operator backed up.
    await tc.down();
    const G = path.join(tc.dir, 'gateway');
    const lost = `${G}.lost`;
    renameSync(G, lost);
    mkdirSync(G, { mode: 0o700 });
    for (const kept of ['store', 'identity.json']) renameSync(path.join(lost, kept), path.join(G, kept));
    rmSync(lost, { recursive: true, force: true });
    const secret = readFileSync(path.join(tc.dir, 'operators', 'gateway.secret'), 'utf8');
    const genesis = path.join(tc.dir, 'genesis.json');
    const init = JSON.parse(mpchsmWith(secret, 'gateway', 'init', '--dir', G, '--recover', '--genesis', genesis, '--json')) as { Recovering: boolean };
    expect(init.Recovering).toBe(true);

    // Fewer than the threshold answering: the recovery does not start, and the marker stays for the next try.
    const signer1 = path.join(tc.dir, 'signers', 'signer1');
    mpchsmWith(readFileSync(path.join(tc.dir, 'operators', 'signer1.secret'), 'utf8'), 'signer', 'start', '--dir', signer1, '--genesis', genesis, '--detach');
    try {
      expect(() => mpchsmWith(secret, 'gateway', 'start', '--dir', G, '--genesis', genesis, '--detach')).toThrow(/recovery needs 2 signers/);
    } finally {
      await tc.mpchsm('signer', 'stop', '--dir', signer1);
    }
    // The refused start founded the directory on the genesis; the rest waits for the signers.
    expect(readFileSync(path.join(G, 'recovering.json'), 'utf8')).toContain('genesis');

    await tc.up();
    const after = await answers();
    // The one signer's alias is not among them; the gateway names the signers left behind.
    expect(after.aliases.map((a) => a.AliasName)).not.toContain('alias/only-signer1');
    expect(readFileSync(path.join(tc.dir, 'logs', 'gateway.log'), 'utf8')).toMatch(/signers are behind the others/);
    expect(after.keys).toEqual(before.keys);
    expect(after.aliases).toEqual(before.aliases);
    after.perKey.forEach((k, i) => {
      const b = before.perKey[i]!;
      expect(k.metadata).toEqual(b.metadata);
      expect(k.tags).toEqual(b.tags);
      expect(k.policy).toBe(b.policy);
      expect(k.publicKey).toBe(b.publicKey);
      // The rotation setting comes back; its next date is a period from the recovery (the signers keep no date of it).
      expect([k.rotation?.KeyRotationEnabled, k.rotation?.RotationPeriodInDays]).toEqual([b.rotation?.KeyRotationEnabled, b.rotation?.RotationPeriodInDays]);
      if (b.rotation?.NextRotationDate) expect(Math.abs(k.rotation!.NextRotationDate!.getTime() - b.rotation.NextRotationDate.getTime())).toBeLessThan(600_000);
      // The signers' own clock, at the same creation.
      expect(Math.abs(k.created - b.created)).toBeLessThan(60_000);
    });

    // The keys work as before: signatures verify under the public keys recorded before the loss, both materials open.
    for (const [KeyId, SigningAlgorithm, alg] of [[ed, 'ED25519_SHA_512', null], [p256, 'ECDSA_SHA_256', 'sha256'], [rsa, 'RSASSA_PSS_SHA_256', 'sha256']] as const) {
      const sig = (await app.send(new SignCommand({ KeyId, Message: text('after recovery'), MessageType: 'RAW', SigningAlgorithm }))).Signature!;
      const pub = createPublicKey({ key: Buffer.from(before.perKey[keys.indexOf(KeyId)]!.publicKey!, 'base64'), format: 'der', type: 'spki' });
      const options = KeyId === rsa ? { key: pub, padding: 6, saltLength: 32 } : KeyId === p256 ? { key: pub, dsaEncoding: 'der' as const } : pub;
      expect(verify(alg, text('after recovery'), options, sig), SigningAlgorithm).toBe(true);
    }
    expect(new TextDecoder().decode((await app.send(new DecryptCommand({ CiphertextBlob: before1 }))).Plaintext)).toBe('first material');
    expect(new TextDecoder().decode((await app.send(new DecryptCommand({ CiphertextBlob: before2 }))).Plaintext)).toBe('rotated material');
    // Sealing after the recovery uses the rotated material still.
    const sealed = (await app.send(new EncryptCommand({ KeyId: 'alias/recover-sym', Plaintext: text('new') }))).CiphertextBlob!;
    expect(new TextDecoder().decode((await app.send(new DecryptCommand({ CiphertextBlob: sealed }))).Plaintext)).toBe('new');

    // The new audit log starts with the recovery; each signer recorded that it was read for it.
    const gatewayLog = readFileSync(gatewayAuditPath(tc.dir), 'utf8');
    expect(gatewayLog).toContain('"op":"RecoverGateway"');
    expect(gatewayLog.match(/"op":"RecoverKey"/g)?.length).toBe(4);
    for (const name of ['signer1', 'signer2', 'signer3']) expect(readFileSync(signerAuditPath(tc.dir, name), 'utf8')).toContain('"request":"gateway-recovery"');
  }, 600_000);
});
