// The KMS/health HTTP listener's limits. A request's headers and body must arrive within
// bounded times (node's headersTimeout and requestTimeout, checked every second). The
// connection cap turns no new client away while a connection stands idle: at the cap, the
// connection that has waited longest without a request in progress (a fresh one that has
// sent nothing, or an idle keep-alive one) is closed to make room; only when every
// connection is busy with a request is the new one refused. A request that is not HTTP node
// can parse (headers over http.maxHeaderSize, bad characters) gets AWS's error shape, not
// node's bare status line, and its connection is closed. Given a certificate, the listener
// serves HTTPS (TLS 1.2 or later) under the same limits; the TLS handshake must also finish
// within the headers timeout.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { KmsError } from './kms/errors.js';
import { CONTENT_TYPE } from './kms/mw/state.js';

export interface HttpLimits {
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

/** PEM certificate (chain) and key for HTTPS. */
export interface HttpsCredentials {
  cert: Buffer;
  key: Buffer;
}

export function createLimitedServer(handler: http.RequestListener, limits: HttpLimits, tls?: HttpsCredentials): http.Server {
  const options = { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: 1000 };
  const server = tls
    ? https.createServer({ ...options, ...tls, minVersion: 'TLSv1.2', handshakeTimeout: limits.headersTimeoutMs }, handler)
    : http.createServer(options, handler);
  let open = 0;
  /** Connections with no request in progress, longest-waiting first. */
  const waiting = new Set<net.Socket>();
  /**
   * The counted TCP connections by peer address and port: under HTTPS a request's socket is the
   * TLS socket layered over the counted one, and the peer's endpoint names both.
   */
  const byPeer = new Map<string, net.Socket>();
  const peer = (s: net.Socket) => `${s.remoteAddress}|${s.remotePort}`;
  const close = (socket: net.Socket) => {
    waiting.delete(socket);
    socket.destroy();
  };
  server.on('connection', (socket: net.Socket) => {
    if (open >= limits.maxConnections) {
      const victim = waiting.values().next().value;
      if (!victim) {
        socket.destroy();
        return;
      }
      close(victim);
    }
    open++;
    waiting.add(socket);
    const key = peer(socket);
    byPeer.set(key, socket);
    socket.once('close', () => {
      open--;
      waiting.delete(socket);
      if (byPeer.get(key) === socket) byPeer.delete(key);
    });
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = byPeer.get(peer(req.socket)) ?? req.socket;
    waiting.delete(socket);
    res.once('finish', () => {
      if (!socket.destroyed) waiting.add(socket);
    });
  });
  server.on('clientError', refuseUnparsed);
  return server;
}

/** How long a refused connection's remaining input is read (and dropped) so the client reads the answer, not a reset. */
const DRAIN_MS = 1000;

/**
 * Answers a request node could not parse in AWS's JSON 1.1 shape and closes the connection. The
 * rest of what the client sends is read and dropped for at most DRAIN_MS: closing with unread
 * input would reset the connection before the client reads the answer.
 */
function refuseUnparsed(err: Error & { code?: string }, socket: net.Socket): void {
  // Called again for input that arrives while the answer drains.
  if (draining.has(socket)) return;
  // A peer that reset, or a socket already closing, has nothing to read.
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const refusal =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new KmsError('ValidationException', `The request's headers exceed ${http.maxHeaderSize} bytes`, 431)
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new KmsError('ValidationException', 'The request did not arrive in time', 408)
        : new KmsError('SerializationException', 'The request is not well-formed HTTP/1.1', 400);
  const body = JSON.stringify(refusal.body());
  draining.add(socket);
  socket.end(
    `HTTP/1.1 ${refusal.status} ${http.STATUS_CODES[refusal.status]}\r\nContent-Type: ${CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `x-amzn-RequestId: ${randomUUID()}\r\nConnection: close\r\n\r\n${body}`,
  );
  socket.resume();
  setTimeout(() => socket.destroy(), DRAIN_MS).unref();
}

/** Connections answered by refuseUnparsed, whose remaining input is being dropped. */
const draining = new WeakSet<net.Socket>();
