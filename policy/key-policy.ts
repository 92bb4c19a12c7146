// Key policies: AWS-style JSON documents (the subset KMS key policies use), validated with zod
// and evaluated as AWS does — an explicit Deny wins, otherwise some Allow must match, otherwise
// the request is denied by default.
//
// Differences from AWS, each on the safe side:
// - There are no IAM policies, so a principal of `arn:aws:iam::ACCOUNT:root` (or the bare
//   account id) means every principal of that account, not "delegate to IAM". Role ceilings
//   (roles.ts) still cap what any statement grants.
// - Unknown condition keys, unknown action names, unknown top-level elements and policy
//   variables (`${…}`) are refused as malformed instead of being accepted and never matching:
//   a Deny that silently never matches, or a misspelt `mpchsm` block, would open a key.
//
// The `mpchsm` top-level block carries mpchsm's own per-key controls (allowed algorithms, rate
// limit, approvals per signature); AWS tools read and write the document as plain JSON.
import { z } from 'zod';
import { RSA_PKCS1_RAW, SIGNING_ALGORITHMS } from '../contract/keys/specs.js';
import { KMS_OPERATIONS, KMS_PERMISSION_ONLY } from './roles.js';

/** PutKeyPolicy / CreateKey refusal; the gateway answers with the KMS error of the same name. */
export class MalformedPolicyDocumentException extends Error {
  override readonly name = 'MalformedPolicyDocumentException';
}

/** AWS's limit on a key policy document. */
export const MAX_POLICY_BYTES = 32_768;
export const ENCRYPTION_ALGORITHMS = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] as const;

const ACCOUNT_RE = /^\d{12}$/;
/** IAM principal names as mpchsm issues them (gateway/principals.ts). */
const NAME_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
const PRINCIPAL_RE = /^arn:aws:iam::(\d{12}):(root|user\/[A-Za-z0-9_.@-]{1,64})$/;
const KEY_ARN_PATTERN_RE = /^arn:aws:kms:[a-z0-9*?-]*:[0-9*?]*:key\/[A-Za-z0-9*?-]+$/;

// IAM names ReEncrypt's two halves as separate actions.
const POLICY_ACTIONS: readonly string[] = [...KMS_OPERATIONS, ...KMS_PERMISSION_ONLY].map((o) => `kms:${o}`);

// ---- conditions ---------------------------------------------------------------------------

type KeyType = 'string' | 'number';
/** The condition keys mpchsm populates, by lower-case name (AWS key names are case-insensitive). */
const CONDITION_KEYS: ReadonlyMap<string, { name: ConditionKey; type: KeyType }> = new Map(
  (
    [
      ['kms:SigningAlgorithm', 'string'],
      ['kms:EncryptionAlgorithm', 'string'],
      ['kms:MessageType', 'string'],
      ['kms:CallerAccount', 'string'],
      ['kms:KeySpec', 'string'],
      ['kms:KeyUsage', 'string'],
      ['kms:KeyOrigin', 'string'],
      ['kms:ScheduleKeyDeletionPendingWindowInDays', 'number'],
      ['aws:PrincipalArn', 'string'],
      ['aws:username', 'string'],
    ] as const
  ).map(([name, type]) => [name.toLowerCase(), { name, type }]),
);
export type ConditionKey =
  | 'kms:SigningAlgorithm'
  | 'kms:EncryptionAlgorithm'
  | 'kms:MessageType'
  | 'kms:CallerAccount'
  | 'kms:KeySpec'
  | 'kms:KeyUsage'
  | 'kms:KeyOrigin'
  | 'kms:ScheduleKeyDeletionPendingWindowInDays'
  | 'aws:PrincipalArn'
  | 'aws:username';
/** The request's values for the condition keys (all single-valued); absent keys are absent. */
export type ConditionContext = Partial<Record<ConditionKey, string | number>>;

type Comparison = (ctx: string | number, value: string) => boolean;
const STRING_OPS: Record<string, { test: Comparison; negated: boolean }> = {};
const NUMBER_OPS: Record<string, { test: Comparison; negated: boolean }> = {};
{
  const eq: Comparison = (c, v) => String(c) === v;
  const eqi: Comparison = (c, v) => String(c).toLowerCase() === v.toLowerCase();
  const like: Comparison = (c, v) => globToRegExp(v, false).test(String(c));
  for (const [prefix, test] of [['Equals', eq], ['EqualsIgnoreCase', eqi], ['Like', like]] as const) {
    STRING_OPS[`String${prefix}`] = { test, negated: false };
    STRING_OPS[`StringNot${prefix}`] = { test, negated: true };
  }
  for (const [prefix, test] of [['Equals', eq], ['Like', like]] as const) {
    STRING_OPS[`Arn${prefix}`] = { test, negated: false };
    STRING_OPS[`ArnNot${prefix}`] = { test, negated: true };
  }
  const num = (f: (a: number, b: number) => boolean): Comparison => (c, v) => typeof c === 'number' && f(c, Number(v));
  NUMBER_OPS.NumericEquals = { test: num((a, b) => a === b), negated: false };
  NUMBER_OPS.NumericNotEquals = { test: num((a, b) => a === b), negated: true };
  NUMBER_OPS.NumericLessThan = { test: num((a, b) => a < b), negated: false };
  NUMBER_OPS.NumericLessThanEquals = { test: num((a, b) => a <= b), negated: false };
  NUMBER_OPS.NumericGreaterThan = { test: num((a, b) => a > b), negated: false };
  NUMBER_OPS.NumericGreaterThanEquals = { test: num((a, b) => a >= b), negated: false };
}

interface Operator {
  set?: 'ForAnyValue' | 'ForAllValues';
  /** `Null`, or a comparison on string or number keys. */
  kind: 'null' | KeyType;
  test: Comparison;
  negated: boolean;
  ifExists: boolean;
}

/** Parses `ForAnyValue:StringLikeIfExists` and the like; undefined if not supported. */
function parseOperator(raw: string): Operator | undefined {
  const m = /^(?:(ForAnyValue|ForAllValues):)?([A-Za-z]+?)(IfExists)?$/.exec(raw);
  if (!m) return undefined;
  const set = m[1] as Operator['set'];
  const base = m[2]!;
  const ifExists = m[3] !== undefined;
  if (base === 'Null') return set || ifExists ? undefined : { kind: 'null', test: () => false, negated: false, ifExists };
  const s = STRING_OPS[base];
  if (s) return { set, kind: 'string', ...s, ifExists };
  const n = NUMBER_OPS[base];
  return n && !set ? { set, kind: 'number', ...n, ifExists } : undefined;
}

function globToRegExp(glob: string, ignoreCase: boolean): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, ignoreCase ? 'is' : 's');
}

/** One condition (operator, key, values) against the request; AWS's semantics for absent keys. */
function conditionHolds(op: Operator, ctx: string | number | undefined, values: string[]): boolean {
  if (op.kind === 'null') return (ctx === undefined) === (values[0] === 'true');
  if (ctx === undefined) {
    // IfExists and ForAllValues hold vacuously; negated operators hold on an absent key;
    // ForAnyValue needs a value to match.
    if (op.ifExists || op.set === 'ForAllValues') return true;
    return op.set === 'ForAnyValue' ? false : op.negated;
  }
  const anyMatch = values.some((v) => op.test(ctx, v));
  return op.negated ? !anyMatch : anyMatch;
}

// ---- schema -------------------------------------------------------------------------------

const list = (what: string) =>
  z.union([z.string(), z.array(z.string()).min(1)], { error: `${what} must be a string or a non-empty list of strings` });
const toList = (v: string | string[]): string[] => (typeof v === 'string' ? [v] : v);

const conditionValue = z.union([z.string(), z.number(), z.boolean()]);
const conditionBlock = z.record(
  z.string(),
  z.record(z.string(), z.union([conditionValue, z.array(conditionValue).min(1)], { error: 'condition values must be strings, numbers or booleans' })),
);

const statementSchema = z
  .strictObject({
    Sid: z.string().max(128).optional(),
    Effect: z.enum(['Allow', 'Deny'], { error: 'Effect must be "Allow" or "Deny"' }),
    Principal: z.union([z.literal('*'), z.strictObject({ AWS: list('Principal.AWS') })], {
      error: 'Principal must be "*" or {"AWS": ARN or [ARN, …]}',
    }),
    Action: list('Action'),
    Resource: list('Resource'),
    Condition: conditionBlock.optional(),
  })
  .superRefine((st, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    if (st.Principal !== '*') {
      for (const p of toList(st.Principal.AWS)) {
        if (p !== '*' && !ACCOUNT_RE.test(p) && !PRINCIPAL_RE.test(p))
          issue(['Principal', 'AWS'], `invalid principal ${JSON.stringify(p)}: use "*", an account id, arn:aws:iam::ACCOUNT:root or arn:aws:iam::ACCOUNT:user/NAME`);
      }
    }
    for (const a of toList(st.Action)) {
      if (a === '*') continue;
      if (!/^kms:[A-Za-z*?]+$/i.test(a)) issue(['Action'], `invalid action ${JSON.stringify(a)}: key policies name kms: actions`);
      else if (!POLICY_ACTIONS.some((known) => globToRegExp(a, true).test(known)))
        issue(['Action'], `action ${JSON.stringify(a)} names no KMS operation`);
    }
    for (const r of toList(st.Resource)) {
      if (r !== '*' && !KEY_ARN_PATTERN_RE.test(r)) issue(['Resource'], `invalid resource ${JSON.stringify(r)}: use "*" or a key ARN`);
    }
    for (const [opName, keys] of Object.entries(st.Condition ?? {})) {
      const op = parseOperator(opName);
      if (!op) {
        issue(['Condition', opName], `unsupported condition operator ${JSON.stringify(opName)}`);
        continue;
      }
      for (const [keyName, raw] of Object.entries(keys)) {
        const key = CONDITION_KEYS.get(keyName.toLowerCase());
        const at = ['Condition', opName, keyName];
        if (!key) {
          issue(at, `unsupported condition key ${JSON.stringify(keyName)}; supported: ${[...CONDITION_KEYS.values()].map((k) => k.name).join(', ')}`);
          continue;
        }
        const values = (Array.isArray(raw) ? raw : [raw]).map(String);
        if (op.kind === 'null') {
          if (values.length !== 1 || !['true', 'false'].includes(values[0]!)) issue(at, 'Null takes true or false');
        } else if (op.kind !== key.type) {
          issue(at, `${opName} does not apply to ${key.name}, a ${key.type} key`);
        } else if (op.kind === 'number' && values.some((v) => !/^-?\d+(\.\d+)?$/.test(v))) {
          issue(at, `${opName} needs numbers`);
        } else if (values.some((v) => v.includes('${'))) {
          issue(at, 'policy variables (${…}) are not supported');
        }
      }
    }
  });

export const mpchsmExtensionSchema = z.strictObject({
  /** The only algorithms Sign/Verify/Encrypt/Decrypt may use with this key. */
  allowedAlgorithms: z.array(z.enum([...SIGNING_ALGORITHMS, RSA_PKCS1_RAW, ...ENCRYPTION_ALGORITHMS])).min(1).optional(),
  /** Sign and Decrypt calls per minute on this key (token bucket; `burst` defaults to perMinute). */
  rateLimit: z
    .strictObject({ perMinute: z.number().int().min(1).max(1_000_000), burst: z.number().int().min(1).max(1_000_000).optional() })
    .optional(),
  /** Administrator approvals each signature needs (sign-approvals.ts); 0 or absent: none. */
  approvalsPerSignature: z.number().int().min(0).max(64).optional(),
});
export type MpchsmExtension = z.infer<typeof mpchsmExtensionSchema>;

export const keyPolicySchema = z
  .strictObject({
    Version: z.enum(['2012-10-17', '2008-10-17'], { error: 'Version must be "2012-10-17"' }),
    Id: z.string().max(128).optional(),
    // A single statement object is allowed, as in AWS; errors then point into it.
    Statement: z.preprocess((s) => (s !== null && typeof s === 'object' && !Array.isArray(s) ? [s] : s), z.array(statementSchema).min(1)),
    mpchsm: mpchsmExtensionSchema.optional(),
  })
  .superRefine((doc, ctx) => {
    const sids = doc.Statement.map((s) => s.Sid).filter((s) => s !== undefined);
    const dup = sids.find((s, i) => sids.indexOf(s) !== i);
    if (dup !== undefined) ctx.addIssue({ code: 'custom', path: ['Statement'], message: `duplicate Sid ${JSON.stringify(dup)}` });
  });
export type KeyPolicy = z.output<typeof keyPolicySchema>;
export type Statement = KeyPolicy['Statement'][number];

/** Validates a policy document (already parsed JSON). Throws MalformedPolicyDocumentException. */
export function validateKeyPolicy(doc: unknown): KeyPolicy {
  const r = keyPolicySchema.safeParse(doc);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  const where = i.path.length ? i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').slice(1) : 'document';
  throw new MalformedPolicyDocumentException(`key policy ${where.replace(/\.\[/g, '[')}: ${i.message}`);
}

/** Parses the Policy string of PutKeyPolicy/CreateKey. Throws MalformedPolicyDocumentException. */
export function parseKeyPolicy(text: string): KeyPolicy {
  if (typeof text !== 'string') throw new MalformedPolicyDocumentException('key policy must be a JSON string');
  if (Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES)
    throw new MalformedPolicyDocumentException(`key policy exceeds ${MAX_POLICY_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new MalformedPolicyDocumentException('key policy is not valid JSON');
  }
  return validateKeyPolicy(doc);
}

// ---- evaluation ---------------------------------------------------------------------------

export interface PolicyRequest {
  /** `arn:aws:iam::ACCOUNT:user/NAME` */
  principalArn: string;
  /** `kms:Sign` */
  action: string;
  /** The key's ARN. */
  resource: string;
  context: ConditionContext;
}

export type PolicyDecision =
  | { effect: 'Allow'; statement: string }
  | { effect: 'Deny'; statement: string }
  | {
      effect: 'ImplicitDeny';
      /** An Allow statement that matched but for this condition (helps say what is missing). */
      unmet?: { statement: string; operator: string; key: string };
    };

const label = (s: Statement, i: number) => (s.Sid ? JSON.stringify(s.Sid) : `Statement[${i}]`);

function principalMatches(p: Statement['Principal'], arn: string): boolean {
  if (p === '*') return true;
  const account = PRINCIPAL_RE.exec(arn)?.[1];
  return toList(p.AWS).some((x) => x === '*' || x === arn || (account !== undefined && (x === account || x === `arn:aws:iam::${account}:root`)));
}

/** The first condition of `s` that does not hold, or undefined if all hold. */
function unmetCondition(s: Statement, context: ConditionContext): { operator: string; key: string } | undefined {
  for (const [opName, keys] of Object.entries(s.Condition ?? {})) {
    const op = parseOperator(opName)!; // validated
    for (const [keyName, raw] of Object.entries(keys)) {
      const key = CONDITION_KEYS.get(keyName.toLowerCase())!;
      const values = (Array.isArray(raw) ? raw : [raw]).map(String);
      if (!conditionHolds(op, context[key.name], values)) return { operator: opName, key: key.name };
    }
  }
  return undefined;
}

/** Evaluates a validated key policy: explicit Deny, else Allow, else implicit deny. */
export function evaluateKeyPolicy(policy: KeyPolicy, req: PolicyRequest): PolicyDecision {
  let allow: string | undefined;
  let unmet: { statement: string; operator: string; key: string } | undefined;
  for (const [i, s] of policy.Statement.entries()) {
    if (!principalMatches(s.Principal, req.principalArn)) continue;
    if (!toList(s.Action).some((a) => globToRegExp(a, true).test(req.action))) continue;
    if (!toList(s.Resource).some((r) => globToRegExp(r, false).test(req.resource))) continue;
    const failed = unmetCondition(s, req.context);
    if (failed) {
      if (s.Effect === 'Allow') unmet ??= { statement: label(s, i), ...failed };
      continue;
    }
    if (s.Effect === 'Deny') return { effect: 'Deny', statement: label(s, i) };
    allow ??= label(s, i);
  }
  if (allow !== undefined) return { effect: 'Allow', statement: allow };
  return unmet ? { effect: 'ImplicitDeny', unmet } : { effect: 'ImplicitDeny' };
}

// ---- the default policy -------------------------------------------------------------------

/** What AWS's default policy gives key administrators (plus ImportKeyMaterial for EXTERNAL keys). */
const ADMIN_ACTIONS = [
  'kms:Create*', 'kms:Describe*', 'kms:Enable*', 'kms:List*', 'kms:Put*', 'kms:Update*', 'kms:Revoke*',
  'kms:Disable*', 'kms:Get*', 'kms:Delete*', 'kms:TagResource', 'kms:UntagResource',
  'kms:ScheduleKeyDeletion', 'kms:CancelKeyDeletion', 'kms:ImportKeyMaterial', 'kms:RotateKeyOnDemand',
];
const USER_ACTIONS = ['kms:Sign', 'kms:Verify', 'kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:GetPublicKey', 'kms:DescribeKey'];
const AUDITOR_ACTIONS = ['kms:Describe*', 'kms:Get*', 'kms:List*'];

/**
 * The policy a key gets when CreateKey names none: management for the administrators, use for
 * the key users, reads for the auditors (principal names, e.g. "admin1", "app"). Unlike AWS's
 * default there is no account-root statement: with no IAM behind it, it would grant everyone.
 */
export function defaultKeyPolicy(account: string, admins: readonly string[], users: readonly string[], auditors: readonly string[] = []): KeyPolicy {
  if (!ACCOUNT_RE.test(account)) throw new MalformedPolicyDocumentException(`account ${JSON.stringify(account)} is not 12 digits`);
  const arns = (names: readonly string[]) =>
    names.map((n) => {
      if (!NAME_RE.test(n)) throw new MalformedPolicyDocumentException(`invalid principal name ${JSON.stringify(n)}`);
      return `arn:aws:iam::${account}:user/${n}`;
    });
  const statement = (Sid: string, names: readonly string[], Action: string[]) =>
    names.length ? [{ Sid, Effect: 'Allow', Principal: { AWS: arns(names) }, Action, Resource: '*' }] : [];
  return validateKeyPolicy({
    Version: '2012-10-17',
    Id: 'mpchsm-default',
    Statement: [
      ...statement('Allow access for Key Administrators', admins, ADMIN_ACTIONS),
      ...statement('Allow use of the key', users, USER_ACTIONS),
      ...statement('Allow read-only access for Auditors', auditors, AUDITOR_ACTIONS),
    ],
  });
}
