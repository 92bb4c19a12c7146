// The gateway's HTTP(S) listener: health, metrics (gateway/metrics.ts), and the AWS KMS JSON 1.1 API at POST /.
import { readFileSync } from 'node:fs';
import Koa from 'koa';
import { listen } from '../contract/io/listen.js';
import { activationStatus } from './activation.js';
import type { Cluster } from './cluster.js';
import { kmsTlsFiles } from './config.js';
import type { GatewayDeps } from './deps.js';
import { createLimitedServer, type HttpsCredentials } from './http-limits.js';
import { startConsole } from './console/server.js';
import { kmsMiddleware } from './kms/api.js';
import { GatewayMetrics } from './metrics.js';
import { startPkcs11Listener } from './p11/listener.js';
import { UnauthenticatedTally } from './unauthenticated.js';

/**
 * The signers' health as /health reports it: one fan-out at most every healthCacheMs, shared by
 * every call that arrives meanwhile, so unauthenticated /health calls cannot multiply signer traffic.
 */
function cachedSignerHealth(deps: Pick<GatewayDeps, 'config' | 'cluster'>): () => ReturnType<Cluster['signerHealth']> {
  let last: { at: number; view: ReturnType<Cluster['signerHealth']> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at >= deps.config.healthCacheMs) last = { at: now, view: deps.cluster.signerHealth() };
    return last.view;
  };
}

/** The KMS listener's certificate and key, read at start (a missing file stops the start, naming it). */
function kmsCredentials(deps: Pick<GatewayDeps, 'config' | 'dir'>): HttpsCredentials | undefined {
  const files = kmsTlsFiles(deps.dir, deps.config);
  return files && { cert: readFileSync(files.cert), key: readFileSync(files.key) };
}

/** Starts the KMS/health HTTP(S) listener and the PKCS#11 module's listener; returns both. */
export async function startGatewayServer(deps: GatewayDeps): Promise<{ close(): void }> {
  const app = new Koa();
  const signerHealth = cachedSignerHealth(deps);
  app.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === '/health') {
      const signers = await signerHealth();
      const healthy = signers.filter((s) => s.healthy).length;
      const activation = activationStatus();
      ctx.body = { pid: process.pid, party: 'gateway', keys: deps.cluster.keys.list().length, signers, quorum: healthy >= deps.config.threshold, ...(activation ? { activation } : {}) };
      return;
    }
    await next();
  });
  const metrics = new GatewayMetrics({ reachability: () => deps.cluster.reachability(), threshold: deps.config.threshold, auditHead: () => deps.audit.head() });
  deps.cluster.signerAborted = metrics.protocolAbort;
  app.use(metrics.middleware());
  const unauthenticated = new UnauthenticatedTally(deps.audit, deps.log, deps.config.unauthenticatedAuditMs, 'kms');
  for (const mw of kmsMiddleware(deps, unauthenticated)) app.use(mw);
  const server = createLimitedServer(app.callback(), { maxConnections: deps.config.kmsMaxConnections, headersTimeoutMs: deps.config.kmsHeadersTimeoutMs, requestTimeoutMs: deps.config.kmsRequestTimeoutMs }, kmsCredentials(deps));
  await listen(server, deps.config.host, deps.config.port);
  metrics.watch('kms', server);
  const p11 = await startPkcs11Listener(deps, metrics);
  const approvalConsole = await startConsole(deps, kmsCredentials(deps));
  return {
    close() {
      approvalConsole?.close();
      server.close();
      server.closeAllConnections();
      unauthenticated.close();
      p11.close();
    },
  };
}
