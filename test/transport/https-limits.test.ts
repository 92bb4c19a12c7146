// The KMS listener's connection cap and timeouts hold under HTTPS as under HTTP: at the cap an
// idle TLS connection makes room and a connection with a request in progress is kept (the
// request's TLS socket is matched to the counted TCP connection), and a client that never
// finishes its handshake is cut off within the headers timeout.
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityFromSecrets } from '../../contract/identity/identity.js';
import { identityTlsCredentials } from '../../contract/identity/tls.js';
import { createLimitedServer } from '../../gateway/http-limits.js';

const HEADERS_TIMEOUT_MS = 1000;
let server: http.Server;
let port: number;
let release: () => void = () => undefined;

beforeAll(async () => {
  const creds = await identityTlsCredentials(identityFromSecrets('kms', randomBytes(32), randomBytes(32)));
  const held = new Promise<void>((r) => (release = r));
  server = createLimitedServer(
    (req, res) => {
      if (req.url === '/slow') void held.then(() => res.end('slow'));
      else res.end('fast');
    },
    { maxConnections: 2, headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: 10_000 },
    { cert: Buffer.from(creds.cert), key: Buffer.from(creds.key) },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  release();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const get = (path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, agent: false, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
  });

/** Resolves when `s` closes; rejects if it is still open after 5 s. */
const closed = (s: net.Socket): Promise<void> =>
  new Promise((resolve, reject) => {
    if (s.closed) return resolve();
    const t = setTimeout(() => reject(new Error('still open after 5 s')), 5000);
    s.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });

describe('the HTTPS KMS listener', () => {
  it('at its cap, closes an idle TLS connection to make room and keeps one with a request in progress', async () => {
    const busy = get('/slow');
    await new Promise((r) => setTimeout(r, 200));
    const idle = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
    idle.on('error', () => undefined);
    expect(await get('/fast')).toBe('fast');
    await closed(idle);
    release();
    expect(await busy).toBe('slow');
  });

  it('cuts off a client that never finishes its TLS handshake within the headers timeout', async () => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    const started = Date.now();
    await closed(s);
    const ms = Date.now() - started;
    expect(ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100);
    expect(ms).toBeLessThan(HEADERS_TIMEOUT_MS + 2500);
  });
});
