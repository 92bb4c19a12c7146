// What the KMS API's middleware (kms/api.ts) learn about one request, on ctx.state: each fact
// set by the middleware that finds it out, read by those after it, the audit entry and the log.
import type Koa from 'koa';
import type { ReceivedRequest } from '../../../policy/index.js';
import type { Principal } from '../../principals.js';
import type { OpContext, Operation } from '../context.js';
import type { MpcHsmOperation } from '../mpchsm.js';
import type { Claim } from '../repeats.js';

export const CONTENT_TYPE = 'application/x-amz-json-1.1';

/** What X-Amz-Target names: a KMS operation (TrentService.<name>), an MpcHsm.<name> one, or a key refresh. */
export type Target = { kind: 'kms'; name: string; op: Operation } | { kind: 'mpchsm'; name: MpcHsmOperation } | { kind: 'refresh' };

export interface KmsRequest {
  requestId: string;
  started: number;
  /** The answer's HTTP status, its outcome (`ok` or the AWS error name) and why it failed. */
  status: number;
  outcome: string;
  reason: string;
  /** The request body as received. */
  payload?: Buffer;
  received?: ReceivedRequest;
  /** Who a signer authenticated the request as. */
  principal?: Principal;
  target?: Target;
  /** The operation and key, for the audit entry and the log (a proposal's execution is recorded as the operation it ran). */
  operation?: string;
  keyId?: string;
  /** The X-Amz-Target of an MpcHsm.* request. */
  via?: string;
  /** The proposal an MpcHsm.* request created. */
  proposed?: string;
  /** A repeat of an earlier request (its id), answered as it was; the claim settles this one's answer for later repeats. */
  repeatOf?: string;
  claim?: Claim;
  /** The operation's context: its session, signers, approvals, proposal, digest. */
  opCtx?: OpContext;
}

export type KmsMiddleware = Koa.Middleware<KmsRequest>;
export type KmsContext = Koa.ParameterizedContext<KmsRequest>;

/** A JSON 1.1 answer. */
export function answer(ctx: Koa.Context, body: string): void {
  ctx.set('Content-Type', CONTENT_TYPE);
  ctx.body = body;
}
