// Roles and their ceilings, as data. A role's ceiling is the most any grant can give a
// principal of that role: a key policy that grants a key administrator kms:Sign grants nothing,
// because key administrators never sign or decrypt (separation of duties).

/** Every AWS KMS API operation, so an unknown name is a typo and not a silent default. */
export const KMS_OPERATIONS = [
  'CancelKeyDeletion', 'ConnectCustomKeyStore', 'CreateAlias', 'CreateCustomKeyStore', 'CreateGrant',
  'CreateKey', 'Decrypt', 'DeleteAlias', 'DeleteCustomKeyStore', 'DeleteImportedKeyMaterial',
  'DeriveSharedSecret', 'DescribeCustomKeyStores', 'DescribeKey', 'DisableKey', 'DisableKeyRotation',
  'DisconnectCustomKeyStore', 'EnableKey', 'EnableKeyRotation', 'Encrypt', 'GenerateDataKey',
  'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext', 'GenerateDataKeyWithoutPlaintext',
  'GenerateMac', 'GenerateRandom', 'GetKeyPolicy', 'GetKeyRotationStatus', 'GetParametersForImport',
  'GetPublicKey', 'ImportKeyMaterial', 'ListAliases', 'ListGrants', 'ListKeyPolicies', 'ListKeyRotations',
  'ListKeys', 'ListResourceTags', 'ListRetirableGrants', 'PutKeyPolicy', 'ReEncrypt', 'ReplicateKey',
  'RetireGrant', 'RevokeGrant', 'RotateKeyOnDemand', 'ScheduleKeyDeletion', 'Sign', 'TagResource',
  'UntagResource', 'UpdateAlias', 'UpdateCustomKeyStore', 'UpdateKeyDescription', 'UpdatePrimaryRegion',
  'Verify', 'VerifyMac',
] as const;
export type KmsOperation = (typeof KMS_OPERATIONS)[number];
/** IAM actions that are no operation of their own: ReEncrypt's, at its source and destination keys. */
export const KMS_PERMISSION_ONLY = ['ReEncryptFrom', 'ReEncryptTo'] as const;

/** mpchsm's own operations: approvals, audit, cluster membership, governance. */
export const MPCHSM_OPERATIONS = [
  'Approve', 'ReadAudit', 'AddSigner', 'RemoveSigner', 'AddPrincipal', 'RemovePrincipal', 'UpdateGovernance',
  'RefreshKeyShares', 'RestoreSigner',
] as const;
export type MpchsmOperation = (typeof MPCHSM_OPERATIONS)[number];

/** An operation as policies name it: `kms:Sign`, `mpchsm:Approve`. */
export type Action = `kms:${KmsOperation | (typeof KMS_PERMISSION_ONLY)[number]}` | `mpchsm:${MpchsmOperation}`;
export const ACTIONS: readonly Action[] = [
  ...[...KMS_OPERATIONS, ...KMS_PERMISSION_ONLY].map((o) => `kms:${o}` as const),
  ...MPCHSM_OPERATIONS.map((o) => `mpchsm:${o}` as const),
];
const ACTION_SET: ReadonlySet<string> = new Set(ACTIONS);
export const isAction = (v: unknown): v is Action => typeof v === 'string' && ACTION_SET.has(v);

/**
 * Operations on no particular key (AWS authorises them by IAM policy alone). Every other kms:
 * operation names a key, and that key's policy must allow it too.
 */
export const ACCOUNT_ACTIONS: ReadonlySet<Action> = new Set<Action>([
  'kms:CreateKey', 'kms:ListKeys', 'kms:ListAliases', 'kms:GenerateRandom', 'kms:ListRetirableGrants',
  'kms:ConnectCustomKeyStore', 'kms:CreateCustomKeyStore', 'kms:DeleteCustomKeyStore',
  'kms:DescribeCustomKeyStores', 'kms:DisconnectCustomKeyStore', 'kms:UpdateCustomKeyStore',
]);
export const isKeyAction = (a: Action): boolean => a.startsWith('kms:') && !ACCOUNT_ACTIONS.has(a);

export const ROLES = ['admin', 'app', 'auditor', 'operator'] as const;
/** gateway/principals.ts's roles, plus the signer operator (who is never a KMS principal). */
export type PolicyRole = (typeof ROLES)[number];

export const ROLE_TITLES: Readonly<Record<PolicyRole, string>> = {
  admin: 'key administrator',
  app: 'application (key user)',
  auditor: 'auditor',
  operator: 'signer operator',
};

export const ROLE_CEILINGS: Readonly<Record<PolicyRole, ReadonlySet<Action>>> = {
  app: new Set<Action>([
    'kms:Sign', 'kms:Verify', 'kms:Encrypt', 'kms:Decrypt', 'kms:GetPublicKey', 'kms:DescribeKey',
    'kms:ListKeys', 'kms:ListAliases', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext',
    'kms:GenerateDataKeyPair', 'kms:GenerateDataKeyPairWithoutPlaintext', 'kms:ReEncrypt',
    'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateRandom',
  ]),
  // Manages keys and the cluster; never Sign, Decrypt or anything else that uses a key.
  admin: new Set<Action>([
    'kms:CreateKey', 'kms:DescribeKey', 'kms:ListKeys', 'kms:ListAliases', 'kms:GetPublicKey',
    'kms:EnableKey', 'kms:DisableKey', 'kms:UpdateKeyDescription',
    'kms:CreateAlias', 'kms:UpdateAlias', 'kms:DeleteAlias',
    'kms:TagResource', 'kms:UntagResource', 'kms:ListResourceTags',
    'kms:GetKeyPolicy', 'kms:PutKeyPolicy', 'kms:ListKeyPolicies',
    'kms:ScheduleKeyDeletion', 'kms:CancelKeyDeletion',
    'kms:GetParametersForImport', 'kms:ImportKeyMaterial', 'kms:DeleteImportedKeyMaterial',
    'kms:EnableKeyRotation', 'kms:DisableKeyRotation', 'kms:GetKeyRotationStatus', 'kms:RotateKeyOnDemand',
    'kms:ListKeyRotations',
    'mpchsm:Approve', 'mpchsm:AddSigner', 'mpchsm:RemoveSigner', 'mpchsm:AddPrincipal',
    'mpchsm:RemovePrincipal', 'mpchsm:UpdateGovernance', 'mpchsm:RefreshKeyShares', 'mpchsm:RestoreSigner',
  ]),
  // Reads what exists and what happened; changes nothing.
  auditor: new Set<Action>([
    'kms:DescribeKey', 'kms:ListKeys', 'kms:ListAliases', 'kms:ListResourceTags', 'kms:GetKeyPolicy',
    'kms:ListKeyPolicies', 'kms:GetPublicKey', 'kms:GetKeyRotationStatus', 'kms:ListKeyRotations', 'mpchsm:ReadAudit',
  ]),
  // Runs one signer on its own host; through the cluster it may do nothing, approvals included.
  operator: new Set<Action>(),
};

export const roleAllows = (role: PolicyRole, action: Action): boolean => ROLE_CEILINGS[role].has(action);

/** Why a role may not perform `action`, for denial messages: which role it would take. */
export function requiredRoleText(action: Action): string {
  const roles = ROLES.filter((r) => ROLE_CEILINGS[r].has(action)).map((r) => ROLE_TITLES[r]);
  if (roles.length === 0) return 'no role may perform it in mpchsm';
  if (roles.length === 1) return `the ${roles[0]} role is required`;
  return `one of the roles ${roles.join(', ')} is required`;
}
