// The signer daemon: `init` (seal a new store, make the identity), `configure` (pin the
// gateway and peers: a signer added by governance), `run [--genesis FILE]` (serve; a founding
// signer checks its genesis first: signers/node/genesis.ts). The operator secret arrives on stdin.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { z } from 'zod';
import { readSecretFromStdin } from '../../contract/io/stdin.js';
import { writeFileAtomic } from '../../contract/io/atomic.js';
import type { Logger } from 'pino';
import { Admission } from './admission.js';
import { signerConfigSchema, loadSignerConfig, signerPaths, type SignerConfig } from './config.js';
import { PolicyGuard } from './guard/index.js';
import { loadIdentity, parsePublicIdentity, type IdentitySecrets } from '../../contract/identity/identity.js';
import { identityTlsCredentials } from '../../contract/identity/tls.js';
import { listen } from '../../contract/io/listen.js';
import { adoptGenesis } from './genesis.js';
import { initSigner } from './init.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { AuditLog } from '../../audit/log.js';
import { auditLogPath } from '../../audit/paths.js';
import type { RpcHandler } from './rpc.js';
import { createRpcServer } from './rpc-listener.js';
import { SignerMetrics, startMetricsListener } from './metrics.js';
import { SignerService } from './service.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';
import { isTpmSealed, openSignerStore } from './tpm/store.js';
import { RollbackCounter } from './tpm/rollback.js';
import { readTpmHeader, tpmHeaderSchema } from './tpm/sealer.js';
import { attestationKeyPath } from './tpm/activation.js';
import { readJsonFile } from '../../contract/io/json-file.js';
import { disableCoreDumps } from '../../contract/io/core-dumps.js';
import { limitHeapGrowth } from '../../contract/io/heap-growth.js';

const json = (v: unknown) => Buffer.from(JSON.stringify(v, null, 2) + '\n');

async function init(dir: string, name: string, id: number | undefined): Promise<void> {
  const secret = await readSecretFromStdin('the operator secret');
  try {
    process.stdout.write(JSON.stringify((await initSigner(dir, name, secret, id)).identity) + '\n');
  } finally {
    secret.fill(0);
  }
}

const ownIdentitySchema = z.object({ name: z.string(), id: z.number().int() }).passthrough();

async function configure(dir: string, v: Record<string, string | undefined>): Promise<void> {
  const P = signerPaths(dir);
  const own = readJsonFile(P.identity, ownIdentitySchema);
  const config = signerConfigSchema.parse({
    name: own.name,
    id: own.id,
    port: Number(v.port),
    threshold: Number(v.threshold),
    gateway: parsePublicIdentity(JSON.parse(v.gateway ?? 'null')),
    peers: (JSON.parse(v.peers ?? '[]') as { name: string; id: number; identity: unknown }[]).map((p) => ({ ...p, identity: parsePublicIdentity(p.identity) })),
  });
  await writeFileAtomic(P.config, json(config), 0o600);
}

/**
 * `metricsListen`: where this run answers GET /metrics, over the configuration's (a loopback
 * HOST:PORT, as there). `tcti`: where this run reaches a TPM-sealed store's TPM, over its
 * header's (the device renamed, a TPM moved behind a resource manager).
 */
async function run(dir: string, genesis: string | undefined, metricsListen: string | undefined, tcti: string | undefined): Promise<void> {
  if (tcti !== undefined) tpmHeaderSchema.shape.tcti.parse(tcti);
  limitHeapGrowth();
  // Before any secret is in memory.
  disableCoreDumps();
  const P = signerPaths(dir);
  // Opening verifies every sealed record; a store that fails is refused and we do not start. A
  // TPM-sealed store reads no secret (standard input is then ignored).
  const store = await openSignerStore(P.store, () => readSecretFromStdin('the operator secret'), { tcti });
  // A TPM-sealed store is checked against its TPM counter: an older copy put back is refused.
  const rollback = (await isTpmSealed(P.store)) ? await RollbackCounter.check(P.store, store, tcti) : undefined;
  const identity = await loadIdentity(store);
  if (genesis) await adoptGenesis(dir, store, identity, genesis);
  if (!existsSync(P.config)) throw new Error(`${P.config} is missing: this signer was never configured (start it with --genesis)`);
  const config = loadSignerConfig(dir);
  if (metricsListen !== undefined) config.metricsListen = signerConfigSchema.shape.metricsListen.unwrap().parse(metricsListen);
  const log = pino({ base: { signer: config.name } });
  const audit = await AuditLog.open(auditLogPath(dir), identity);
  const routes: Record<string, RpcHandler> = {};
  let health: () => object;
  let serving: SignerService | undefined;
  const metrics = new SignerMetrics({ auditHead: () => audit.head(), state: () => serving?.metricsState(), peerName: (id) => config.peers.find((p) => p.id === id)?.name });
  // A TPM-sealed signer answers the other signers' credentials with its TPM and attestation key (tpm/activation.ts).
  const tpm = rollback ? { tcti: tcti ?? (await readTpmHeader(P.store)).tcti, keyFile: attestationKeyPath(dir) } : undefined;
  const serve = async () => {
    const service = await SignerService.start({ config, store, identity, log, audit, tpm });
    for (const k of Object.keys(routes)) delete routes[k];
    Object.assign(routes, metrics.instrument(rollback ? rollback.guard(service.routes()) : service.routes()));
    health = () => service.health();
    serving = service;
  };
  if (await PolicyGuard.enrolled(store)) await serve();
  else {
    awaitAdmission({ config, store, identity, log, audit, tpm }, routes, serve, (h) => (health = h));
    Object.assign(routes, metrics.instrument(routes));
  }
  const rpc = createRpcServer({
    self: identity,
    tls: await identityTlsCredentials(identity),
    callerKey: config.gateway.signPublicKey,
    routes,
    health: () => health(),
    onError: (path, e) => log.warn({ path, err: (e as Error).message }, 'request refused or failed'),
  });
  await listen(rpc.server, config.host, config.port);
  metrics.watch(rpc.server);
  const metricsServer = config.metricsListen === undefined ? undefined : await startMetricsListener(config.metricsListen, metrics);
  log.info({ port: config.port, fingerprint: identity.fingerprint, health: health!(), ...(config.metricsListen ? { metrics: config.metricsListen } : {}) }, 'signer ready');
  const stop = () => {
    log.info('stopping');
    rpc.close();
    metricsServer?.close();
    // Sign the log's tail before leaving, so a clean stop leaves a fully certified transcript.
    void audit.close().finally(() => {
      store.close();
      process.exit(0);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/**
 * A signer added after bootstrap starts with no policy state: it answers only its admission
 * (signers/node/admission.ts) until the active signers' states enrol it, then serves fully.
 */
function awaitAdmission(
  ctx: { config: SignerConfig; store: ShareStore; identity: IdentitySecrets; log: Logger; audit: AuditLog; tpm: { tcti: string; keyFile: string } | undefined },
  routes: Record<string, RpcHandler>,
  serve: () => Promise<void>,
  setHealth: (h: () => object) => void,
): void {
  const { config, identity } = ctx;
  setHealth(() => ({ pid: process.pid, name: config.name, id: config.id, fingerprint: identity.fingerprint, keys: 0, awaiting: 'admission' }));
  const { challenge, activate, enrol } = signerRoutes.admission;
  const admission = new Admission(config, ctx.store, identity, ctx.tpm).routes();
  routes[challenge.path] = admission[challenge.path];
  routes[activate.path] = admission[activate.path];
  routes[enrol.path] = async (body) => {
    const startedAt = Date.now();
    const entry = { request: 'admission', op: 'admission.enrol', caller: config.gateway.name, startedAt };
    let enrolled;
    try {
      enrolled = await admission[enrol.path](body);
    } catch (e) {
      await ctx.audit.append({ ...entry, outcome: 'refused', reason: (e as Error).message.slice(0, 1000) });
      throw e;
    }
    await ctx.audit.append({ ...entry, outcome: 'ok', detail: { governanceVersion: enrolled.governanceVersion, keys: enrolled.keys, seq: enrolled.seq } });
    ctx.log.info(enrolled, 'admitted: policy state enrolled from every active signer');
    await serve();
    return enrolled;
  };
  ctx.log.info('awaiting admission: this signer holds no policy state yet');
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const { values: v } = parseArgs({
    args: rest,
    options: { dir: { type: 'string' }, name: { type: 'string' }, id: { type: 'string' }, port: { type: 'string' }, threshold: { type: 'string' }, gateway: { type: 'string' }, peers: { type: 'string' }, genesis: { type: 'string' }, 'metrics-listen': { type: 'string' }, tcti: { type: 'string' } },
  });
  if (!v.dir) throw new Error('--dir is required');
  if (command === 'init') return init(v.dir, v.name ?? '', v.id === undefined ? undefined : Number(v.id));
  if (command === 'configure') return configure(v.dir, v);
  if (command === 'run') return run(v.dir, v.genesis, v['metrics-listen'], v.tcti);
  throw new Error(`unknown command '${command}' (init | configure | run)`);
}

main().catch((e: Error) => {
  // The message names the file for integrity failures; never a secret.
  process.stderr.write(`signer: ${e.message}\n`);
  process.exit(1);
});
