// `mpchsm up` and `signer add`: a local cluster, one process per signer plus the gateway, made
// and started (running.ts reads and stops it).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { layout, signerName, type Layout } from './layout.js';
import { pinnedGateway, pinnedSigners } from './pinned.js';
import { getJson, partyRuns, stopPid, type Started } from './processes.js';
import { readGenesis } from '../policy/index.js';
import { fingerprint, type PublicIdentity } from '../contract/identity/identity.js';
import { readJsonFile } from '../contract/io/json-file.js';
import { DRAWN_SECRET_SCRYPT } from '../contract/io/seal.js';
import { initSigner } from '../signers/node/init.js';
import { signerConfigSchema, signerPaths } from '../signers/node/config.js';
import { adminInit, gatewayInit, genesisCreate, genesisSign, signerInit } from './parties.js';
import { holdForeground, startParty } from './party-process.js';
import { partsOf, progress, readCluster, stopSwtpms, swtpmState, type ClusterJson } from './running.js';
import { startSwtpm, swtpmTcti } from './swtpm.js';
import type { TpmQuote } from '../signers/node/tpm/attestation.js';
import { principalPropose, principalRequest } from './principal-request.js';
import { approve } from './approve.js';

const settingsSchema = z.object({ signers: z.number().int(), threshold: z.number().int(), port: z.number().int(), seal: z.enum(['software', 'swtpm']).default('software') });
type Settings = z.infer<typeof settingsSchema>;

/** The administrators `up` founds the cluster with, and the principals they then admit. */
const FOUNDING_ADMINS = ['admin1', 'admin2', 'admin3'];
const ADMITTED: [string, 'app' | 'auditor'][] = [
  ['app', 'app'],
  ['auditor', 'auditor'],
];

export interface UpOptions {
  dir: string;
  signers?: number | undefined;
  threshold?: number | undefined;
  port?: number | undefined;
  /** `swtpm`: each signer's store sealed to a software TPM of its own (cli/swtpm.ts). */
  seal?: 'software' | 'swtpm' | undefined;
  detach: boolean;
  /** Each signer answers GET /metrics on loopback (signerMetricsUrl). */
  metrics?: boolean;
  /** The gateway serves its approval console on loopback (consoleUrl). */
  console?: boolean;
}

/**
 * `mpchsm up`: every party of a cluster on this host, made and started with the same commands
 * separate operators run (cli/parties.ts, cli/party-process.ts), their secrets in one directory.
 */
export async function up(opts: UpOptions): Promise<void> {
  const L = layout(opts.dir);
  const running = readCluster(L);
  if (running && partsOf(L, running).some((p) => partyRuns(p.pid, p.dir)))
    throw new Error(`a cluster is already running from ${L.root}; stop it with 'mpchsm down --dir ${opts.dir}'`);

  if (existsSync(L.settingsJson) && !existsSync(L.genesis)) throw new Error(`${L.root} was made by an earlier mpchsm, without a genesis: make the cluster anew in another directory`);
  const settings = existsSync(L.settingsJson) ? reuseSettings(L, opts) : await initialise(L, opts);
  const founding = new Set(readGenesis(L.genesis).signers.map((s) => s.name));
  const names = Array.from({ length: settings.signers }, (_, i) => signerName(i + 1));
  if (settings.seal === 'swtpm') {
    progress(`starting a software TPM for each of ${names.join(', ')}`);
    await Promise.all(names.map((name, i) => startSwtpm(swtpmState(L, name), swtpmPort(settings, i + 1))));
  }
  progress(`starting ${names.join(', ')}`);
  const outcomes = await Promise.allSettled(
    names.map((name, i) =>
      startParty({
        kind: 'signer',
        dir: L.signer(name),
        secret: storedSecret(L, name),
        detach: opts.detach,
        logFile: L.log(name),
        ...(opts.metrics ? { metricsListen: new URL(signerMetricsUrl(settings, i + 1)).host } : {}),
        // A signer admitted after the genesis starts on the configuration its admission gave it.
        ...(founding.has(name) ? { genesis: L.genesis } : { at: { name, url: signerUrl(settings, i + 1) } }),
      }),
    ),
  );
  const started: Started[] = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  const stopAll = async () => {
    await Promise.all(started.map((s) => (s.child.pid ? stopPid(s.child.pid) : undefined)));
    await stopSwtpms(L);
  };
  try {
    const failed = outcomes.find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
    progress('starting gateway');
    started.push(await startParty({ kind: 'gateway', dir: L.gateway, genesis: L.genesis, secret: storedSecret(L, 'gateway'), detach: opts.detach, logFile: L.log('gateway'), ...(opts.console ? { consoleListen: `127.0.0.1:${consolePort(settings)}` } : {}) }));
    if (!existsSync(L.principalEnv(ADMITTED.at(-1)![0]))) await admitPrincipals(L);
    await waitActivated(gatewayUrl(settings), L.log('gateway'));
  } catch (e) {
    await stopAll();
    throw e;
  }

  const cluster: ClusterJson = {
    gateway: { pid: started.at(-1)!.child.pid!, url: gatewayUrl(settings), ...(opts.console ? { console: consoleUrl(settings) } : {}) },
    signers: names.map((name, i) => ({ name, pid: started[i]!.child.pid!, url: signerUrl(settings, i + 1), ...(opts.metrics ? { metrics: signerMetricsUrl(settings, i + 1) } : {}) })),
    threshold: settings.threshold,
    signers_total: settings.signers,
  };
  await writeFileAtomic(L.clusterJson, Buffer.from(JSON.stringify(cluster, null, 2) + '\n'), 0o644);
  progress(`ready: gateway ${cluster.gateway.url}, ${settings.signers} signers, threshold ${settings.threshold}; principals in ${L.principals}`);
  if (opts.console) progress(`approval console: ${consoleUrl(settings)}`);
  if (opts.metrics) progress(`metrics: gateway ${cluster.gateway.url}/metrics; ${cluster.signers.map((s) => `${s.name} ${s.metrics}`).join(', ')}`);

  if (opts.detach) {
    for (const s of started) s.child.unref();
    return;
  }
  await holdForeground(started, (s, how) => progress(`${s.name} exited (${how}); stopping the cluster`));
  await stopSwtpms(L);
  progress('stopped');
}

/** The signers' TPMs answer each other's credentials in seconds each; the gateway retries a failed round a minute later. */
const ACTIVATION_WAIT_MS = 240_000;

/**
 * Under require_attestation the signers join no session with a founder whose TPM has not answered
 * their credentials (gateway/activation.ts relays them from its start): `up` is ready once they all have.
 */
async function waitActivated(url: string, log: string): Promise<void> {
  const until = Date.now() + ACTIVATION_WAIT_MS;
  for (let said = false; ; said = true) {
    const h = z.object({ activation: z.string().optional() }).passthrough().parse(await getJson(`${url}/health`, 3000));
    if (h.activation !== 'activating') return;
    if (!said) progress("waiting for the signers' TPMs to answer each other's credentials (require_attestation)");
    if (Date.now() > until) throw new Error(`the signers' TPMs did not all answer each other's credentials within ${ACTIVATION_WAIT_MS / 1000} s (see ${log})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const gatewayUrl = (s: Settings) => `http://127.0.0.1:${s.port}`;
/** Signer `id` (1, 2, …) listens on the gateway's port + id. */
const signerUrl = (s: Settings, id: number) => `https://127.0.0.1:${s.port + id}`;
/** With `--metrics`, signer `id` answers GET /metrics in plain HTTP on loopback, the gateway's port + 200 + id. */
const signerMetricsUrl = (s: Settings, id: number) => `http://127.0.0.1:${s.port + 200 + id}/metrics`;
/**
 * With `--console`, the gateway's approval console: on loopback at the gateway's port + 200 (below
 * the signers' metrics), and named localhost, the origin a browser allows WebAuthn on without HTTPS.
 */
const consolePort = (s: Settings) => s.port + 200;
const consoleUrl = (s: Settings) => `http://localhost:${consolePort(s)}/`;
/** Signer `id`'s swtpm listens on the gateway's port + 300 + 2·id (its control channel one above), beyond the console and metrics. */
const swtpmPort = (s: Settings, id: number) => s.port + 300 + 2 * id;
/** How signer `name` (party `id`) of a new cluster seals its store: software (its secret in DIR/operators) or to its own swtpm. */
async function signerSeal(L: Layout, settings: Settings, name: string, id: number): Promise<Uint8Array | { tcti: string }> {
  if (settings.seal === 'software') return operatorSecret(L, name);
  await startSwtpm(swtpmState(L, name), swtpmPort(settings, id));
  return { tcti: swtpmTcti(swtpmPort(settings, id)) };
}

function reuseSettings(L: Layout, opts: UpOptions): Settings {
  const s = readJsonFile(L.settingsJson, settingsSchema);
  for (const k of ['signers', 'threshold', 'port', 'seal'] as const) {
    if (opts[k] !== undefined && opts[k] !== s[k]) throw new Error(`${L.root} was initialised with --${k} ${s[k]}; it cannot change to ${opts[k]} on restart`);
  }
  return s;
}

/**
 * First run: each party's own secrets and public file, as its operator would make them (the
 * operators' secrets in DIR/operators, mode 0600: `mpchsm doctor` reports one domain), the
 * genesis, signed by every founding administrator.
 */
async function initialise(L: Layout, opts: UpOptions): Promise<Settings> {
  const settings: Settings = { signers: opts.signers ?? 3, threshold: opts.threshold ?? 2, port: opts.port ?? 4600, seal: opts.seal ?? 'software' };
  if (settings.signers < 1 || settings.signers > 32) throw new Error('--signers must be 1..32');
  if (settings.threshold < 1 || settings.threshold > settings.signers) throw new Error(`--threshold must be 1..${settings.signers}`);
  if (settings.port < 1024 || settings.port + 365 > 65535) throw new Error('--port must leave room above it for the signers, their metrics and software TPMs (1024..65170)');
  progress(`initialising ${L.root}: ${settings.signers} signers, threshold ${settings.threshold}${settings.seal === 'swtpm' ? ', each sealed to a software TPM' : ''}`);
  for (const d of [L.root, L.principals, L.logs, L.operators]) mkdirSync(d, { recursive: true, mode: 0o700 });

  const names = Array.from({ length: settings.signers }, (_, i) => signerName(i + 1));
  const signerFiles: string[] = [];
  // Manufacturing the software TPMs (EK key pairs) takes seconds each: at once.
  const seals = await Promise.all(names.map((name, i) => signerSeal(L, settings, name, i + 1)));
  for (const [i, name] of names.entries()) {
    progress(`  ${name}: sealing a new store and making its identity`);
    const listen = `127.0.0.1:${settings.port + i + 1}`;
    const seal = seals[i]!;
    signerFiles.push((await (seal instanceof Uint8Array ? signerInit({ dir: L.signer(name), name, listen, seal: 'software' }, seal, DRAWN_SECRET_SCRYPT) : signerInit({ dir: L.signer(name), name, listen, seal: 'tpm', tcti: seal.tcti }))).file);
  }
  progress('  gateway: identity and PIN key derivation');
  const gateway = await gatewayInit({ dir: L.gateway, listen: `127.0.0.1:${settings.port}` }, await operatorSecret(L, 'gateway'), DRAWN_SECRET_SCRYPT);
  progress(`  administrators ${FOUNDING_ADMINS.join(', ')}: approval keys and credentials; the genesis, signed by each`);
  const adminFiles = [];
  for (const a of FOUNDING_ADMINS) adminFiles.push((await adminInit(L.principals, a)).file);
  // Signers sealed to (software) TPMs carry quotes: each signer checks every other's, at founding and at admission.
  await genesisCreate({ threshold: settings.threshold, requireAttestation: settings.seal === 'swtpm', gateway: gateway.file, signers: signerFiles, admins: adminFiles, out: L.genesis });
  for (const a of FOUNDING_ADMINS) await genesisSign({ file: L.genesis, as: a, dir: L.principals });
  // The chain `mpchsm approve --dir DIR` checks the gateway's against.
  await writeFileAtomic(path.join(L.root, 'governance.json'), Buffer.from(JSON.stringify({ chain: [readGenesis(L.genesis).governance] }, null, 2) + '\n'), 0o644);
  await writeFileAtomic(L.settingsJson, Buffer.from(JSON.stringify(settings, null, 2) + '\n'), 0o600);
  return settings;
}

/** A party's operator secret as `up` keeps it; none for a TPM-sealed signer, whose TPM unseals its store. */
const storedSecret = (L: Layout, name: string): string => (existsSync(L.operatorSecret(name)) ? readFileSync(L.operatorSecret(name), 'utf8') : '');

/** A new party's operator secret, drawn here (so its store takes DRAWN_SECRET_SCRYPT) and kept in DIR/operators. */
async function operatorSecret(L: Layout, name: string): Promise<Uint8Array> {
  const secret = randomBytes(32).toString('base64url');
  await writeFileAtomic(L.operatorSecret(name), Buffer.from(secret), 0o600);
  return Buffer.from(secret);
}

/** The application and the auditor, each making its own request, proposed by one administrator and approved by another. */
async function admitPrincipals(L: Layout): Promise<void> {
  progress(`  principals ${ADMITTED.map(([n]) => n).join(', ')}: requested, proposed by ${FOUNDING_ADMINS[0]}, approved by ${FOUNDING_ADMINS[1]}`);
  for (const [name, role] of ADMITTED) {
    const request = path.join(L.principals, `${name}.request.json`);
    if (!existsSync(request)) await principalRequest({ name, role, genesis: L.root, dir: L.principals, json: false, quiet: true });
    const { proposal, executed } = await principalPropose(request, L.root, FOUNDING_ADMINS[0]!, false, true);
    if (!executed) await approve(L.root, proposal, FOUNDING_ADMINS[1]!, false, true);
  }
}

/**
 * `mpchsm signer add`'s local part: the next signer of this DIR, set up as its own operator
 * would — a sealed store and identity; the gateway's and the active signers' identities pinned
 * from DIR, never from what the gateway reports — and started, awaiting admission (it holds no
 * policy state until the active signers hand theirs over). Answers what AddSigner names.
 */
export async function startNewSigner(dir: string, active: readonly string[], quiet: boolean): Promise<{ name: string; id: number; identity: PublicIdentity & { fingerprint?: string }; url: string; attestation?: TpmQuote }> {
  const L = layout(dir);
  const cluster = readCluster(L);
  if (!cluster || !partyRuns(cluster.gateway.pid, L.gateway)) throw new Error(`no cluster is running from ${L.root}; start it with 'mpchsm up --dir ${dir}'`);
  const settings = readJsonFile(L.settingsJson, settingsSchema);
  const id = settings.signers + 1;
  const name = signerName(id);
  if (id > 32 || settings.port + id > 65535) throw new Error(`this cluster cannot grow beyond ${settings.signers} signers`);
  if (!quiet) progress(`${name}: sealing a new store and making its identity; starting it awaiting admission`);
  const seal = await signerSeal(L, settings, name, id);
  // With a TPM, its quote over the new identity, which each signer checks where the governance requires it.
  const { identity, attestation } = await initSigner(L.signer(name), name, seal, id, DRAWN_SECRET_SCRYPT);
  const peers = [...pinnedSigners(dir, active).map((p) => ({ name: p.name, id: p.party, identity: p.identity })), { name, id, identity }];
  const config = signerConfigSchema.parse({ name, id, port: settings.port + id, threshold: settings.threshold, gateway: pinnedGateway(dir), peers });
  await writeFileAtomic(signerPaths(L.signer(name)).config, Buffer.from(JSON.stringify(config, null, 2) + '\n'), 0o600);
  const started = await startParty({ kind: 'signer', dir: L.signer(name), secret: storedSecret(L, name), detach: true, logFile: L.log(name), at: { name, url: signerUrl(settings, id) } });
  started.child.unref();
  const url = signerUrl(settings, id);
  // `up` starts it from now on; `down` stops it.
  await writeFileAtomic(L.settingsJson, Buffer.from(JSON.stringify({ ...settings, signers: id }, null, 2) + '\n'), 0o600);
  const next: ClusterJson = { ...cluster, signers: [...cluster.signers, { name, pid: started.child.pid!, url }], signers_total: id };
  await writeFileAtomic(L.clusterJson, Buffer.from(JSON.stringify(next, null, 2) + '\n'), 0o644);
  return { name, id, identity: { ...identity, fingerprint: fingerprint(identity) }, url, ...(attestation ? { attestation } : {}) };
}
