// The PKCS#11 module's requests, OP by OP (contract/pkcs11/wire.ts): who may send each, its
// arguments, the role ceiling checked first where it is, and the operation (p11/ops/). A request
// frame is answered here, never thrown: every failure becomes [CKR, reason] (p11/errors.ts); a
// body that does not decode, or arguments not of the operation's shape, CKR_ARGUMENTS_BAD.
import { CKR, P11Error } from '../../contract/pkcs11/ck.js';
import { Abi, decodeValue, LOGIN_ENDED, OP, type Value } from '../../contract/pkcs11/wire.js';
import { z } from 'zod';
import type { Principal } from '../principals.js';
import { asP11Error } from './errors.js';
import { decrypt, encryptOp, sign, verify } from './ops/crypto.js';
import { generateKeyPair } from './ops/keygen.js';
import { createObject, destroyObject, find, setAttributes } from './ops/objects.js';
import { check, login, logout, pinKdf } from './ops/session.js';
import { bytes, templateSchema, type Login, type P11Deps, type P11Operation, type RequestLog } from './request.js';
import { requireRole } from './roles.js';

/** Each OP's operation, a line per family (p11/ops/session.ts, objects.ts, crypto.ts, keygen.ts). */
const OPERATIONS: Readonly<Record<number, P11Operation>> = {
  [OP.LOGIN]: login, [OP.LOGOUT]: logout, [OP.PIN_KDF]: pinKdf, [OP.CHECK]: check,
  [OP.FIND]: find, [OP.CREATE_OBJECT]: createObject, [OP.DESTROY_OBJECT]: destroyObject, [OP.SET_ATTRIBUTES]: setAttributes,
  [OP.SIGN]: sign, [OP.VERIFY]: verify, [OP.ENCRYPT]: encryptOp, [OP.DECRYPT]: decrypt,
  [OP.GENERATE_KEY_PAIR]: generateKeyPair,
};

const OP_NAMES = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k.toLowerCase()])) as Record<number, string>;

const header = z.tuple([z.literal(1), z.number().int(), z.number().int(), z.instanceof(Buffer)]).rest(z.unknown());

/** Answers one request frame. Never throws: every failure becomes [CKR, reason, mark, requestId]. */
export async function handleRequest(deps: P11Deps, body: Buffer, log: RequestLog): Promise<Value> {
  try {
    const [, op, abiFlags, credential, ...args] = shaped(header, decodeValue(body), 'request header ([1, op, abi, credential, ...])');
    log.op = OP_NAMES[op] ?? `op_${op}`; // the audit takes no spaces in an op
    const abi = new Abi(abiFlags);
    const result = await dispatch(deps, op, abi, credential.toString('utf8'), args, log);
    log.rv = CKR.OK;
    return [CKR.OK, ...result];
  } catch (e) {
    const err = asP11Error(e);
    log.rv = err.rv;
    log.reason = err.message;
    if (err.rv === CKR.GENERAL_ERROR && !(e instanceof P11Error)) deps.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'pkcs11 request failed');
    // The request id lets the module's log line lead to this request's audit entries.
    return [err.rv, Buffer.from(err.message, 'utf8'), err.loginEnded ? LOGIN_ENDED : 0, Buffer.from(log.requestId)];
  }
}

/** Who asks (an unknown operation, too, is answered only to a logged-in principal), then the operation. */
async function dispatch(deps: P11Deps, op: number, abi: Abi, credential: string, args: unknown[], log: RequestLog): Promise<Value[]> {
  const operation = OPERATIONS[op];
  const principal = asker(deps, operation?.login ?? 'principal', credential, args, log);
  if (!operation) throw new P11Error(CKR.FUNCTION_NOT_SUPPORTED, `unknown operation ${op}`);
  const parsed = shaped(operation.args, args, 'arguments');
  if (operation.role) requireRole(principal!, operation.role.operation, operation.role.what);
  return operation.run(deps, { abi, credential, principal, args: parsed, log });
}

const keyRef = z.union([bytes, templateSchema]);

/** `value` as `schema` has it; a request whose values are not of that shape is CKR_ARGUMENTS_BAD. */
function shaped<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new P11Error(CKR.ARGUMENTS_BAD, `malformed request: ${what}${issue?.path.length ? ` at ${issue.path.join('.')}` : ''}: ${issue?.message ?? 'wrong shape'}`);
}

function asker(deps: P11Deps, login: Login, credential: string, args: unknown[], log: RequestLog): Principal | undefined {
  if (login === 'none') return undefined;
  // A session public key needs no login; a token key does.
  if (login === 'token-key' && !Buffer.isBuffer(shaped(keyRef, args[0], 'key (a handle or a template)'))) return undefined;
  // No credential at all is a public session's request; a credential that fails is an ended login.
  if (login === 'public' && credential === '') return undefined;
  return authenticate(deps, credential, log);
}

const ENDED = { expired: 'has expired', revoked: 'was logged out', 'unknown-principal': 'names a principal that no longer exists with that role' } as const;

function authenticate(deps: P11Deps, credential: string, log: RequestLog): Principal {
  const c = credential ? deps.credentials.check(credential) : ({ ok: false, why: 'invalid' } as const);
  if (c.ok) {
    log.principal = c.principal.name;
    log.authenticated = true;
    return c.principal;
  }
  if (c.why === 'invalid') throw new P11Error(CKR.USER_NOT_LOGGED_IN, 'no valid session credential: log in (C_Login) again', true);
  // A genuine login that ended is refused in its principal's name, so the audit says whose it was.
  log.principal = c.name;
  throw new P11Error(CKR.USER_NOT_LOGGED_IN, `the login of ${c.name} ${ENDED[c.why]}: log out (C_Logout) and log in (C_Login) again`, true);
}
