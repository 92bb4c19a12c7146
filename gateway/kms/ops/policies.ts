// GetKeyPolicy, PutKeyPolicy, ListKeyPolicies. A key has one policy, named "default", stored as
// the caller wrote it and enforced (gateway/kms/authorize.ts here, signers/node/guard/ at
// every signer); a key created without one gets mpchsm's default policy (policy/key-policy.ts):
// use for the applications, management for the administrators, reads for the auditors.
// PutKeyPolicy is under the administrators' quorum by default: executed once approved, and
// then forwarded with its approvals to every signer, which checks them and keeps its own copy.
import { z } from 'zod';
import { evaluateKeyPolicy, MalformedPolicyDocumentException, parseKeyPolicy, type KeyPolicy } from '../../../policy/index.js';
import { gatewayPolicy } from '../../governance.js';
import { operation } from '../context.js';
import { KmsError } from '../errors.js';
import { keyIdField, limitField, markerField, str } from '../input.js';
import { page, pageFields } from '../paging.js';

const POLICY_NAME = 'default';
export const policyField = str(1, 32768);
const policyNameField = str(1, 128).regex(/^[\w]+$/).optional();

/** Validates a policy document as the engine will evaluate it: MalformedPolicyDocumentException. */
export function checkPolicy(text: string): KeyPolicy {
  try {
    return parseKeyPolicy(text);
  } catch (e) {
    if (e instanceof MalformedPolicyDocumentException) throw new KmsError('MalformedPolicyDocumentException', e.message);
    throw e;
  }
}

function checkPolicyName(name: string | undefined): void {
  if (name !== undefined && name !== POLICY_NAME) throw new KmsError('NotFoundException', `Key policy '${name}' does not exist; the only policy name is '${POLICY_NAME}'`);
}

export const GetKeyPolicy = operation(z.strictObject({ KeyId: keyIdField, PolicyName: policyNameField }), async (ctx, input) => {
  checkPolicyName(input.PolicyName);
  const key = ctx.key(input.KeyId, { aliases: false });
  return { Policy: gatewayPolicy().keyPolicies.policyText(key.keyId), PolicyName: POLICY_NAME };
});

export const PutKeyPolicy = operation(
  z.strictObject({ KeyId: keyIdField, Policy: policyField, PolicyName: policyNameField, BypassPolicyLockoutSafetyCheck: z.boolean().optional() }),
  async (ctx, input) => {
    checkPolicyName(input.PolicyName);
    const policy = checkPolicy(input.Policy);
    // AWS's lockout safety check, before anything is proposed: a policy that would stop its
    // author changing it again is refused unless the caller says it means it.
    const ref = ctx.arns.parseKeyRef(input.KeyId);
    if (!input.BypassPolicyLockoutSafetyCheck && ref.kind === 'key') {
      const arn = gatewayPolicy().principalOf(ctx.principal).arn;
      const context = { 'aws:PrincipalArn': arn, 'aws:username': ctx.principal.name, 'kms:CallerAccount': ctx.arns.account };
      if (evaluateKeyPolicy(policy, { principalArn: arn, action: 'kms:PutKeyPolicy', resource: ctx.arns.key(ref.keyId), context }).effect !== 'Allow') {
        throw new KmsError('MalformedPolicyDocumentException', 'The new key policy will not allow you to update the key policy in the future; set BypassPolicyLockoutSafetyCheck if you mean it');
      }
    }
    const key = ctx.key(input.KeyId, { aliases: false });
    await ctx.state.exclusive(() => ctx.state.putPolicy(key.keyId, input.Policy));
    return undefined;
  },
);

export const ListKeyPolicies = operation(z.strictObject({ KeyId: keyIdField, Limit: limitField(1000), Marker: markerField }), async (ctx, input) => {
  ctx.key(input.KeyId, { aliases: false });
  const p = page([POLICY_NAME], (n) => n, input.Limit ?? 100, input.Marker);
  return { PolicyNames: p.items, ...pageFields(p) };
});
