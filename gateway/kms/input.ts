// Request bodies → typed inputs. Every operation's parameters are a strict zod schema; a zod
// failure becomes the error AWS gives for the same mistake:
// - a value of the wrong JSON type or undecodable base64 → SerializationException;
// - a missing required member, an out-of-range length or number, a value outside an enum,
//   or a member the operation does not have → ValidationException, worded as AWS words it
//   ("1 validation error detected: Value … at 'X' failed to satisfy constraint: …");
// - a well-formed GrantTokens list that is not empty → InvalidGrantTokenException: no grants
//   are issued here, so no token can be valid, and accepting one silently would let a caller
//   believe a grant's permission applied.
// Values are echoed only for enums and patterns, never blobs (they may be plaintext).
import { z } from 'zod';
import { KmsError } from './errors.js';

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

type IssueKind = 'serialization' | 'validation' | 'grant-token';

/** A base64 blob member, decoded, with AWS's byte-length bounds. */
export const blob = (min: number, max: number) =>
  z.string().transform((s, ctx): Uint8Array => {
    if (!B64.test(s)) {
      ctx.addIssue({ code: 'custom', message: 'is not valid base64 (standard alphabet, padded)', params: { kind: 'serialization' } });
      return z.NEVER;
    }
    const bytes = new Uint8Array(Buffer.from(s, 'base64'));
    if (bytes.length < min || bytes.length > max) {
      const bound = bytes.length < min ? `greater than or equal to ${min}` : `less than or equal to ${max}`;
      ctx.addIssue({ code: 'custom', message: `Member must have length ${bound} bytes`, params: { kind: 'validation' } });
      return z.NEVER;
    }
    return bytes;
  });

export const str = (min: number, max: number) => z.string().min(min).max(max);
export const keyIdField = str(1, 2048);
export const grantTokens = z
  .array(str(1, 8192))
  .max(10)
  .optional()
  .superRefine((tokens, ctx) => {
    if (tokens?.length) ctx.addIssue({ code: 'custom', message: 'mpchsm issues no grants, so no grant token is valid here; omit GrantTokens', params: { kind: 'grant-token' } });
  });
export const limitField = (max: number) => z.number().int().min(1).max(max).optional();
export const markerField = str(1, 1024).regex(/^[\u0020-\u00FF]*$/).optional();

const pathName = (path: PropertyKey[]): string =>
  path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '');

const jsonType = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

const valueAt = (root: unknown, path: PropertyKey[]): unknown =>
  path.reduce<unknown>((v, p) => (v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[p] : undefined), root);

function describe(issue: z.core.$ZodIssue, root: unknown, operation: string, members: string[]): { kind: IssueKind; text: string } {
  const at = pathName(issue.path);
  const constraint = (c: string) => ({ kind: 'validation' as const, text: `Value at '${at}' failed to satisfy constraint: ${c}` });
  const bound = (rel: string, n: number | bigint, origin: string) =>
    constraint(`Member must have ${origin === 'number' ? 'value' : 'length'} ${rel} ${n}`);
  switch (issue.code) {
    case 'invalid_type': {
      const value = valueAt(root, issue.path);
      if (value === undefined) return { kind: 'validation', text: `Value null at '${at}' failed to satisfy constraint: Member must not be null` };
      const type = issue.expected === 'int' ? 'integer' : issue.expected === 'record' ? 'object' : issue.expected;
      const expected = `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
      return { kind: 'serialization', text: `'${at}' must be ${expected}, not ${jsonType(value)}` };
    }
    case 'invalid_value': {
      const v = valueAt(root, issue.path);
      const shown = typeof v === 'string' ? `'${v.slice(0, 64)}'` : String(v);
      return { kind: 'validation', text: `Value ${shown} at '${at}' failed to satisfy constraint: Member must satisfy enum value set: [${issue.values.join(', ')}]` };
    }
    case 'too_small':
      return bound('greater than or equal to', issue.minimum, issue.origin);
    case 'too_big':
      return bound('less than or equal to', issue.maximum, issue.origin);
    case 'invalid_format':
      return constraint(`Member must satisfy regular expression pattern: ${issue.format === 'regex' && 'pattern' in issue ? String(issue.pattern) : issue.format}`);
    case 'unrecognized_keys': {
      const where = at ? `'${at}' has no member` : `${operation} has no parameter`;
      const known = at ? '' : `; its parameters are ${members.join(', ')}`;
      return { kind: 'validation', text: `${where} ${issue.keys.map((k) => `'${k}'`).join(', ')}${known}` };
    }
    case 'custom': {
      const kind = (issue.params as { kind?: IssueKind } | undefined)?.kind ?? 'validation';
      if (kind === 'serialization') return { kind, text: `'${at}' ${issue.message}` };
      return kind === 'grant-token' ? { kind, text: issue.message } : constraint(issue.message);
    }
    default:
      return constraint(issue.message);
  }
}

/**
 * Parses an operation's JSON body with its schema, or throws the KmsError AWS would give.
 * Members set to null count as absent (as AWS's JSON protocol treats them).
 */
export function parseInput<S extends z.ZodObject>(schema: S, raw: unknown, operation: string): z.output<S> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new KmsError('SerializationException', `The request body must be a JSON object, not ${jsonType(raw)}`);
  }
  const input = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== null));
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const described = parsed.error.issues.map((i) => describe(i, input, operation, Object.keys(schema.shape)));
  const serialization = described.find((d) => d.kind === 'serialization');
  if (serialization) throw new KmsError('SerializationException', serialization.text);
  const invalid = described.filter((d) => d.kind === 'validation');
  if (invalid.length === 0) throw new KmsError('InvalidGrantTokenException', described[0]!.text);
  const n = invalid.length;
  throw new KmsError('ValidationException', `${n} validation error${n > 1 ? 's' : ''} detected: ${invalid.map((d) => d.text).join('; ')}`);
}

/** The JSON text of a request body ('' counts as {}), or SerializationException. */
export function parseJsonBody(body: Uint8Array): unknown {
  const text = Buffer.from(body).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    // The parser's own message quotes the body, which may hold plaintext: say only what is wrong.
    throw new KmsError('SerializationException', 'The request body is not valid JSON');
  }
}
