// What every PKCS#11 operation is given (gateway/p11/dispatch.ts): the gateway's parts with the
// facade's store and session credentials, the request as it came (platform, credential,
// arguments) with the principal it was authenticated as, and the log of what it did; and the
// wire shapes the operations' arguments share.
import { z } from 'zod';
import type { Abi, Value } from '../../contract/pkcs11/wire.js';
import type { Trace } from '../cluster-outcome.js';
import type { GatewayDeps } from '../deps.js';
import type { Principal } from '../principals.js';
import type { PinKdf } from '../../policy/index.js';
import type { Credentials } from './credentials.js';
import type { RoleNeed } from './roles.js';
import type { P11Store } from './store.js';

export interface P11Deps extends GatewayDeps {
  store: P11Store;
  credentials: Credentials;
  /** The cluster's PIN key derivation, read once at start so a damaged pin-kdf.json stops the gateway naming it. */
  pinKdf: PinKdf;
}

/** What the request log and the audit entry record about one request (never its data). */
export interface RequestLog {
  /** The request's id: its log line's and its audit entries' (`detail.requestId`). */
  requestId: string;
  op: string;
  /** Whose request it was: a logged-in principal, or the owner of a genuine credential that ended. */
  principal?: string;
  /** A valid login carried or made it (the listener lifts its pre-login limits). */
  authenticated?: boolean;
  keyId?: string;
  rv: number;
  reason?: string;
  /** The cluster algorithm, and SHA-256 of the message or ciphertext it was given. */
  algorithm?: string;
  digest?: string;
  /** The cluster session and its signers. */
  trace: Trace;
  output: 'signature' | 'plaintext' | 'key' | 'none';
}

/**
 * Who may send a request: anyone (C_Login, the PIN parameters, C_Logout, which needs only a
 * genuine credential); anyone with a session key but a logged-in principal with a token key
 * (C_Verify, C_Encrypt); anyone without a credential, a logged-in principal with one
 * (C_FindObjects: public objects before a login); a logged-in principal (the rest).
 */
export type Login = 'none' | 'token-key' | 'public' | 'principal';
type PrincipalOf<L extends Login> = L extends 'principal' ? Principal : L extends 'token-key' | 'public' ? Principal | undefined : undefined;

/** One request as its operation gets it. */
export interface P11Call<A, P> {
  abi: Abi;
  credential: string;
  principal: P;
  args: A;
  log: RequestLog;
}

/** An operation of the dispatch table: who may ask, its arguments, the role ceiling checked first (if it is), and what it does. */
export interface P11Operation<L extends Login = Login, A = unknown> {
  login: L;
  args: z.ZodType<A>;
  role?: RoleNeed;
  run(deps: P11Deps, call: P11Call<A, PrincipalOf<L>>): Value[] | Promise<Value[]>;
}

/** Declares an operation with who may ask, its arguments and role (keeps `args`' type flowing into `run`). */
export const p11Operation = <L extends Login, A>(request: Omit<P11Operation<L, A>, 'run'>, run: P11Operation<L, A>['run']): P11Operation<L, A> => ({ ...request, run });

export const bytes = z.instanceof(Buffer);
export const uint = z.number().int().nonnegative();
export const templateSchema = z.array(z.tuple([uint, bytes]));
export const valueList = z.array(z.custom<Value>(() => true));
/** Arguments an operation does not read. */
export const anyArgs = z.array(z.unknown());
