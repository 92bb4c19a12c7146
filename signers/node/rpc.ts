// The signer's answer to one gateway call: JSON requests, each signed by the caller and checked
// against its pinned identity key, freshness and replay guard, and every answer signed by this
// signer and bound to the request's nonce (contract/identity/signed-request.ts). The channel
// that carries them is rpc-listener.ts; the client half is gateway/signer-client.ts.
import { z } from 'zod';
import { ReplayGuard, signResponse, verifyRequest } from '../../contract/identity/signed-request.js';
import type { IdentitySecrets } from '../../contract/identity/identity.js';
import { encodeMessage, type RequestHead, type RpcMessage } from '../../contract/io/rpc-frames.js';
import type { Released } from '../../contract/signer-rpc/released.js';
import type { SignerErrorCode } from '../../contract/signer-rpc/errors.js';
import { logHeadSchema, type Route, type RouteAnswer } from '../../contract/signer-rpc/route.js';

export const RPC_MAX_SKEW_MS = 60_000;

/** A refusal a handler reports to the caller: `status` 4xx, a stable `code`, a message. */
export class RpcError extends Error {
  constructor(
    readonly status: number,
    readonly code: SignerErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * What the caller says about itself beside the request: the head of its own audit log when it
 * sent it, which the signer records (so a caller's log cut short later is caught).
 */
export interface RpcMeta {
  callerHead?: { seq: number; hash: string };
}
export type RpcHandler = (body: unknown, meta: RpcMeta) => Promise<unknown>;

/** An act other than a release that an answer adds to this signer's audit log. */
export interface Recorded {
  request: string;
  keyId?: string;
  /** Who asked and who approved, where an administrator asked for the act (a refresh). */
  principal?: { name: string };
  policy?: { version: number; approvals: string[] };
  detail: Record<string, string | number | boolean>;
}

/**
 * A handler's result on `R`: the route's answer, less the audit head that service.ts adds for a
 * release, with what the audit entry records (neither `released` nor `recorded` is sent).
 */
export type Answer<R extends Route> = Omit<RouteAnswer<R>, 'audit'> & { released?: Released; recorded?: Recorded };

/** Splits the reserved `callerHead` member off a request body. */
function splitMeta(json: unknown): { body: unknown; meta: RpcMeta } {
  if (json === null || typeof json !== 'object' || !('callerHead' in json)) return { body: json, meta: {} };
  const { callerHead, ...body } = json as { callerHead: unknown };
  const head = logHeadSchema.safeParse(callerHead);
  if (!head.success) throw new RpcError(400, 'malformed', 'callerHead is not a log head');
  return { body, meta: { callerHead: head.data } };
}

export interface CallContext {
  self: IdentitySecrets;
  /** The caller's pinned Ed25519 public key (hex). */
  callerKey: string;
  routes: Record<string, RpcHandler>;
  /** Told about every refused or failed request (for the log; never secrets). */
  onError: (path: string, e: unknown) => void;
}

/** The signed-request checks' memory of recent nonces, one per listener. */
export const newReplayGuard = (): ReplayGuard => new ReplayGuard(65_536, 'refuse');

/**
 * Answers one call, as the frame to send back; never throws. An unknown path and a request
 * that fails authentication are answered unsigned (there is no request to bind the answer to);
 * everything else is signed and bound to the request's nonce.
 */
export async function answerCall(ctx: CallContext, guard: ReplayGuard, call: RpcMessage<RequestHead>): Promise<Buffer> {
  const { id, head, body } = call;
  const reply = (status: number, payload: unknown, replyTo?: string): Buffer => {
    const bytes = Buffer.from(JSON.stringify(payload));
    return encodeMessage(id, replyTo ? { status, auth: signResponse({ status, body: bytes, replyTo }, ctx.self.signSecretKey) } : { status }, bytes);
  };
  const route = Object.hasOwn(ctx.routes, head.path) ? ctx.routes[head.path] : undefined;
  if (!route) return reply(404, { code: 'not-found', message: `no such operation ${head.path}` });
  let nonce: string;
  try {
    nonce = verifyRequest({ method: 'POST', path: head.path, body, headers: head.auth }, ctx.callerKey, {
      audience: ctx.self.fingerprint,
      now: Date.now(),
      maxSkewMs: RPC_MAX_SKEW_MS,
      replayGuard: guard,
    }).nonce;
  } catch (e) {
    ctx.onError(head.path, e);
    return reply(401, { code: 'unauthenticated', message: (e as Error).message });
  }
  try {
    const { body: request, meta } = splitMeta(JSON.parse(body.toString('utf8')));
    return reply(200, await route(request, meta), nonce);
  } catch (e) {
    ctx.onError(head.path, e);
    if (e instanceof RpcError) return reply(e.status, { code: e.code, message: e.message }, nonce);
    // A request that fails its schema is the caller's fault, not this signer's: say what is wrong.
    if (e instanceof z.ZodError) return reply(400, { code: 'malformed', message: `malformed request: ${e.issues[0]?.path.join('.')}: ${e.issues[0]?.message}` }, nonce);
    return reply(500, { code: 'internal', message: 'internal error (see the signer log)' }, nonce);
  }
}
