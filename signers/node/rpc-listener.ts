// The signer's listener: one TLS 1.3 port (certificate from the identity key:
// contract/identity/tls.ts) carrying two things, told apart by ALPN. RPC_ALPN: the gateway's
// calls, framed and multiplexed on long-lived connections (contract/io/rpc-frames.ts), each
// answered by rpc.ts; such a connection is closed before any of its bytes is read unless its
// TLS client proved possession of the pinned gateway key. Anything else is HTTPS, which serves
// only GET /health: public, read-only, no client certificate needed.
import http from 'node:http';
import type net from 'node:net';
import tls from 'node:tls';
import { FrameSplitter } from '../../contract/io/frames.js';
import { decodeMessage, encodeMessage, REFUSED, requestHeadSchema, RPC_ALPN, RPC_MAX_FRAME } from '../../contract/io/rpc-frames.js';
import { CHANNEL_TLS, peerSignKey, type TlsCredentials } from '../../contract/identity/tls.js';
import type { ReplayGuard } from '../../contract/identity/signed-request.js';
import { answerCall, newReplayGuard, type CallContext } from './rpc.js';

/** TLS connections of any kind the listener holds (a flood of strangers cannot take every descriptor). */
const MAX_CONNECTIONS = 1024;
/** The gateway keeps one call connection per signer; more are old ones (a restarted gateway's, a tool's). */
export const MAX_CALL_CONNECTIONS = 32;
/** Calls in flight on one connection before the listener stops reading it until some are answered. */
const MAX_IN_FLIGHT = 256;
/** A handshake not done in 10 s is dropped (node's default holds it for 2 minutes); an idle health connection too. */
const HANDSHAKE_MS = 10_000;
/** The longest a health connection stays open, however busy (a slow sender's headers included). */
const HEALTH_CONNECTION_MS = 30_000;

export interface RpcServerOptions extends CallContext {
  /** This signer's certificate and key, made from `self` (identityTlsCredentials). */
  tls: TlsCredentials;
  /** Unauthenticated, read-only answer for GET /health. */
  health: () => object;
}

export interface RpcServer {
  readonly server: tls.Server;
  /** Stops listening and drops every connection. */
  close(): void;
}

interface CallConnection {
  socket: tls.TLSSocket;
  inFlight: number;
}

export function createRpcServer(opts: RpcServerOptions): RpcServer {
  const guard = newReplayGuard();
  const health = healthServer(opts.health);
  const server = tls.createServer({ ...opts.tls, ...CHANNEL_TLS, requestCert: true, rejectUnauthorized: false, handshakeTimeout: HANDSHAKE_MS, ALPNProtocols: [RPC_ALPN, 'http/1.1'] });
  server.maxConnections = MAX_CONNECTIONS;
  const all = new Set<net.Socket>();
  server.on('connection', (raw: net.Socket) => {
    all.add(raw);
    raw.once('close', () => all.delete(raw));
  });
  /** Call connections, oldest first. */
  const calls = new Set<CallConnection>();
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    if (socket.alpnProtocol !== RPC_ALPN) {
      // Idle for long, or open for longer than a health check takes, is over.
      socket.setTimeout(HANDSHAKE_MS);
      const lifetime = setTimeout(() => socket.destroy(), HEALTH_CONNECTION_MS).unref();
      socket.once('close', () => clearTimeout(lifetime));
      return health.emit('connection', socket);
    }
    // Checked once per connection: every frame on it comes from whoever proved this key.
    if (peerSignKey(socket.getPeerCertificate()) !== opts.callerKey) return refuse(socket, opts);
    if (calls.size >= MAX_CALL_CONNECTIONS) {
      // At the cap the oldest idle one makes room (a connection its gateway forgot); with none idle the new one is refused.
      const idle = [...calls].find((c) => c.inFlight === 0);
      opts.onError(RPC_ALPN, new Error(`${MAX_CALL_CONNECTIONS} call connections open: ${idle ? 'the oldest idle one closed' : 'a new one refused'}`));
      if (!idle) return socket.destroy();
      idle.socket.destroy();
      calls.delete(idle);
    }
    const conn: CallConnection = { socket, inFlight: 0 };
    calls.add(conn);
    socket.once('close', () => calls.delete(conn));
    serveCalls(conn, opts, guard);
  });
  return {
    server,
    close() {
      server.close();
      for (const raw of all) raw.destroy();
    },
  };
}

/** Answers a connection from anyone but the pinned gateway with one unsigned refusal, and closes it, none of its bytes read. */
function refuse(socket: tls.TLSSocket, ctx: CallContext): void {
  const message = 'the TLS client certificate is not the pinned gateway identity';
  ctx.onError(RPC_ALPN, new Error(`${message}: connection closed`));
  socket.on('error', () => undefined);
  socket.end(encodeMessage(REFUSED, { status: 401 }, Buffer.from(JSON.stringify({ code: 'unauthenticated', message }))));
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** Reads call frames on one authenticated connection and answers each as it completes, in any order. */
function serveCalls(conn: CallConnection, ctx: CallContext, guard: ReplayGuard): void {
  const { socket } = conn;
  const splitter = new FrameSplitter(RPC_MAX_FRAME);
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 30_000);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    let frames: Buffer[];
    try {
      // An oversized frame is refused from its length, before its body is held.
      frames = splitter.push(chunk);
      for (const frame of frames) {
        const call = decodeMessage(frame, requestHeadSchema);
        conn.inFlight++;
        void answerCall(ctx, guard, call).then((answer) => {
          conn.inFlight--;
          if (socket.destroyed) return;
          socket.write(answer);
          if (conn.inFlight < MAX_IN_FLIGHT) socket.resume();
        });
      }
    } catch (e) {
      // Only the pinned gateway gets here: a frame it cannot have meant ends the connection.
      ctx.onError(RPC_ALPN, e);
      socket.destroy();
      return;
    }
    if (conn.inFlight >= MAX_IN_FLIGHT) socket.pause();
  });
}

/** GET /health, and nothing else, over HTTPS connections handed over by the listener. */
function healthServer(health: () => object): http.Server {
  // How many health checks this process answered: shows who polls it how often.
  let healthChecks = 0;
  return http.createServer((req, res) => {
    const ok = req.method === 'GET' && req.url === '/health';
    const payload = ok ? { ...health(), healthChecks: ++healthChecks } : { code: 'not-found', message: `no such operation ${req.method} ${req.url}` };
    res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
  });
}
