// nginx as a TLS server whose RSA key stays in a PKCS#11 token (mpchsm's or SoftHSMv2's),
// reached through OpenSSL's pkcs11 engine (libp11): found on the machine, configured in a
// temporary prefix directory of its own (configuration, OpenSSL configuration, certificate, PIN
// file, pid file, error log), started on a free loopback port, always stopped and removed.
// nginx-phase.ts measures handshakes against it.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, webcrypto } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { childrenOf } from './procstat.js';

export interface NginxTools {
  nginx: string;
  /** `nginx -v`'s answer, e.g. nginx/1.22.1. */
  version: string;
  /** OpenSSL's pkcs11 engine (libp11). */
  engine: string;
}

/** What keeps the phase from running, and how to install it. */
export interface NginxMissing {
  missing: string;
  install: string;
}

const NGINX_CANDIDATES = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'];

/** nginx (NGINX overrides the search) and OpenSSL's pkcs11 engine, or what is missing. */
export function findNginx(): NginxTools | NginxMissing {
  const onPath = (process.env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, 'nginx'));
  const nginx = process.env.NGINX ?? [...onPath, ...NGINX_CANDIDATES].find((f) => existsSync(f));
  if (!nginx || !existsSync(nginx)) return { missing: 'nginx not installed', install: 'apt-get install nginx' };
  const v = spawnSync(nginx, ['-v'], { encoding: 'utf8', timeout: 10_000 });
  const version = /nginx\/\S+/.exec(`${v.stderr}${v.stdout}`)?.[0];
  if (!version) return { missing: `${nginx} -v does not answer`, install: 'apt-get install --reinstall nginx' };
  let engines: string | undefined;
  try {
    engines = /^ENGINESDIR: "(.*)"$/m.exec(execFileSync('openssl', ['version', '-e'], { encoding: 'utf8', timeout: 10_000 }))?.[1];
  } catch {
    // reported below
  }
  const engine = engines && path.join(engines, 'pkcs11.so');
  if (!engine || !existsSync(engine)) return { missing: "OpenSSL's pkcs11 engine not installed", install: 'apt-get install libengine-pkcs11-openssl' };
  return { nginx, version, engine };
}

/** The key nginx serves with: a private key in a PKCS#11 token, and what its module needs. */
export interface TokenKey {
  module: string;
  /**
   * The module's configuration, by environment (MPCHSM_PKCS11_CONF, SOFTHSM2_CONF): kept in
   * nginx's workers, which initialise the module again after the fork.
   */
  env: Record<string, string>;
  /** The PKCS#11 URI of the private key, without its PIN (token=…;id=…;type=private). */
  uri: string;
  pin: string;
  /** DER SubjectPublicKeyInfo, base64: the certificate's key. */
  spki: string;
}

export interface NginxSettings {
  port: number;
  workers: number | 'auto';
  /** Run as root: workers stay root, the token and the module's configuration being root's alone. */
  root: boolean;
}

/** `nginx.conf` for one TLS server on loopback, every path inside `dir`; pure. */
export function nginxConfig(dir: string, s: NginxSettings, keyUri: string, env: readonly string[]): string {
  const f = (name: string) => JSON.stringify(path.join(dir, name));
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${f(`tmp/${t}`)};`);
  return [
    '# Written by the mpchsm benchmark (conformance/bench/nginx.ts), removed when it stops.',
    'daemon off;',
    'master_process on;',
    ...(s.root ? ['user root;'] : []),
    `worker_processes ${s.workers};`,
    `pid ${f('nginx.pid')};`,
    `error_log ${f('error.log')} warn;`,
    ...env.map((e) => `env ${e};`),
    'events { worker_connections 1024; }',
    'http {',
    '  access_log off;',
    ...temp,
    '  server {',
    `    listen 127.0.0.1:${s.port} ssl;`,
    `    ssl_certificate ${f('cert.pem')};`,
    `    ssl_certificate_key ${JSON.stringify(`engine:pkcs11:${keyUri}`)};`,
    '    ssl_protocols TLSv1.2 TLSv1.3;',
    // Every handshake a full one: no session cache, no tickets.
    '    ssl_session_cache off;',
    '    ssl_session_tickets off;',
    '    location / { return 204; }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** OpenSSL's configuration for nginx: the pkcs11 engine loaded and initialised with `module`. */
export function opensslConfig(engine: string, module: string): string {
  return ['openssl_conf = openssl_init', '[openssl_init]', 'engines = engines', '[engines]', 'pkcs11 = pkcs11', '[pkcs11]', 'engine_id = pkcs11', `dynamic_path = ${engine}`, `MODULE_PATH = ${module}`, 'init = 1', ''].join('\n');
}

/**
 * A certificate for the key (CN and SAN localhost, 127.0.0.1), issued by a throwaway CA
 * made here: the token's key signs handshakes only, never its certificate.
 */
async function certificateFor(spki: string): Promise<{ cert: string; ca: string }> {
  const c = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const caKeys = (await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + 2 * 24 * 3600_000);
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    { serialNumber: '01' + randomBytes(15).toString('hex'), name: 'CN=mpchsm benchmark CA', notBefore, notAfter, signingAlgorithm: alg, keys: caKeys, extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)] },
    c,
  );
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: '01' + randomBytes(15).toString('hex'),
      subject: 'CN=localhost',
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: Buffer.from(spki, 'base64'),
      signingKey: caKeys.privateKey,
      signingAlgorithm: alg,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }])],
    },
    c,
  );
  return { cert: cert.toString('pem'), ca: ca.toString('pem') };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const connects = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

/** One nginx: its prefix directory exists from construction until stop(), which always removes it. */
export class NginxServer {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-bench-nginx-'));
  port = 0;
  /** The CA the certificate chains to (PEM), for the clients. */
  ca = '';
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly tools: NginxTools,
    private readonly workers: number | 'auto',
  ) {}

  file(name: string): string {
    return path.join(this.dir, name);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** nginx's worker processes (children of the master) now. */
  workerPids(): number[] {
    return this.child?.pid ? childrenOf(this.child.pid) : [];
  }

  /** Starts nginx with `key`; resolves once it accepts connections (it has loaded the key by then). */
  async start(key: TokenKey): Promise<void> {
    const { cert, ca } = await certificateFor(key.spki);
    this.ca = ca;
    this.port = await freePort();
    mkdirSync(this.file('tmp'), { mode: 0o700 });
    writeFileSync(this.file('cert.pem'), cert);
    writeFileSync(this.file('pin'), key.pin, { mode: 0o600 });
    writeFileSync(this.file('openssl.cnf'), opensslConfig(this.tools.engine, key.module));
    const settings = { port: this.port, workers: this.workers, root: process.getuid?.() === 0 };
    writeFileSync(this.file('nginx.conf'), nginxConfig(this.dir, settings, `${key.uri};pin-source=file:${this.file('pin')}`, Object.keys(key.env)));
    const child = spawn(this.tools.nginx, ['-p', `${this.dir}/`, '-c', this.file('nginx.conf'), '-e', this.file('error.log')], {
      env: { ...process.env, ...key.env, OPENSSL_CONF: this.file('openssl.cnf') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 60_000;
    while (!(await connects(this.port))) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        const log = existsSync(this.file('error.log')) ? readFileSync(this.file('error.log'), 'utf8') : '';
        const why = `${stderr}\n${log}`.trim().split('\n').filter(Boolean).slice(-2).join(' / ');
        throw new Error(`nginx did not start${child.exitCode !== null ? ` (exit ${child.exitCode})` : ' within 60 s'}: ${why || 'no message'}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stops nginx (fast shutdown; killed, workers too, after 5 s) and removes its directory. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      const workers = childrenOf(child.pid);
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const killed = await Promise.race([this.exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 5000)))]);
      clearTimeout(timer);
      if (killed) {
        for (const pid of [child.pid, ...workers]) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
        await this.exited;
      }
    }
    this.child = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
