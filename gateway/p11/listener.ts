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
import { abandonedEntries } from '../cluster-outcome.js';
import type { GatewayDeps } from '../server.js';
import { CKR } from './ck.js';
import { Credentials } from './credentials.js';
import { handleRequest, type P11Deps, type RequestLog } from './handlers.js';
import { P11Store } from './store.js';
import { FrameReader, frame, WireError } from './wire.js';

/** Idle connections close after this; the module reuses a connection for at most 60 s. */
const IDLE_TIMEOUT_MS = 300_000;
const MAX_CONNECTIONS = 1024;

export const p11Paths = (dir: string) => ({
  dir: path.join(dir, 'p11'),
  tlsKey: path.join(dir, 'p11', 'tls.key'),
  tlsCert: path.join(dir, 'p11', 'tls.crt'),
});

export async function startPkcs11Listener(deps: GatewayDeps): Promise<{ close(): void }> {
  const P = p11Paths(deps.dir);
  const store = new P11Store(P.dir);
  const p11: P11Deps = {
    ...deps,
    store,
    credentials: new Credentials(store.credentialKey, deps.principals),
  };
  const useTls = existsSync(P.tlsKey) && existsSync(P.tlsCert);
  const sockets = new Set<net.Socket>();
  const onConnection = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serve(p11, socket);
  };
  const server = useTls
    ? tls.createServer({ key: readFileSync(P.tlsKey), cert: readFileSync(P.tlsCert), minVersion: 'TLSv1.2' }, onConnection)
    : net.createServer(onConnection);
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.config.pkcs11Port, deps.config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // A TLS handshake failure concerns one client, not the listener.
  server.on('tlsClientError', (e: Error) => deps.log.warn({ err: e.message }, 'pkcs11 TLS handshake failed'));
  deps.log.info({ port: deps.config.pkcs11Port, tls: useTls }, 'pkcs11 listener ready');
  return {
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

/** One audit entry per request: who, what, on which key, with which signers, and how it ended. */
async function record(deps: P11Deps, log: RequestLog, started: number, source: string): Promise<void> {
  const ok = log.rv === CKR.OK;
  const entry: AuditEventInput = {
    request: log.trace.session ?? randomUUID(),
    op: `pkcs11.${log.op}`,
    principal: { ...(log.principal ? { name: log.principal } : {}), source },
    keyId: log.keyId,
    algorithm: log.algorithm,
    digest: log.digest,
    signers: log.trace.signers.length > 0 ? log.trace.signers : undefined,
    session: log.trace.session,
    // Device and internal errors failed; everything else was a refusal.
    outcome: ok ? 'ok' : log.rv === CKR.DEVICE_ERROR || log.rv === CKR.GENERAL_ERROR ? 'failed' : 'refused',
    reason: ok ? undefined : `CKR 0x${log.rv.toString(16)}: ${log.reason ?? ''}`.slice(0, 1024),
    output: ok ? log.output : 'none',
    startedAt: started,
  };
  for (const e of abandonedEntries(log.trace, entry)) await deps.audit.append(e);
  await deps.audit.append(entry);
}

function serve(deps: P11Deps, socket: net.Socket): void {
  const reader = new FrameReader();
  let queue = Promise.resolve();
  socket.setNoDelay(true);
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    let bodies: Buffer[];
    try {
      bodies = reader.push(chunk);
    } catch (e) {
      deps.log.warn({ err: (e as WireError).message, remote: socket.remoteAddress }, 'pkcs11 connection dropped');
      socket.destroy();
      return;
    }
    // Requests on one connection are answered in order.
    for (const body of bodies) {
      queue = queue.then(async () => {
        const started = Date.now();
        const log: RequestLog = { op: 'unknown', rv: 0, trace: { signers: [] }, output: 'none' };
        let answer = await handleRequest(deps, body, log);
        // The gateway's transcript entry is durable before any answer leaves; without it, nothing
        // does. The one exception is no decision: the cluster's public PIN parameters, read before a login.
        try {
          if (log.op !== 'pin_kdf' || log.rv !== CKR.OK) await record(deps, log, started, `pkcs11 ${socket.remoteAddress}:${socket.remotePort}`);
        } catch (e) {
          deps.log.error({ err: (e as Error).message }, 'audit append failed; answer withheld');
          answer = [CKR.DEVICE_ERROR, Buffer.from('the request could not be recorded; nothing was released')];
        }
        const { trace: _trace, ...line } = log;
        deps.log.info({ ...line, ms: Date.now() - started }, 'pkcs11');
        if (!socket.destroyed) socket.write(frame(answer));
      });
    }
  });
}
