// The benchmark's nginx phase (issue #21's handshake target): nginx serving TLS with an RSA-2048
// key held by mpchsm (the run's key, through the PKCS#11 module with the application's PIN,
// as any PKCS#11 client) and then by SoftHSMv2, through OpenSSL's pkcs11 engine; closed-loop
// clients make full TLS 1.3 handshakes (handshakes.ts), each one signature by the key.

import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { BenchCluster } from './cluster.js';
import { ClientProcess } from './client-process.js';
import { clusterPids, type Held } from './held.js';
import { signingKey } from './keys.js';
import { NginxServer, findNginx, type NginxTools, type TokenKey } from './nginx.js';
import type { Options } from './options.js';
import { CpuMeter } from './procstat.js';
import type { Progress } from './progress.js';
import type { NginxPoint, NginxResults } from './results.js';
import { createSoftHsmToken, type findSoftHsm } from './softhsm.js';
import { keygenAnswerSchema, loadResultSchema, type KeygenResult } from './types.js';

/** Concurrent TLS clients: the issue's targets are at 4 clients. */
export const NGINX_CLIENTS = 4;

/** `%xx` per byte: a PKCS#11 URI's id attribute from a hex CKA_ID. */
export const uriId = (hex: string) => hex.replace(/../g, '%$&');

/** The processes that logged in, from the mpchsm module's log (one `logged in as` line per C_Login, with its pid). */
export function moduleLogins(log: string): number {
  const pids = log
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { pid?: number; msg?: string })
    .filter((l) => l.msg?.startsWith('logged in as '))
    .map((l) => l.pid);
  return new Set(pids).size;
}

/**
 * The mpchsm key: the run's RSA-2048 key by its CKA_ID, the application principal's PIN, and
 * the configuration its env file names for OpenSSL (libp11 0.4.12 needs Edwards keys hidden)
 * copied into nginx's directory with the module's log there, to count the logins.
 */
function mpchsmKey(cluster: BenchCluster, key: KeygenResult, server: NginxServer): TokenKey {
  const app = cluster.principal('app');
  const conf = app.MPCHSM_PKCS11_OPENSSL_CONF;
  if (!app.MPCHSM_PKCS11_MODULE || !conf || !app.MPCHSM_PKCS11_PIN) throw new Error("the app principal's env file names no PKCS#11 module, OpenSSL configuration or PIN");
  const lines = readFileSync(conf, 'utf8').split('\n').filter((l) => !/^\s*log\s*=/.test(l));
  writeFileSync(server.file('pkcs11.conf'), [...lines, `log = ${server.file('pkcs11.log')}`, ''].join('\n'), { mode: 0o600 });
  return { module: app.MPCHSM_PKCS11_MODULE, env: { MPCHSM_PKCS11_CONF: server.file('pkcs11.conf') }, uri: `pkcs11:token=mpchsm;id=${uriId(key.keyRef)};type=private`, pin: app.MPCHSM_PKCS11_PIN, spki: key.spki };
}

/**
 * The SoftHSMv2 key: on a token of its own holding only that key, made here by a client process
 * (libp11 0.4.12 gives up on a token at its first Edwards key, and the run's token holds some).
 */
async function softHsmKey(held: Held, soft: { module: string; version: string }): Promise<TokenKey> {
  if (held.released) throw new Error('the benchmark is stopping');
  const token = (held.nginxToken = createSoftHsmToken(soft));
  const cp = ClientProcess.start('SoftHSMv2 key for nginx', token.env);
  try {
    await cp.call({ op: 'init', init: { kind: 'p11', module: token.module, userPin: token.pin, keygenPin: token.pin, keygenUser: 'user' } }, z.null(), 60_000);
    const a = await cp.call({ op: 'keygen', alg: 'rsa2048', label: 'bench-nginx' }, keygenAnswerSchema, 120_000);
    if (a.status !== 'ok') throw new Error(`SoftHSMv2 made no RSA-2048 key: ${a.status}`);
    return { module: token.module, env: token.env, uri: `pkcs11:token=mpchsm-bench;id=${uriId(a.result.keyRef)};type=private`, pin: token.pin, spki: a.result.spki };
  } finally {
    await cp.stop();
  }
}

async function measure(o: Options, progress: Progress, held: Held, tools: NginxTools, which: NginxPoint['key'], makeKey: (server: NginxServer) => Promise<TokenKey>): Promise<NginxPoint> {
  const label = `nginx TLS handshakes, RSA-2048 ${which === 'mpchsm' ? 'in mpchsm' : 'in SoftHSMv2'}, ${NGINX_CLIENTS} clients`;
  const server = (held.nginx = new NginxServer(tools, o.nginxWorkers));
  try {
    const key = await makeKey(server);
    if (held.released) throw new Error('the benchmark is stopping');
    await progress.during(`${label}: starting nginx`, 0, server.start(key));
    const client = held.tlsClient!;
    const load = (durationMs: number) => client.call({ op: 'handshakes', port: server.port, ca: server.ca, spki: key.spki, concurrency: NGINX_CLIENTS, durationMs }, loadResultSchema, durationMs + 120_000);
    // Long enough for every worker's first handshake, which initialises the module and logs in.
    const warm = o.quick ? o.warmupMs : 3 * o.warmupMs;
    await progress.during(`${label}: warm-up`, warm, load(warm));
    const workers = server.workerPids();
    const cluster = which === 'mpchsm' ? clusterPids(held.cluster!) : {};
    const meter = new CpuMeter({ client: client.pid, 'nginx master': server.pid ?? -1, ...Object.fromEntries(workers.map((pid, i) => [`nginx worker ${i + 1}`, pid])), ...cluster });
    const r = await progress.during(label, o.durationMs, load(o.durationMs));
    const cpu = meter.since();
    if (r.ops === 0) throw new Error(r.firstError ?? 'no handshake completed');
    const per = (ms: number) => Math.round((ms / r.ops) * 1000) / 1000;
    const nginxMs = Object.entries(cpu).reduce((a, [k, v]) => (k.startsWith('nginx') ? a + v : a), 0);
    const perSec = r.ops / (r.wallMs / 1000);
    const point: NginxPoint = {
      key: which,
      status: 'ok',
      ...(r.errors ? { reason: `${r.errors} failed handshakes, first: ${r.firstError}` } : {}),
      workers: workers.length,
      handshakes: r.ops,
      errors: r.errors,
      seconds: Math.round(r.wallMs) / 1000,
      perSec: Math.round(perSec * 100) / 100,
      latencyMs: r.latencyMs,
      cpuMsPerHandshake: { client: per(cpu.client ?? 0), nginx: per(nginxMs), ...Object.fromEntries(Object.keys(cluster).filter((k) => k in cpu).map((k) => [k, per(cpu[k]!)])) },
      ...(which === 'mpchsm' ? { moduleLogins: moduleLogins(readFileSync(server.file('pkcs11.log'), 'utf8')) } : {}),
    };
    progress.step(`${label}: ${perSec.toFixed(1)} handshakes/s, p50 ${r.latencyMs.p50.toFixed(1)} ms, ${workers.length} workers${point.moduleLogins ? `, ${point.moduleLogins} module logins` : ''}${r.errors ? `, ${r.errors} errors` : ''}`);
    return point;
  } catch (e) {
    progress.step(`${label}: failed — ${(e as Error).message}`);
    return { key: which, status: 'failed', reason: (e as Error).message };
  } finally {
    await server.stop();
    held.nginx = undefined;
  }
}

/** nginx with the run's mpchsm RSA-2048 key, then with a SoftHSMv2 one; skipped, saying how to install, without nginx or the engine. */
export async function nginxPhase(o: Options, progress: Progress, held: Held, keys: Map<string, KeygenResult>, soft: ReturnType<typeof findSoftHsm>): Promise<NginxResults> {
  const tools = findNginx();
  if ('missing' in tools) {
    progress.step(`nginx TLS handshakes: skipped — ${tools.missing} (${tools.install})`);
    return { skipped: tools.missing, install: tools.install };
  }
  progress.step(`${tools.version} with OpenSSL's pkcs11 engine: full TLS 1.3 handshakes, no resumption`);
  held.tlsClient = ClientProcess.start('nginx TLS client', {});
  const points: NginxPoint[] = [];
  try {
    const key = signingKey(keys, 'p11', 'rsa2048');
    if (key) points.push(await measure(o, progress, held, tools, 'mpchsm', async (server) => mpchsmKey(held.cluster!, key, server)));
    else points.push({ key: 'mpchsm', status: 'unavailable', reason: 'no mpchsm RSA-2048 key was made' });
    if ('module' in soft) points.push(await measure(o, progress, held, tools, 'softhsm', () => softHsmKey(held, soft)));
    else points.push({ key: 'softhsm', status: 'unavailable', reason: soft.missing });
  } finally {
    await held.tlsClient.stop();
    held.tlsClient = undefined;
    held.nginxToken?.close();
    held.nginxToken = undefined;
  }
  return { version: tools.version, tls: 'TLSv1.3', concurrency: NGINX_CLIENTS, workers: o.nginxWorkers, points };
}
