// What a benchmark run starts and must stop: the protocol-only child process, one client
// process per path (KMS, PKCS#11, SoftHSMv2) and its init, the nginx phase's server, TLS client
// and SoftHSMv2 token, the cluster, the SoftHSMv2 token and the profile directory; release()
// stops them in a fixed order whatever happened.

import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ClientProcess } from './client-process.js';
import type { BenchCluster } from './cluster.js';
import type { NginxServer } from './nginx.js';
import type { ProtocolRow } from './results.js';
import type { SoftHsmToken } from './softhsm.js';
import { TARGET_LABEL, type Target, type WorkerInit } from './types.js';

/** Everything a run has started, released in a fixed order whatever happens. */
export interface Held {
  protocols?: ChildProcess;
  clients: Map<Target, ClientProcess>;
  cluster?: BenchCluster;
  token?: SoftHsmToken;
  profileDir?: string;
  /** The nginx phase's (nginx-phase.ts): the server, its TLS client, its own SoftHSMv2 token. */
  nginx?: NginxServer;
  tlsClient?: ClientProcess;
  nginxToken?: SoftHsmToken;
  /** Set when release() starts (Ctrl-C): a phase still running starts nothing more. */
  released?: boolean;
}

export async function release(h: Held): Promise<void> {
  h.released = true;
  if (h.protocols && h.protocols.exitCode === null) h.protocols.kill();
  await Promise.all([...h.clients.values(), ...(h.tlsClient ? [h.tlsClient] : [])].map((c) => c.stop().catch(() => undefined)));
  h.clients.clear();
  // Before the cluster: its workers are the cluster's clients.
  await h.nginx?.stop().catch(() => undefined);
  h.nginxToken?.close();
  await h.cluster?.close().catch(() => undefined);
  if (h.profileDir) rmSync(h.profileDir, { recursive: true, force: true });
  h.token?.close();
}

const protocolRowSchema = z.object({ protocol: z.string(), curve: z.string(), t: z.number(), n: z.number(), op: z.string(), ms_per_op: z.number() });

/** `npm run bench:protocols -- --json` as a child process, its lines parsed. */
export function protocolFigures(quick: boolean, held: Held): Promise<{ rows: ProtocolRow[] } | { error: string }> {
  const script = fileURLToPath(new URL('./protocols.js', import.meta.url));
  if (!existsSync(script)) return Promise.resolve({ error: `${script} is missing (npm run build)` });
  return new Promise((resolve) => {
    held.protocols = execFile(process.execPath, [script, '--json', ...(quick ? ['--quick'] : [])], { timeout: 300_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) return resolve({ error: `${err.message.split('\n')[0]}${stderr ? `: ${stderr.trim().split('\n').slice(-2).join(' / ')}` : ''}` });
      try {
        const rows = stdout
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => protocolRowSchema.parse(JSON.parse(l)));
        resolve({ rows });
      } catch (e) {
        resolve({ error: `unparseable output: ${(e as Error).message}` });
      }
    });
  });
}

export function clusterPids(c: BenchCluster): Record<string, number> {
  const info = c.info();
  return { gateway: info.gateway.pid, ...Object.fromEntries(info.signers.map((s) => [s.name, s.pid])) };
}

function kmsInit(c: BenchCluster): WorkerInit {
  const app = c.principal('app');
  const admin = c.principal('admin1');
  const creds = (p: Record<string, string>) => ({ accessKeyId: p.AWS_ACCESS_KEY_ID!, secretAccessKey: p.AWS_SECRET_ACCESS_KEY! });
  return { kind: 'kms', endpoint: app.MPCHSM_KMS_ENDPOINT!, region: app.AWS_REGION!, app: creds(app), admin: creds(admin) };
}

/** Starts the client process of `target` for up to `clients` concurrent clients; answers why not, if it cannot. */
export async function startClient(held: Held, target: Target, clients: number, token: SoftHsmToken | undefined): Promise<string | undefined> {
  const cluster = held.cluster!;
  const threads = String(clients + 4);
  let env: Record<string, string>;
  let init: WorkerInit;
  if (target === 'kms') [env, init] = [{}, kmsInit(cluster)];
  else if (target === 'p11') {
    const app = cluster.principal('app');
    const admin = cluster.principal('admin1');
    if (!existsSync(app.MPCHSM_PKCS11_MODULE!)) return `the PKCS#11 module is not built (make -C pkcs11-shim): ${app.MPCHSM_PKCS11_MODULE}`;
    env = { MPCHSM_PKCS11_CONF: app.MPCHSM_PKCS11_CONF!, UV_THREADPOOL_SIZE: threads };
    init = { kind: 'p11', module: app.MPCHSM_PKCS11_MODULE!, userPin: app.MPCHSM_PKCS11_PIN!, keygenPin: admin.MPCHSM_PKCS11_PIN!, keygenUser: 'so' };
  } else {
    if (!token) return 'SoftHSMv2 is not installed';
    env = { ...token.env, UV_THREADPOOL_SIZE: threads };
    init = { kind: 'p11', module: token.module, userPin: token.pin, keygenPin: token.pin, keygenUser: 'user' };
  }
  const cp = ClientProcess.start(TARGET_LABEL[target], env);
  held.clients.set(target, cp);
  try {
    await cp.call({ op: 'init', init }, z.null(), 60_000);
    return undefined;
  } catch (e) {
    held.clients.delete(target);
    await cp.stop();
    return (e as Error).message;
  }
}
