// The gateway ↔ signer channel: JSON over HTTPS (TLS 1.3, mutually authenticated by the
// identity keys: contract/identity/tls.ts), and inside it every request signed by the caller and
// every answer signed by the callee, each pinning the other's identity key
// (contract/identity/signed-request.ts). The server half lives here; the client half is
// gateway/signer-client.ts.
import type http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import { ReplayGuard, signResponse, verifyRequest } from '../../contract/identity/signed-request.js';
import type { IdentitySecrets } from '../../contract/identity/identity.js';
import { CHANNEL_TLS, peerSignKey, type TlsCredentials } from '../../contract/identity/tls.js';
import type { Released } from '../../contract/signer-rpc/released.js';
import type { SignerErrorCode } from '../../contract/signer-rpc/errors.js';
import { logHeadSchema, type Route, type RouteAnswer } from '../../contract/signer-rpc/route.js';

export const RPC_MAX_BODY = 16 * 1024 * 1024;
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

export interface RpcServerOptions {
  self: IdentitySecrets;
  /** This signer's certificate and key, made from `self` (identityTlsCredentials). */
  tls: TlsCredentials;
  /** The caller's pinned Ed25519 public key (hex). */
  callerKey: string;
  routes: Record<string, RpcHandler>;
  /** Unauthenticated, read-only answer for GET /health. */
  health: () => object;
  /** Told about every refused or failed request (for the log; never secrets). */
  onError: (path: string, e: unknown) => void;
}

/**
 * The signer's HTTPS server. A client certificate is asked for but not required by TLS itself,
 * so GET /health (public, read-only) answers anyone; every other request is refused before its
 * body is read unless the TLS peer proved possession of the pinned gateway key.
 */
export function createRpcServer(opts: RpcServerOptions): https.Server {
  const guard = new ReplayGuard(65_536, 'refuse');
  // How many health checks this process answered: shows who polls it how often.
  let healthChecks = 0;
  // A handshake not done in 10 s is dropped (node's default holds it for 2 minutes).
  const tlsOptions = { ...opts.tls, ...CHANNEL_TLS, requestCert: true, rejectUnauthorized: false, handshakeTimeout: 10_000 };
  return https.createServer(tlsOptions, (req: http.IncomingMessage, res: http.ServerResponse) => {
    const send = (status: number, payload: unknown, replyTo?: string) => {
      const body = Buffer.from(JSON.stringify(payload));
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (replyTo) Object.assign(headers, signResponse({ status, body, replyTo }, opts.self.signSecretKey));
      res.writeHead(status, headers).end(body);
    };
    if (req.method === 'GET' && req.url === '/health') return send(200, { ...opts.health(), healthChecks: ++healthChecks });
    if (peerSignKey((req.socket as TLSSocket).getPeerCertificate()) !== opts.callerKey) {
      opts.onError(req.url ?? '', new Error('TLS client certificate is not the pinned gateway identity'));
      res.setHeader('connection', 'close');
      return send(401, { code: 'unauthenticated', message: 'the TLS client certificate is not the pinned gateway identity' });
    }
    const route = req.method === 'POST' && req.url ? opts.routes[req.url] : undefined;
    if (!route) return send(404, { code: 'not-found', message: `no such operation ${req.method} ${req.url}` });

    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > RPC_MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      let nonce: string;
      try {
        nonce = verifyRequest({ method: 'POST', path: req.url!, body, headers: req.headers }, opts.callerKey, {
          audience: opts.self.fingerprint,
          now: Date.now(),
          maxSkewMs: RPC_MAX_SKEW_MS,
          replayGuard: guard,
        }).nonce;
      } catch (e) {
        opts.onError(req.url!, e);
        return send(401, { code: 'unauthenticated', message: (e as Error).message });
      }
      try {
        const { body: request, meta } = splitMeta(JSON.parse(body.toString('utf8')));
        send(200, await route(request, meta), nonce);
      } catch (e) {
        opts.onError(req.url!, e);
        if (e instanceof RpcError) send(e.status, { code: e.code, message: e.message }, nonce);
        // A request that fails its schema is the caller's fault, not this signer's: say what is wrong.
        else if (e instanceof z.ZodError) send(400, { code: 'malformed', message: `malformed request: ${e.issues[0]?.path.join('.')}: ${e.issues[0]?.message}` }, nonce);
        else send(500, { code: 'internal', message: 'internal error (see the signer log)' }, nonce);
      }
    });
  });
}
