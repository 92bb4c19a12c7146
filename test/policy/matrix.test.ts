// Every role × every KMS (and mpchsm) operation through authorize, with a key policy that grants
// everyone everything (so only role ceilings decide) and with the default key policy.
import { describe, expect, it } from 'vitest';
import { authorize } from '../../policy/evaluate.js';
import { defaultKeyPolicy, validateKeyPolicy, type KeyPolicy } from '../../policy/key-policy.js';
import { KMS_OPERATIONS, KMS_PERMISSION_ONLY, MPCHSM_OPERATIONS, type Action, type PolicyRole } from '../../policy/roles.js';
import { ACCOUNT, arnOf, bootstrapGovernance, KEY_ARN, NOW } from './fixtures.js';

// Written out here, independently of roles.ts, so a change to the ceilings fails this test.
const EXPECTED: Record<PolicyRole, string[]> = {
  app: [
    'Sign', 'Verify', 'Encrypt', 'Decrypt', 'GetPublicKey', 'DescribeKey', 'ListKeys', 'ListAliases', 'GenerateDataKey',
    'GenerateDataKeyWithoutPlaintext', 'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext', 'ReEncrypt',
    'ReEncryptFrom', 'ReEncryptTo', 'GenerateRandom',
  ],
  admin: [
    'CreateKey', 'DescribeKey', 'ListKeys', 'ListAliases', 'GetPublicKey', 'EnableKey', 'DisableKey',
    'UpdateKeyDescription', 'CreateAlias', 'UpdateAlias', 'DeleteAlias', 'TagResource', 'UntagResource',
    'ListResourceTags', 'GetKeyPolicy', 'PutKeyPolicy', 'ListKeyPolicies', 'ScheduleKeyDeletion',
    'CancelKeyDeletion', 'GetParametersForImport', 'ImportKeyMaterial', 'DeleteImportedKeyMaterial',
    'EnableKeyRotation', 'DisableKeyRotation', 'GetKeyRotationStatus', 'RotateKeyOnDemand', 'ListKeyRotations',
    'mpchsm:Approve', 'mpchsm:AddSigner', 'mpchsm:RemoveSigner', 'mpchsm:AddPrincipal', 'mpchsm:RemovePrincipal',
    'mpchsm:UpdateGovernance', 'mpchsm:RefreshKeyShares', 'mpchsm:RestoreSigner',
  ],
  auditor: [
    'DescribeKey', 'ListKeys', 'ListAliases', 'ListResourceTags', 'GetKeyPolicy', 'ListKeyPolicies', 'GetPublicKey',
    'GetKeyRotationStatus', 'ListKeyRotations', 'mpchsm:ReadAudit',
  ],
  operator: [],
};
// Under the default governance: a majority (2 of 3), or one approval for CreateKey.
const GOVERNED: Record<string, number> = {
  'kms:CreateKey': 1,
  'kms:ScheduleKeyDeletion': 2,
  'kms:PutKeyPolicy': 2,
  'kms:DisableKey': 2,
  'kms:DeleteImportedKeyMaterial': 2,
  'mpchsm:AddSigner': 2,
  'mpchsm:RemoveSigner': 2,
  // Never fewer approvals than AddSigner: its quorum stands in where the governance names none.
  'mpchsm:RestoreSigner': 2,
  'mpchsm:AddPrincipal': 2,
  'mpchsm:RemovePrincipal': 2,
  'mpchsm:UpdateGovernance': 2,
};
const NAMES: Record<PolicyRole, string> = { app: 'app', admin: 'admin1', auditor: 'auditor', operator: 'operatorA' };
const ALL: Action[] = [...[...KMS_OPERATIONS, ...KMS_PERMISSION_ONLY].map((o) => `kms:${o}` as Action), ...MPCHSM_OPERATIONS.map((o) => `mpchsm:${o}` as Action)];
const expectedAllowed = (role: PolicyRole, a: Action) => EXPECTED[role].includes(a.startsWith('kms:') ? a.slice(4) : a);

const governance = bootstrapGovernance();
const grantAll = validateKeyPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' }] });
const byDefault = defaultKeyPolicy(ACCOUNT, ['admin1', 'admin2', 'admin3'], ['app'], ['auditor']);

function decide(role: PolicyRole, op: Action, policy: KeyPolicy) {
  const name = NAMES[role];
  return authorize({
    principal: { name, role, arn: arnOf(name) },
    operation: op,
    key: op.startsWith('kms:') ? { arn: KEY_ARN, policy } : undefined,
    context: { algorithm: op === 'kms:Sign' || op === 'kms:Verify' ? 'ECDSA_SHA_256' : 'RSAES_OAEP_SHA_256' },
    governance,
    now: NOW,
  });
}

describe.each([
  ['a policy granting everything', grantAll],
  ['the default key policy', byDefault],
])('role × operation matrix under %s', (_label, policy) => {
  for (const role of ['app', 'admin', 'auditor', 'operator'] as const) {
    it(`${role}: exactly its ceiling is allowed, governed operations need approvals`, () => {
      let allowed = 0;
      for (const op of ALL) {
        const d = decide(role, op, policy);
        if (!expectedAllowed(role, op)) {
          expect(d, `${role} ${op}`).toMatchObject({ allowed: false, missing: op });
          if (d.allowed) continue;
          expect(d.needsApproval, `${role} ${op}`).toBeUndefined();
          expect(d.reason).toMatch(new RegExp(`^principal ${NAMES[role]} is not allowed ${op}( on key \\S+)?: (the .* role is required|one of the roles .* is required|no role may perform it in mpchsm)`));
        } else if (GOVERNED[op]) {
          expect(d, `${role} ${op}`).toMatchObject({ allowed: false, missing: 'mpchsm:Approve', needsApproval: { m: GOVERNED[op], n: 3, operation: op, kind: 'quorum' } });
        } else {
          expect(d, `${role} ${op}`).toEqual({ allowed: true, approvedBy: [], consumeNonces: [] });
          allowed++;
        }
      }
      expect(allowed).toBe(EXPECTED[role].filter((o) => !GOVERNED[o.includes(':') ? o : `kms:${o}`]).length);
    });
  }
});

describe('denial messages', () => {
  it('names the principal, the operation, the key and the role required', () => {
    const d = decide('app', 'kms:ScheduleKeyDeletion', grantAll);
    expect(d).toEqual({
      allowed: false,
      missing: 'kms:ScheduleKeyDeletion',
      reason: `principal app is not allowed kms:ScheduleKeyDeletion on key ${KEY_ARN}: the key administrator role is required`,
    });
  });

  it('a key administrator never signs or decrypts, even when the key policy grants it', () => {
    const explicit = validateKeyPolicy({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: arnOf('admin1') }, Action: ['kms:Sign', 'kms:Decrypt'], Resource: '*' }],
    });
    for (const op of ['kms:Sign', 'kms:Decrypt'] as const) {
      const d = decide('admin', op, explicit);
      expect(d.allowed).toBe(false);
      if (!d.allowed) expect(d.reason).toContain('the application (key user) role is required (key administrators never sign or decrypt)');
    }
  });

  it('an operation several roles may perform names them all; an unsupported one says so', () => {
    const d = decide('operator', 'kms:DescribeKey', grantAll);
    expect(!d.allowed && d.reason).toContain('one of the roles key administrator, application (key user), auditor is required');
    const e = decide('admin', 'kms:GenerateMac', grantAll);
    expect(!e.allowed && e.reason).toContain('no role may perform it');
  });

  it('refuses a principal whose ARN names someone else, and unknown operations', () => {
    const base = { governance, now: NOW };
    expect(authorize({ ...base, principal: { name: 'app', role: 'app', arn: arnOf('admin1') }, operation: 'kms:ListKeys' }).allowed).toBe(false);
    const d = authorize({ ...base, principal: { name: 'app', role: 'app', arn: arnOf('app') }, operation: 'kms:Frobnicate' as Action });
    expect(d).toMatchObject({ allowed: false, missing: 'kms:Frobnicate' });
    expect(!d.allowed && d.reason).toContain('unknown operation');
  });
});
