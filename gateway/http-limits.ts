// The KMS/health HTTP listener's limits. A request's headers and body must arrive within
// bounded times (node's headersTimeout and requestTimeout, checked every second). The
// connection cap turns no new client away while a connection stands idle: at the cap, the
// connection that has waited longest without a request in progress (a fresh one that has
// sent nothing, or an idle keep-alive one) is closed to make room; only when every
// connection is busy with a request is the new one refused.
import http from 'node:http';
import type net from 'node:net';

export interface HttpLimits {
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

export function createLimitedServer(handler: http.RequestListener, limits: HttpLimits): http.Server {
  const server = http.createServer({ headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: 1000 }, handler);
  let open = 0;
  /** Connections with no request in progress, longest-waiting first. */
  const waiting = new Set<net.Socket>();
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
    socket.once('close', () => {
      open--;
      waiting.delete(socket);
    });
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    waiting.delete(socket);
    res.once('finish', () => {
      if (!socket.destroyed) waiting.add(socket);
    });
  });
  return server;
}
