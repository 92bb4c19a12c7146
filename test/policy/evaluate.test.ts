// authorize() combining key policy conditions, the mpchsm block, governance and per-signature approvals.
import { describe, expect, it } from 'vitest';
import { signApproval, type Proposal } from '../../policy/approvals.js';
import { authorize, type AuthorizeInput } from '../../policy/evaluate.js';
import { defaultKeyPolicy, validateKeyPolicy, type KeyPolicy } from '../../policy/key-policy.js';
import { messageDigestFor, signSignApproval } from '../../policy/sign-approvals.js';
import { ACCOUNT, admin, arnOf, bootstrapGovernance, CLUSTER, KEY_ARN, KEY_ID, NOW } from './fixtures.js';

const governance = bootstrapGovernance();
const basePolicy = defaultKeyPolicy(ACCOUNT, ['admin1', 'admin2', 'admin3'], ['app'], ['auditor']);
const withExtension = (mpchsm: KeyPolicy['mpchsm'], extra: object[] = []): KeyPolicy =>
  validateKeyPolicy({ ...basePolicy, Statement: [...basePolicy.Statement, ...extra], mpchsm });
const app = { name: 'app', role: 'app' as const, arn: arnOf('app') };
const admin1 = { name: 'admin1', role: 'admin' as const, arn: arnOf('admin1') };
const run = (over: Partial<AuthorizeInput>) => authorize({ principal: app, operation: 'kms:Sign', key: { arn: KEY_ARN, policy: basePolicy }, governance, now: NOW, ...over });

describe('key policy and mpchsm block through authorize', () => {
  it('reports an explicit Deny and an unmet condition precisely', () => {
    const policy = withExtension(undefined, [
      { Sid: 'OnlyDigests', Effect: 'Deny', Principal: '*', Action: 'kms:Sign', Resource: '*', Condition: { StringNotEquals: { 'kms:MessageType': 'DIGEST' } } },
    ]);
    expect(run({ key: { arn: KEY_ARN, policy }, context: { algorithm: 'ECDSA_SHA_256', messageType: 'DIGEST' } }).allowed).toBe(true);
    expect(run({ key: { arn: KEY_ARN, policy }, context: { algorithm: 'ECDSA_SHA_256', messageType: 'RAW' } })).toEqual({
      allowed: false,
      missing: 'kms:Sign',
      reason: `principal app is not allowed kms:Sign on key ${KEY_ARN}: explicitly denied by statement "OnlyDigests" of the key policy`,
    });
    const conditional = validateKeyPolicy({
      Version: '2012-10-17',
      Statement: [{ Sid: 'Ed25519Only', Effect: 'Allow', Principal: { AWS: arnOf('app') }, Action: 'kms:Sign', Resource: '*', Condition: { StringEquals: { 'kms:SigningAlgorithm': 'ED25519_SHA_512' } } }],
    });
    const d = run({ key: { arn: KEY_ARN, policy: conditional }, context: { algorithm: 'ECDSA_SHA_256' } });
    expect(!d.allowed && d.reason).toContain('statement "Ed25519Only" would allow it, but its condition StringEquals on kms:SigningAlgorithm is not met');
    const none = run({ key: { arn: KEY_ARN, policy: conditional }, operation: 'kms:Verify' });
    expect(!none.allowed && none.reason).toContain(`the key policy grants ${arnOf('app')} no kms:Verify`);
  });

  it('conditions see the key attributes and the principal', () => {
    const policy = validateKeyPolicy({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:Sign', Resource: '*', Condition: { StringEquals: { 'kms:KeySpec': 'ECC_NIST_P256', 'aws:username': 'app' } } }],
    });
    expect(run({ key: { arn: KEY_ARN, policy, keySpec: 'ECC_NIST_P256' } }).allowed).toBe(true);
    expect(run({ key: { arn: KEY_ARN, policy, keySpec: 'RSA_2048' } }).allowed).toBe(false);
  });

  it('restricts algorithms with mpchsm.allowedAlgorithms', () => {
    const policy = withExtension({ allowedAlgorithms: ['ECDSA_SHA_256'] });
    expect(run({ key: { arn: KEY_ARN, policy }, context: { algorithm: 'ECDSA_SHA_256' } }).allowed).toBe(true);
    const d = run({ key: { arn: KEY_ARN, policy }, context: { algorithm: 'RSASSA_PSS_SHA_256' } });
    expect(d).toMatchObject({ allowed: false, missing: 'kms:Sign', reason: expect.stringContaining('the key allows only the algorithms ECDSA_SHA_256, not RSASSA_PSS_SHA_256') });
    expect(run({ key: { arn: KEY_ARN, policy } }).allowed).toBe(false); // no algorithm named
    expect(run({ key: { arn: KEY_ARN, policy }, operation: 'kms:DescribeKey' }).allowed).toBe(true);
  });

  it('the operation-only pre-check (no key yet) applies the role ceiling alone', () => {
    expect(run({ key: undefined }).allowed).toBe(true);
    expect(run({ key: undefined, principal: admin1 }).allowed).toBe(false);
  });
});

describe('governance through authorize', () => {
  const parameters = { KeyId: KEY_ID, PendingWindowInDays: 7 };
  const proposal: Proposal = {
    id: 'prop-delete-1',
    clusterId: CLUSTER,
    operation: 'kms:ScheduleKeyDeletion',
    parameters,
    proposer: 'admin1',
    createdAt: NOW - 1000,
    expiresAt: NOW + 3600_000,
    governanceVersion: 1,
  };
  const approvals = (p: Proposal, ...names: string[]) => names.map((n) => signApproval(p, n, admin(n).secretKey));
  const schedule = (approval?: AuthorizeInput['approval'], principal: AuthorizeInput['principal'] = admin1) =>
    run({ principal, operation: 'kms:ScheduleKeyDeletion', context: { pendingWindowInDays: 7 }, approval });

  it('asks for approvals, then allows with a valid quorum, naming the approvers', () => {
    expect(schedule()).toMatchObject({
      allowed: false,
      missing: 'mpchsm:Approve',
      needsApproval: { m: 2, n: 3, operation: 'kms:ScheduleKeyDeletion', kind: 'quorum' },
      reason: expect.stringContaining('needs approval by 2 of the 3 administrators (governance v1)'),
    });
    expect(schedule({ proposal, approvals: approvals(proposal, 'admin1', 'admin3'), parameters })).toEqual({ allowed: true, approvedBy: ['admin1', 'admin3'], consumeNonces: [] });
  });

  it('refuses a quorum for other parameters, another operation or another proposer', () => {
    const ok = approvals(proposal, 'admin1', 'admin2');
    expect(schedule({ proposal, approvals: ok, parameters: { ...parameters, PendingWindowInDays: 30 } })).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('parameters differ from those approved in proposal prop-delete-1'),
    });
    const admin2 = { name: 'admin2', role: 'admin' as const, arn: arnOf('admin2') };
    expect(schedule({ proposal, approvals: ok, parameters }, admin2)).toMatchObject({ allowed: false, reason: expect.stringContaining('was made by admin1') });
    const put = run({ principal: admin1, operation: 'kms:PutKeyPolicy', approval: { proposal, approvals: ok, parameters } });
    expect(put).toMatchObject({ allowed: false, reason: expect.stringContaining('is for kms:ScheduleKeyDeletion') });
    expect(schedule({ proposal, approvals: approvals(proposal, 'admin2'), parameters })).toMatchObject({ allowed: false, needsApproval: { m: 2 } });
  });

  it('CreateKey needs one approval, which the requester may give itself', () => {
    const p: Proposal = { ...proposal, id: 'prop-create-1', operation: 'kms:CreateKey', parameters: { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' } };
    const create = (approval?: AuthorizeInput['approval']) => run({ principal: admin1, operation: 'kms:CreateKey', key: undefined, approval });
    expect(create()).toMatchObject({ allowed: false, needsApproval: { m: 1, n: 3, operation: 'kms:CreateKey' } });
    expect(create({ proposal: p, approvals: approvals(p, 'admin1'), parameters: p.parameters })).toMatchObject({ allowed: true, approvedBy: ['admin1'] });
  });

  it('the role ceiling comes before governance: approvals do not let the app delete keys', () => {
    expect(schedule({ proposal, approvals: approvals(proposal, 'admin1', 'admin2'), parameters }, app)).toMatchObject({ allowed: false, missing: 'kms:ScheduleKeyDeletion' });
  });
});

describe('per-signature approvals through authorize', () => {
  const policy = withExtension({ approvalsPerSignature: 2 });
  const message = new TextEncoder().encode('firmware image');
  const digest = messageDigestFor('ECDSA_SHA_256', 'RAW', message);
  const approve = (name: string, nonce: string, d = digest) =>
    signSignApproval({ clusterId: CLUSTER, keyId: KEY_ID, algorithm: 'ECDSA_SHA_256', digest: d, expiresAt: NOW + 60_000, nonce, approver: name }, admin(name).secretKey);
  const sign = (signApprovals?: AuthorizeInput['signApprovals']) =>
    run({ key: { arn: KEY_ARN, policy }, context: { algorithm: 'ECDSA_SHA_256', messageType: 'RAW', digest }, signApprovals });

  it('asks for k approvals, then allows and hands back the nonces to consume', () => {
    expect(sign()).toMatchObject({ allowed: false, needsApproval: { m: 2, n: 3, operation: 'kms:Sign', kind: 'signature' } });
    const a = [approve('admin2', 'aa'.repeat(16)), approve('admin3', 'bb'.repeat(16))];
    const d = sign({ approvals: a, usedNonces: new Set() });
    expect(d).toEqual({
      allowed: true,
      approvedBy: ['admin2', 'admin3'],
      consumeNonces: [
        { nonce: 'aa'.repeat(16), expiresAt: NOW + 60_000 },
        { nonce: 'bb'.repeat(16), expiresAt: NOW + 60_000 },
      ],
    });
    expect(sign({ approvals: a, usedNonces: new Set(['aa'.repeat(16)]) })).toMatchObject({ allowed: false, reason: expect.stringContaining('already used') });
    const wrong = [approve('admin2', 'cc'.repeat(16), 'ab'.repeat(32)), approve('admin3', 'dd'.repeat(16))];
    expect(sign({ approvals: wrong, usedNonces: new Set() })).toMatchObject({ allowed: false, reason: expect.stringContaining('another message digest') });
  });

  it('does not apply to Verify', () => {
    expect(run({ operation: 'kms:Verify', key: { arn: KEY_ARN, policy }, context: { algorithm: 'ECDSA_SHA_256' } }).allowed).toBe(true);
  });
});
