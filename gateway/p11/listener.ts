// The PKCS#11 module's listener: framed requests (see wire.ts) over TCP, or TLS when the
// gateway directory holds p11/tls.key and p11/tls.crt (then the module's configuration says
// `tls = on` and names the CA). Each connection carries one request at a time; the module
// opens as many connections as it has concurrent calls.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { AuditEventInput } from '../../audit/entry.js';
import { AuditedRequest, type IntentFields } from '../audit-intent.js';
import type { GatewayDeps } from '../deps.js';
import type { GatewayMetrics } from '../metrics.js';
import { CKR } from '../../contract/pkcs11/ck.js';
import { Connection, ConnectionTable } from './connections.js';
import { Credentials } from './credentials.js';
import { handleRequest } from './dispatch.js';
import type { P11Deps, RequestLog } from './request.js';
import { P11Store } from './store.js';
import { UnauthenticatedTally } from '../unauthenticated.js';
import { readPinKdf } from '../principals.js';
import { classify } from './unauthenticated.js';
import { gatewayPaths } from '../config.js';
import { listen } from '../../contract/io/listen.js';
import { FrameReader, frame, WireError, type FrameLimits } from '../../contract/pkcs11/wire.js';

/** `metrics` counts its requests and connections. */
export async function startPkcs11Listener(deps: GatewayDeps, metrics: GatewayMetrics): Promise<{ close(): void }> {
  const P = gatewayPaths(deps.dir).tls;
  const store = new P11Store(path.join(deps.dir, 'p11'));
  const c = deps.config;
  const p11: P11Deps = {
    ...deps,
    store,
    credentials: new Credentials(store.credentialKey, deps.principals, c.pkcs11LoginLifetimeMs),
    pinKdf: readPinKdf(deps.dir),
  };
  const tally = new UnauthenticatedTally(deps.audit, deps.log, c.unauthenticatedAuditMs, 'pkcs11');
  const table = new ConnectionTable(
    { max: c.pkcs11MaxConnections, preLoginIdleMs: c.pkcs11PreLoginIdleMs, idleMs: c.pkcs11IdleMs },
    {
      idleClosed: (conn) => {
        if (!conn.authenticated) tally.count('idleClosed', conn.socket.remoteAddress);
      },
      evicted: (conn) => tally.count('evicted', conn.socket.remoteAddress),
    },
  );
  const limits: FrameLimits = { preLoginBytes: c.pkcs11PreLoginFrameBytes, mayExceed: (credential) => p11.credentials.check(credential).ok };
  const useTls = existsSync(P.key) && existsSync(P.cert);
  const secureContext = useTls ? tls.createSecureContext({ key: readFileSync(P.key), cert: readFileSync(P.cert), minVersion: 'TLSv1.2' }) : undefined;
  // TLS is layered on here rather than by a tls.Server, so a connection counts against the cap
  // and its pre-login idle time from its first byte, handshake included.
  const server = net.createServer((raw) => {
    const conn = table.admit(raw);
    if (!conn) {
      tally.count('refusedAtCap', raw.remoteAddress);
      raw.destroy();
      return;
    }
    if (!secureContext) return serve(p11, conn, raw, new FrameReader(limits), tally, metrics);
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext });
    // A TLS handshake failure concerns one client, not the listener.
    const failed = (e: Error) => {
      deps.log.warn({ err: e.message }, 'pkcs11 TLS handshake failed');
      conn.close();
    };
    socket.once('error', failed);
    socket.once('secure', () => {
      socket.off('error', failed);
      serve(p11, conn, socket, new FrameReader(limits), tally, metrics);
    });
  });
  await listen(server, c.pkcs11Host ?? c.host, c.pkcs11Port);
  metrics.watch('pkcs11', server);
  deps.log.info({ port: c.pkcs11Port, tls: useTls }, 'pkcs11 listener ready');
  return {
    close() {
      server.close();
      table.closeAll();
      tally.close();
    },
  };
}

/** Who asked what, on which key and message: the intent's account (audit-intent.ts), and the outcome's. */
const described = (log: RequestLog, socket: net.Socket) =>
  ({
    op: `pkcs11.${log.op}`,
    ...(log.principal !== undefined && { principal: { name: log.principal, source: `pkcs11 ${socket.remoteAddress}:${socket.remotePort}` } }),
    keyId: log.keyId ?? log.trace?.keyId,
    algorithm: log.algorithm,
    digest: log.digest,
    detail: { requestId: log.requestId },
  }) satisfies IntentFields;

/**
 * The gateway's transcript entry for a request, durable before any answer leaves: one entry per
 * request someone's login stands behind; requests with none are only counted (unauthenticated.ts).
 * The cluster's public PIN parameters, read before a login, are no decision and not recorded.
 */
async function record(request: AuditedRequest, tally: UnauthenticatedTally, log: RequestLog, started: number, socket: net.Socket): Promise<void> {
  const ok = log.rv === CKR.OK;
  if (log.op === 'pin_kdf' && ok) return;
  if (log.principal === undefined) return tally.count(classify(log), socket.remoteAddress);
  const entry: AuditEventInput = {
    ...described(log, socket),
    request: log.trace.session ?? log.requestId,
    signers: log.trace.signers.length > 0 ? log.trace.signers : undefined,
    session: log.trace.session,
    // Device and internal errors failed; everything else was a refusal.
    outcome: ok ? 'ok' : log.rv === CKR.DEVICE_ERROR || log.rv === CKR.GENERAL_ERROR ? 'failed' : 'refused',
    reason: ok ? undefined : `CKR 0x${log.rv.toString(16)}: ${log.reason ?? ''}`.slice(0, 1024),
    output: ok ? log.output : 'none',
    startedAt: started,
  };
  await request.finish(entry, log.trace);
}

/** Serves one connection: `socket` is the raw connection, or the TLS socket over it. */
function serve(deps: P11Deps, conn: Connection, socket: net.Socket, reader: FrameReader, tally: UnauthenticatedTally, metrics: GatewayMetrics): void {
  let queue = Promise.resolve();
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    let bodies: Buffer[];
    try {
      bodies = reader.push(chunk);
    } catch (e) {
      tally.count('oversizedFrames', socket.remoteAddress);
      deps.log.debug({ err: (e as WireError).message, remote: socket.remoteAddress }, 'pkcs11 connection dropped');
      conn.close();
      return;
    }
    // Requests on one connection are answered in order; reading waits until they are, so a
    // client cannot queue more than one chunk's worth of requests.
    if (bodies.length > 0) socket.pause();
    for (const body of bodies) {
      conn.begin();
      queue = queue.then(async () => {
        const started = Date.now();
        const log: RequestLog = { requestId: randomUUID(), op: 'unknown', rv: 0, trace: { signers: [] }, output: 'none' };
        const request = new AuditedRequest(deps.audit, () => described(log, socket));
        let answer = await request.run(() => handleRequest(deps, body, log));
        conn.authenticated = log.authenticated === true || (conn.authenticated && log.principal === undefined && log.rv === CKR.OK);
        try {
          await record(request, tally, log, started, socket);
        } catch (e) {
          deps.log.error({ err: (e as Error).message }, 'audit append failed; answer withheld');
          answer = [CKR.DEVICE_ERROR, Buffer.from('the request could not be recorded; nothing was released')];
        }
        // As a KMS request's line (kms/mw/request-id.ts): `session` is the audit entries' `request`.
        const { trace, ...line } = log;
        deps.log[log.principal === undefined ? 'debug' : 'info']({ ...line, ...(trace.session ? { session: trace.session } : {}), ms: Date.now() - started }, 'pkcs11');
        metrics.pkcs11Request(log.op, Array.isArray(answer) ? Number(answer[0]) : CKR.GENERAL_ERROR, (Date.now() - started) / 1000);
        // An answer not yet taken by the peer holds reading too: a client that sends requests and
        // reads no answers (public searches need no login) leaves the gateway one answer at most.
        const flushed = socket.destroyed || socket.write(frame(answer));
        conn.end();
        if (conn.inFlight === 0 && !socket.destroyed) {
          if (flushed) socket.resume();
          else socket.once('drain', () => socket.resume());
        }
      });
    }
  });
}
