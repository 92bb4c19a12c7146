import { describe, expect, it } from 'vitest';
import {
  defaultKeyPolicy,
  evaluateKeyPolicy,
  MalformedPolicyDocumentException,
  parseKeyPolicy,
  validateKeyPolicy,
  type ConditionContext,
} from '../../policy/key-policy.js';
import { ACCOUNT, arnOf, KEY_ARN, OTHER_KEY_ARN } from './fixtures.js';

const doc = (Statement: unknown, extra: Record<string, unknown> = {}) => ({ Version: '2012-10-17', Statement, ...extra });
const allow = (Action: unknown, more: Record<string, unknown> = {}) => ({ Effect: 'Allow', Principal: { AWS: arnOf('app') }, Action, Resource: '*', ...more });
const evalFor = (policy: unknown, action: string, context: ConditionContext = {}, principal = 'app', resource = KEY_ARN) =>
  evaluateKeyPolicy(validateKeyPolicy(policy), { principalArn: arnOf(principal), action, resource, context }).effect;

describe('key policy evaluation', () => {
  it('explicit Deny overrides any Allow, whatever the statement order', () => {
    const deny = { Sid: 'NoSign', Effect: 'Deny', Principal: '*', Action: 'kms:Sign', Resource: '*' };
    for (const statements of [[allow('kms:*'), deny], [deny, allow('kms:*')]]) {
      const p = validateKeyPolicy(doc(statements));
      expect(evaluateKeyPolicy(p, { principalArn: arnOf('app'), action: 'kms:Sign', resource: KEY_ARN, context: {} })).toEqual({ effect: 'Deny', statement: '"NoSign"' });
      expect(evalFor(p, 'kms:Verify')).toBe('Allow');
    }
  });

  it('denies by default: other principals, actions and keys', () => {
    const p = doc([allow(['kms:Sign'], { Resource: KEY_ARN })]);
    expect(evalFor(p, 'kms:Sign')).toBe('Allow');
    expect(evalFor(p, 'kms:Sign', {}, 'mallory')).toBe('ImplicitDeny');
    expect(evalFor(p, 'kms:Decrypt')).toBe('ImplicitDeny');
    expect(evalFor(p, 'kms:Sign', {}, 'app', OTHER_KEY_ARN)).toBe('ImplicitDeny');
  });

  it('matches action wildcards (case-insensitively, as IAM does)', () => {
    const p = doc([allow(['kms:Describe*', 'kms:Get?ublicKey', 'KMS:list*'])]);
    expect(evalFor(p, 'kms:DescribeKey')).toBe('Allow');
    expect(evalFor(p, 'kms:GetPublicKey')).toBe('Allow');
    expect(evalFor(p, 'kms:ListResourceTags')).toBe('Allow');
    expect(evalFor(p, 'kms:GetKeyPolicy')).toBe('ImplicitDeny');
    expect(evalFor(doc([allow('*')]), 'kms:Sign')).toBe('Allow');
  });

  it('the account root (or bare account id) stands for every principal of that account only', () => {
    for (const root of [`arn:aws:iam::${ACCOUNT}:root`, ACCOUNT]) {
      const p = doc([{ Effect: 'Allow', Principal: { AWS: root }, Action: 'kms:Sign', Resource: '*' }]);
      expect(evalFor(p, 'kms:Sign', {}, 'anyone')).toBe('Allow');
      const other = evaluateKeyPolicy(validateKeyPolicy(p), { principalArn: 'arn:aws:iam::999999999999:user/app', action: 'kms:Sign', resource: KEY_ARN, context: {} });
      expect(other.effect).toBe('ImplicitDeny');
    }
  });

  it('evaluates StringEquals / StringLike / ForAnyValue on algorithms and message type', () => {
    const p = doc([
      allow('kms:Sign', {
        Condition: {
          'ForAnyValue:StringEquals': { 'kms:SigningAlgorithm': ['ECDSA_SHA_256', 'ECDSA_SHA_384'] },
          StringLike: { 'kms:MessageType': 'DIG*' },
        },
      }),
    ]);
    expect(evalFor(p, 'kms:Sign', { 'kms:SigningAlgorithm': 'ECDSA_SHA_384', 'kms:MessageType': 'DIGEST' })).toBe('Allow');
    expect(evalFor(p, 'kms:Sign', { 'kms:SigningAlgorithm': 'RSASSA_PSS_SHA_256', 'kms:MessageType': 'DIGEST' })).toBe('ImplicitDeny');
    expect(evalFor(p, 'kms:Sign', { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'RAW' })).toBe('ImplicitDeny');
    // An absent key fails a positive condition.
    expect(evalFor(p, 'kms:Sign', { 'kms:MessageType': 'DIGEST' })).toBe('ImplicitDeny');
    // The failing condition is reported, to say what is missing.
    expect(
      evaluateKeyPolicy(validateKeyPolicy(p), { principalArn: arnOf('app'), action: 'kms:Sign', resource: KEY_ARN, context: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'RAW' } }),
    ).toEqual({ effect: 'ImplicitDeny', unmet: { statement: 'Statement[0]', operator: 'StringLike', key: 'kms:MessageType' } });
  });

  it('negated operators and IfExists hold on an absent key; ForAllValues holds vacuously; Null tests presence', () => {
    const deny = (Condition: unknown) => doc([allow('kms:*'), { Effect: 'Deny', Principal: '*', Action: 'kms:Sign', Resource: '*', Condition }]);
    const notEcdsa = deny({ StringNotEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256' } });
    expect(evalFor(notEcdsa, 'kms:Sign', { 'kms:SigningAlgorithm': 'ECDSA_SHA_256' })).toBe('Allow');
    expect(evalFor(notEcdsa, 'kms:Sign', { 'kms:SigningAlgorithm': 'RSASSA_PSS_SHA_256' })).toBe('Deny');
    expect(evalFor(notEcdsa, 'kms:Sign', {})).toBe('Deny');
    const ifExists = deny({ StringEqualsIfExists: { 'kms:MessageType': 'RAW' } });
    expect(evalFor(ifExists, 'kms:Sign', {})).toBe('Deny');
    expect(evalFor(ifExists, 'kms:Sign', { 'kms:MessageType': 'DIGEST' })).toBe('Allow');
    const forAll = deny({ 'ForAllValues:StringEquals': { 'kms:MessageType': 'RAW' } });
    expect(evalFor(forAll, 'kms:Sign', {})).toBe('Deny');
    const isNull = deny({ Null: { 'kms:SigningAlgorithm': 'true' } });
    expect(evalFor(isNull, 'kms:Sign', {})).toBe('Deny');
    expect(evalFor(isNull, 'kms:Sign', { 'kms:SigningAlgorithm': 'ECDSA_SHA_256' })).toBe('Allow');
  });

  it('evaluates numeric conditions, principal ARN, caller account, case-insensitive key names', () => {
    const p = doc([
      { Effect: 'Allow', Principal: '*', Action: 'kms:ScheduleKeyDeletion', Resource: '*', Condition: { NumericGreaterThanEquals: { 'kms:ScheduleKeyDeletionPendingWindowInDays': '14' } } },
      { Effect: 'Allow', Principal: '*', Action: 'kms:Sign', Resource: '*', Condition: { ArnLike: { 'AWS:PRINCIPALARN': `arn:aws:iam::${ACCOUNT}:user/app*` }, StringEquals: { 'kms:CallerAccount': ACCOUNT } } },
      { Effect: 'Deny', Principal: '*', Action: 'kms:ScheduleKeyDeletion', Resource: '*', Condition: { NumericLessThanEquals: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 20 } , StringEquals: { 'aws:username': 'admin3' } } },
    ]);
    expect(evalFor(p, 'kms:ScheduleKeyDeletion', { 'kms:ScheduleKeyDeletionPendingWindowInDays': 30 })).toBe('Allow');
    expect(evalFor(p, 'kms:ScheduleKeyDeletion', { 'kms:ScheduleKeyDeletionPendingWindowInDays': 7 })).toBe('ImplicitDeny');
    expect(evalFor(p, 'kms:ScheduleKeyDeletion', { 'kms:ScheduleKeyDeletionPendingWindowInDays': 14, 'aws:username': 'admin3' })).toBe('Deny');
    expect(evalFor(p, 'kms:Sign', { 'aws:PrincipalArn': arnOf('app-2'), 'kms:CallerAccount': ACCOUNT })).toBe('Allow');
    expect(evalFor(p, 'kms:Sign', { 'aws:PrincipalArn': arnOf('web'), 'kms:CallerAccount': ACCOUNT })).toBe('ImplicitDeny');
    expect(evalFor(p, 'kms:Sign', { 'aws:PrincipalArn': arnOf('app'), 'kms:CallerAccount': '999999999999' })).toBe('ImplicitDeny');
  });
});

describe('malformed key policies', () => {
  const bad: [string, unknown, RegExp][] = [
    ['wrong version', { Version: '2020-01-01', Statement: [allow('kms:Sign')] }, /Version must be "2012-10-17"/],
    ['no statements', { Version: '2012-10-17', Statement: [] }, /Statement/],
    ['unknown top-level element', doc([allow('kms:Sign')], { mpchsn: {} }), /mpchsn/],
    ['unsupported statement element', doc([{ ...allow('kms:Sign'), NotAction: 'kms:Decrypt' }]), /Statement\[0\].*NotAction/],
    ['bad effect', doc([{ ...allow('kms:Sign'), Effect: 'Permit' }]), /Effect must be "Allow" or "Deny"/],
    ['bad principal', doc([{ ...allow('kms:Sign'), Principal: { AWS: 'app' } }]), /invalid principal "app"/],
    ['service principal', doc([{ ...allow('kms:Sign'), Principal: { Service: 'ec2.amazonaws.com' } }]), /Principal must be/],
    ['misspelt action', doc([allow('kms:Sing')]), /action "kms:Sing" names no KMS operation/],
    ['foreign action', doc([allow('s3:GetObject')]), /invalid action "s3:GetObject"/],
    ['bad resource', doc([{ ...allow('kms:Sign'), Resource: 'arn:aws:s3:::bucket' }]), /invalid resource/],
    ['unknown condition operator', doc([allow('kms:Sign', { Condition: { StringSortOf: { 'kms:MessageType': 'RAW' } } })]), /unsupported condition operator "StringSortOf"/],
    ['unknown condition key', doc([allow('kms:Sign', { Condition: { StringEquals: { 'kms:EncryptionContext:x': 'y' } } })]), /unsupported condition key/],
    ['numeric operator on a string key', doc([allow('kms:Sign', { Condition: { NumericEquals: { 'kms:MessageType': 1 } } })]), /does not apply to kms:MessageType/],
    ['non-numeric value', doc([allow('kms:Sign', { Condition: { NumericEquals: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 'seven' } } })]), /needs numbers/],
    ['policy variable', doc([allow('kms:Sign', { Condition: { StringEquals: { 'aws:username': '${aws:username}' } } })]), /policy variables/],
    ['duplicate Sid', doc([{ ...allow('kms:Sign'), Sid: 'A' }, { ...allow('kms:Verify'), Sid: 'A' }]), /duplicate Sid "A"/],
    ['bad mpchsm algorithm', doc([allow('kms:Sign')], { mpchsm: { allowedAlgorithms: ['MD5'] } }), /mpchsm\.allowedAlgorithms/],
    ['bad mpchsm rate', doc([allow('kms:Sign')], { mpchsm: { rateLimit: { perMinute: 0 } } }), /mpchsm\.rateLimit\.perMinute/],
    ['unknown mpchsm field', doc([allow('kms:Sign')], { mpchsm: { approvals: 2 } }), /mpchsm/],
  ];
  it.each(bad)('refuses %s with MalformedPolicyDocumentException', (_label, policy, message) => {
    expect(() => parseKeyPolicy(JSON.stringify(policy))).toThrow(MalformedPolicyDocumentException);
    expect(() => parseKeyPolicy(JSON.stringify(policy))).toThrow(message);
  });

  it('refuses text that is not JSON or too large', () => {
    expect(() => parseKeyPolicy('{"Version":')).toThrow(/not valid JSON/);
    const big = doc([allow('kms:Sign', { Sid: 'x'.repeat(100) })], { Id: 'y'.repeat(40_000) });
    expect(() => parseKeyPolicy(JSON.stringify(big))).toThrow(/exceeds 32768 bytes/);
  });

  it('accepts a single statement object, and round-trips the mpchsm block', () => {
    const text = JSON.stringify(doc(allow('kms:Sign'), { mpchsm: { allowedAlgorithms: ['ECDSA_SHA_256'], rateLimit: { perMinute: 60 }, approvalsPerSignature: 1 } }));
    const p = parseKeyPolicy(text);
    expect(p.Statement).toHaveLength(1);
    expect(p.mpchsm).toEqual({ allowedAlgorithms: ['ECDSA_SHA_256'], rateLimit: { perMinute: 60 }, approvalsPerSignature: 1 });
    expect(parseKeyPolicy(JSON.stringify(p))).toEqual(p);
  });
});

describe('defaultKeyPolicy', () => {
  const p = defaultKeyPolicy(ACCOUNT, ['admin1', 'admin2'], ['app'], ['auditor']);
  const effect = (who: string, action: string) => evaluateKeyPolicy(p, { principalArn: arnOf(who), action, resource: KEY_ARN, context: {} }).effect;

  it('grants use to the key users and management to the administrators, nothing to others', () => {
    for (const a of ['kms:Sign', 'kms:Verify', 'kms:Decrypt', 'kms:Encrypt', 'kms:GetPublicKey', 'kms:DescribeKey']) expect(effect('app', a)).toBe('Allow');
    for (const a of ['kms:ScheduleKeyDeletion', 'kms:PutKeyPolicy', 'kms:DisableKey']) expect(effect('app', a)).toBe('ImplicitDeny');
    for (const a of ['kms:ScheduleKeyDeletion', 'kms:CancelKeyDeletion', 'kms:PutKeyPolicy', 'kms:EnableKey', 'kms:DisableKey', 'kms:CreateAlias', 'kms:TagResource', 'kms:DescribeKey'])
      expect(effect('admin2', a)).toBe('Allow');
    expect(effect('admin2', 'kms:Sign')).toBe('ImplicitDeny');
    expect(effect('admin3', 'kms:DescribeKey')).toBe('ImplicitDeny');
    expect(effect('auditor', 'kms:GetKeyPolicy')).toBe('Allow');
    expect(effect('auditor', 'kms:PutKeyPolicy')).toBe('ImplicitDeny');
  });

  it('is a valid document that survives Get/PutKeyPolicy as JSON text', () => {
    expect(parseKeyPolicy(JSON.stringify(p, null, 2))).toEqual(p);
    expect(p.Statement.map((s) => s.Sid)).toEqual(['Allow access for Key Administrators', 'Allow use of the key', 'Allow read-only access for Auditors']);
  });

  it('omits statements with no principals and refuses bad input', () => {
    expect(defaultKeyPolicy(ACCOUNT, ['admin1'], []).Statement).toHaveLength(1);
    expect(() => defaultKeyPolicy('12345', ['admin1'], ['app'])).toThrow(MalformedPolicyDocumentException);
    expect(() => defaultKeyPolicy(ACCOUNT, ['admin 1'], ['app'])).toThrow(/invalid principal name/);
  });
});
