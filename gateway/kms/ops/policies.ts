// GetKeyPolicy, PutKeyPolicy, ListKeyPolicies. A key has one policy, named "default", stored as
// the caller wrote it; a key created without one has AWS's default key policy. The documents
// are kept, not yet enforced: evaluation is the policy engine's (see authorize.ts).
import { z } from 'zod';
import { operation } from '../context.js';
import { KmsError } from '../errors.js';
import type { Arns } from '../ids.js';
import { keyIdField, limitField, markerField, str } from '../input.js';
import { page, pageFields } from '../paging.js';

const POLICY_NAME = 'default';
export const policyField = str(1, 32768);
const policyNameField = str(1, 128).regex(/^[\w]+$/).optional();

/** AWS's default key policy: the account (its IAM principals) may do everything. */
const defaultPolicy = (arns: Arns): string =>
  JSON.stringify(
    {
      Version: '2012-10-17',
      Id: 'key-default-1',
      Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${arns.account}:root` }, Action: 'kms:*', Resource: '*' }],
    },
    null,
    2,
  );

/** A policy document must be a JSON object with a Statement (object or list). */
export function checkPolicy(text: string): void {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new KmsError('MalformedPolicyDocumentException', 'The key policy is not valid JSON');
  }
  const statement = doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? (doc as Record<string, unknown>).Statement : undefined;
  if (statement === null || typeof statement !== 'object') {
    throw new KmsError('MalformedPolicyDocumentException', 'The key policy must be a JSON object with a Statement (a statement object or a list of them)');
  }
}

function checkPolicyName(name: string | undefined): void {
  if (name !== undefined && name !== POLICY_NAME) throw new KmsError('NotFoundException', `Key policy '${name}' does not exist; the only policy name is '${POLICY_NAME}'`);
}

export const GetKeyPolicy = operation(z.strictObject({ KeyId: keyIdField, PolicyName: policyNameField }), async (ctx, input) => {
  checkPolicyName(input.PolicyName);
  const key = ctx.key(input.KeyId, { aliases: false });
  return { Policy: ctx.state.policy(key.keyId) ?? defaultPolicy(ctx.arns), PolicyName: POLICY_NAME };
});

export const PutKeyPolicy = operation(
  z.strictObject({ KeyId: keyIdField, Policy: policyField, PolicyName: policyNameField, BypassPolicyLockoutSafetyCheck: z.boolean().optional() }),
  async (ctx, input) => {
    checkPolicyName(input.PolicyName);
    checkPolicy(input.Policy);
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
