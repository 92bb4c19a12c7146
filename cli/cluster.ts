// `mpchsm up / down / status`: a local cluster, one process per signer plus the gateway.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { entry, layout, pinnedGateway, pinnedSigners, signerName, type Layout } from './layout.js';
import { formatEnvFile, pkcs11Env } from './env-file.js';
import { exitReport, exitWatch, getJson, isAlive, runNode, startNode, stopPid, waitHealthy, type Started } from './processes.js';
import { gatewayInitOutputSchema, gatewayPaths, loadGatewayConfig, type GatewayInitOutput } from '../gateway/config.js';
import { newPrincipal, PrincipalRegistry, readPinKdf, type Role } from '../gateway/principals.js';
import { bootstrapGovernance } from './approve.js';
import { fingerprint, parsePublicIdentity, type PublicIdentity } from '../contract/identity/identity.js';
import { readJsonFile } from '../contract/io/json-file.js';

const settingsSchema = z.object({ signers: z.number().int(), threshold: z.number().int(), port: z.number().int() });
type Settings = z.infer<typeof settingsSchema>;

export const clusterJsonSchema = z.object({
  gateway: z.object({ pid: z.number().int(), url: z.string() }),
  signers: z.array(z.object({ name: z.string(), pid: z.number().int(), url: z.string() })),
  threshold: z.number().int(),
  signers_total: z.number().int(),
});
export type ClusterJson = z.infer<typeof clusterJsonSchema>;

const READY_TIMEOUT_MS = 30_000;

/** The principals `up` makes: their files in DIR/principals, their secrets sealed at the signers only. */
const BOOTSTRAP: [string, Role][] = [
  ['admin1', 'admin'],
  ['admin2', 'admin'],
  ['admin3', 'admin'],
  ['app', 'app'],
  ['auditor', 'auditor'],
];

export interface UpOptions {
  dir: string;
  signers?: number | undefined;
  threshold?: number | undefined;
  port?: number | undefined;
  detach: boolean;
}

export async function up(opts: UpOptions): Promise<void> {
  const L = layout(opts.dir);
  const running = readCluster(L);
  if (running && [running.gateway.pid, ...running.signers.map((s) => s.pid)].some(isAlive))
    throw new Error(`a cluster is already running from ${L.root}; stop it with 'mpchsm down --dir ${opts.dir}'`);

  const settings = existsSync(L.settingsJson) ? reuseSettings(L, opts) : await initialise(L, opts);
  const names = Array.from({ length: settings.signers }, (_, i) => signerName(i + 1));
  const started: Started[] = [];
  // A process that exits while the others start is reported at once, with its log's last lines.
  const { exited, watch } = exitWatch((name) => L.log(name));
  const stopAll = async () => {
    await Promise.all(started.map((s) => (s.child.pid ? stopPid(s.child.pid) : undefined)));
  };
  try {
    for (const [i, name] of names.entries()) {
      progress(`starting ${name} (signer ${i + 1}/${settings.signers})`);
      started.push(watch(startSigner(L, name, opts.detach)));
    }
    await Promise.race([Promise.all(names.map((_name, i) => signerReady(L, settings, i + 1, started[i]!))), exited]);
    progress('starting gateway');
    const gw = startNode('gateway', entry.gateway, ['run', '--dir', L.gateway], L.log('gateway'), {
      detach: opts.detach,
      stdinSecret: readFileSync(L.operatorSecret('gateway'), 'utf8'),
    });
    started.push(watch(gw));
    await Promise.race([
      waitHealthy(`${gatewayUrl(settings)}/health`, gw.child, READY_TIMEOUT_MS).catch((e: Error) => {
        throw new Error(`gateway did not start: ${e.message} (see ${L.log('gateway')})`);
      }),
      exited,
    ]);
  } catch (e) {
    await stopAll();
    throw e;
  }

  const cluster: ClusterJson = {
    gateway: { pid: started.at(-1)!.child.pid!, url: gatewayUrl(settings) },
    signers: names.map((name, i) => ({ name, pid: started[i]!.child.pid!, url: signerUrl(settings, i + 1) })),
    threshold: settings.threshold,
    signers_total: settings.signers,
  };
  await writeFileAtomic(L.clusterJson, Buffer.from(JSON.stringify(cluster, null, 2) + '\n'), 0o644);
  progress(`ready: gateway ${cluster.gateway.url}, ${settings.signers} signers, threshold ${settings.threshold}; principals in ${L.principals}`);

  if (opts.detach) {
    for (const s of started) s.child.unref();
    return;
  }
  // Foreground: run until a signal or until any process dies, then stop them all.
  await new Promise<void>((resolve) => {
    const finish = () => resolve();
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    for (const s of started)
      s.child.once('exit', (code, signal) => {
        progress(`${s.name} exited (${signal ?? code}); stopping the cluster`);
        finish();
      });
  });
  progress('stopping');
  await stopAll();
}

export async function down(dir: string): Promise<void> {
  const L = layout(dir);
  const cluster = readCluster(L);
  if (!cluster) {
    progress(`nothing is running from ${L.root}`);
    return;
  }
  // Gateway first, so no new request reaches a signer that is going away.
  await stopPid(cluster.gateway.pid);
  await Promise.all(cluster.signers.map((s) => stopPid(s.pid)));
  progress('stopped');
}

const healthSchema = z.object({ keys: z.number().int().optional(), retired: z.boolean().optional(), awaiting: z.string().optional(), store: z.string().optional() }).passthrough();

/** Prints each process, its health and key count; returns the exit status (0: all healthy). */
export async function status(dir: string, json: boolean): Promise<number> {
  const L = layout(dir);
  const cluster = readCluster(L);
  if (!cluster) {
    console.log(json ? JSON.stringify({ running: false }) : `no cluster has been started from ${L.root}`);
    return 1;
  }
  const parts = [{ name: 'gateway', pid: cluster.gateway.pid, url: cluster.gateway.url }, ...cluster.signers];
  const rows = await Promise.all(
    parts.map(async (p) => {
      if (!isAlive(p.pid)) return { ...p, state: 'stopped', keys: undefined as number | undefined };
      try {
        const h = healthSchema.parse(await getJson(`${p.url}/health`, 2000));
        // A removed signer that applied its removal says so; it takes part in nothing any more.
        // A signer that cannot write its store (a full disk) cannot record a release: it serves nothing.
        const state = h.retired ? 'retired' : h.awaiting ? `awaiting ${h.awaiting}` : h.store && h.store !== 'writable' ? `unhealthy: store ${h.store}` : 'healthy';
        return { ...p, state, keys: h.keys };
      } catch (e) {
        return { ...p, state: `unhealthy: ${(e as Error).message}`, keys: undefined };
      }
    }),
  );
  if (json) console.log(JSON.stringify({ running: true, threshold: cluster.threshold, signers_total: cluster.signers_total, processes: rows }));
  else {
    console.log(`cluster ${L.root}: threshold ${cluster.threshold} of ${cluster.signers_total}`);
    for (const r of rows) console.log(`  ${r.name.padEnd(10)} pid ${String(r.pid).padEnd(8)} ${r.url.padEnd(24)} ${r.state}${r.keys === undefined ? '' : `, ${r.keys} keys`}`);
  }
  return rows.every((r) => r.state === 'healthy' || r.state === 'retired' || r.state.startsWith('awaiting')) ? 0 : 1;
}

function readCluster(L: Layout): ClusterJson | undefined {
  if (!existsSync(L.clusterJson)) return undefined;
  return readJsonFile(L.clusterJson, clusterJsonSchema);
}

const gatewayUrl = (s: Settings) => `http://127.0.0.1:${s.port}`;
/** Signer `id` (1, 2, …) listens on the gateway's port + id. */
const signerUrl = (s: Settings, id: number) => `https://127.0.0.1:${s.port + id}`;

function reuseSettings(L: Layout, opts: UpOptions): Settings {
  const s = readJsonFile(L.settingsJson, settingsSchema);
  for (const k of ['signers', 'threshold', 'port'] as const) {
    if (opts[k] !== undefined && opts[k] !== s[k]) throw new Error(`${L.root} was initialised with --${k} ${s[k]}; it cannot change to ${opts[k]} on restart`);
  }
  return s;
}

/** First run: identities for every signer and the gateway, pinned in each other's config. */
async function initialise(L: Layout, opts: UpOptions): Promise<Settings> {
  const settings: Settings = { signers: opts.signers ?? 3, threshold: opts.threshold ?? 2, port: opts.port ?? 4600 };
  if (settings.signers < 1 || settings.signers > 32) throw new Error('--signers must be 1..32');
  if (settings.threshold < 1 || settings.threshold > settings.signers) throw new Error(`--threshold must be 1..${settings.signers}`);
  if (settings.port < 1024 || settings.port + settings.signers > 65535) throw new Error('--port must leave room for the signers above it (1024..65535)');
  progress(`initialising ${L.root}: ${settings.signers} signers, threshold ${settings.threshold}`);
  for (const d of [L.root, L.principals, L.logs, L.gateway, L.operators]) mkdirSync(d, { recursive: true, mode: 0o700 });

  const names = Array.from({ length: settings.signers }, (_, i) => signerName(i + 1));
  const signerIdentities: PublicIdentity[] = [];
  for (const [i, name] of names.entries()) {
    progress(`  ${name}: sealing a new store and making its identity`);
    signerIdentities.push(await initSigner(L, name, i + 1));
  }
  progress('  gateway: identity and PIN key derivation');
  const gatewaySecret = randomBytes(32).toString('base64url');
  await writeFileAtomic(L.operatorSecret('gateway'), Buffer.from(gatewaySecret), 0o600);
  const gwInit: GatewayInitOutput = gatewayInitOutputSchema.parse(
    JSON.parse(
      await runNode(entry.gateway, [
        'init',
        '--dir',
        L.gateway,
        '--port',
        String(settings.port),
        '--threshold',
        String(settings.threshold),
        '--signers',
        JSON.stringify(names.map((name, i) => ({ name, id: i + 1, url: signerUrl(settings, i + 1), identity: signerIdentities[i] }))),
      ], gatewaySecret),
    ),
  );
  const peers = names.map((n, j) => ({ name: n, id: j + 1, identity: signerIdentities[j]! }));
  for (const [i, name] of names.entries()) await configureSigner(L, settings, name, i + 1, gwInit.identity, peers);
  // Made here, for the principals' own files; the gateway keeps only names, roles, access key
  // ids and PIN login hashes.
  const kdf = readPinKdf(L.gateway);
  const made = BOOTSTRAP.map(([name, role]) => newPrincipal(name, role, kdf));
  await new PrincipalRegistry(gatewayPaths(L.gateway).principals).addAll(made.map((m) => m.record));
  const principals = made.map((m) => m.credentials);
  progress('  administrators: approval keys, governance genesis; enrolling principals at every signer');
  await bootstrapGovernance({
    dir: L.root,
    region: gwInit.region,
    account: loadGatewayConfig(L.gateway).account,
    principals,
    signers: names.map((name) => ({ name, dir: L.signer(name), operatorSecret: readFileSync(L.operatorSecret(name), 'utf8') })),
    signerEntry: entry.signer,
  });
  for (const p of principals) {
    const env = {
      AWS_ACCESS_KEY_ID: p.accessKeyId,
      AWS_SECRET_ACCESS_KEY: p.secretAccessKey,
      AWS_REGION: gwInit.region,
      MPCHSM_KMS_ENDPOINT: gatewayUrl(settings),
      ...pkcs11Env(entry.pkcs11Module, gatewayPaths(L.gateway)),
      MPCHSM_PKCS11_PIN: p.pin,
    };
    await writeFileAtomic(L.principalEnv(p.name), Buffer.from(formatEnvFile(env)), 0o600);
  }
  await writeFileAtomic(L.settingsJson, Buffer.from(JSON.stringify(settings, null, 2) + '\n'), 0o600);
  return settings;
}

/**
 * `mpchsm signer add`'s local part: the next signer of this DIR, set up as its own operator
 * would — a sealed store and identity; the gateway's and the active signers' identities pinned
 * from DIR, never from what the gateway reports — and started, awaiting admission (it holds no
 * policy state until the active signers hand theirs over). Answers what AddSigner names.
 */
export async function startNewSigner(dir: string, active: readonly string[], quiet: boolean): Promise<{ name: string; id: number; identity: PublicIdentity & { fingerprint?: string }; url: string }> {
  const L = layout(dir);
  const cluster = readCluster(L);
  if (!cluster || !isAlive(cluster.gateway.pid)) throw new Error(`no cluster is running from ${L.root}; start it with 'mpchsm up --dir ${dir}'`);
  const settings = readJsonFile(L.settingsJson, settingsSchema);
  const id = settings.signers + 1;
  const name = signerName(id);
  if (id > 32 || settings.port + id > 65535) throw new Error(`this cluster cannot grow beyond ${settings.signers} signers`);
  if (!quiet) progress(`${name}: sealing a new store and making its identity; starting it awaiting admission`);
  const identity = await initSigner(L, name, id);
  const peers = [...pinnedSigners(dir, active).map((p) => ({ name: p.name, id: p.party, identity: p.identity })), { name, id, identity }];
  await configureSigner(L, settings, name, id, pinnedGateway(dir), peers);
  const started = startSigner(L, name, true);
  await signerReady(L, settings, id, started);
  started.child.unref();
  const url = signerUrl(settings, id);
  // `up` starts it from now on; `down` stops it.
  await writeFileAtomic(L.settingsJson, Buffer.from(JSON.stringify({ ...settings, signers: id }, null, 2) + '\n'), 0o600);
  const next: ClusterJson = { ...cluster, signers: [...cluster.signers, { name, pid: started.child.pid!, url }], signers_total: id };
  await writeFileAtomic(L.clusterJson, Buffer.from(JSON.stringify(next, null, 2) + '\n'), 0o644);
  return { name, id, identity: { ...identity, fingerprint: fingerprint(identity) }, url };
}

// ---- one signer: made, configured, started ---------------------------------------------------

/**
 * A new signer's sealed store and identity. Dev cluster: its operator secret sits in
 * DIR/operators (mode 0600); in a real deployment each operator keeps their own (`mpchsm doctor`
 * reports this cluster as one domain).
 */
async function initSigner(L: Layout, name: string, id: number): Promise<PublicIdentity> {
  const secret = randomBytes(32).toString('base64url');
  await writeFileAtomic(L.operatorSecret(name), Buffer.from(secret), 0o600);
  return parsePublicIdentity(JSON.parse(await runNode(entry.signer, ['init', '--dir', L.signer(name), '--name', name, '--id', String(id)], secret)));
}

/** Pins the gateway and the peers (this signer included) in a signer's configuration. */
async function configureSigner(L: Layout, settings: Settings, name: string, id: number, gateway: PublicIdentity, peers: readonly { name: string; id: number; identity: PublicIdentity }[]): Promise<void> {
  const port = String(settings.port + id);
  await runNode(entry.signer, ['configure', '--dir', L.signer(name), '--port', port, '--threshold', String(settings.threshold), '--gateway', JSON.stringify(gateway), '--peers', JSON.stringify(peers)]);
}

const startSigner = (L: Layout, name: string, detach: boolean): Started =>
  startNode(name, entry.signer, ['run', '--dir', L.signer(name)], L.log(name), { detach, stdinSecret: readFileSync(L.operatorSecret(name), 'utf8') });

const signerReady = (L: Layout, settings: Settings, id: number, s: Started): Promise<unknown> =>
  waitHealthy(`${signerUrl(settings, id)}/health`, s.child, READY_TIMEOUT_MS).catch((e: Error) => {
    if (s.child.exitCode !== null || s.child.signalCode !== null) throw exitReport(s, s.child.exitCode, s.child.signalCode, L.log(s.name));
    throw new Error(`${s.name} did not start: ${e.message} (see ${L.log(s.name)})`);
  });

function progress(line: string): void {
  console.log(`mpchsm: ${line}`);
}
