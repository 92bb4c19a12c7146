// The gateway ↔ signer channel is mutual TLS over the identity keys the configuration pins: a
// signer serves no operation to a TLS client that did not prove the gateway's key (even with a
// validly signed request inside), answers /health to anyone, speaks TLS 1.3 only; the gateway's
// client writes nothing to a server whose certificate is not that signer's pinned identity.
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint, identityFromSecrets, type IdentitySecrets } from '../../contract/identity/identity.js';
import { signRequest } from '../../contract/identity/signed-request.js';
import { identityTlsCredentials, type TlsCredentials } from '../../contract/identity/tls.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { SignerClient, SignerUnavailableError } from '../../gateway/signer-client.js';
import type { TestCluster } from '../helpers/cluster.js';
import { gatewayIdentity, startWithSigners, stopWithSigners } from '../policy-cluster/helpers.js';

let tc: TestCluster;
let signers: SignerClient[];
let gateway: IdentitySecrets;

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  gateway = await gatewayIdentity(tc);
}, 120_000);

afterAll(() => stopWithSigners(tc, signers), 120_000);

const inventory = signerRoutes.keys.inventory;

/**
 * POSTs a request the gateway signed, for signer 1, over a TLS connection showing `cert` (none
 * when undefined). `declaredLength`: a larger content-length than sent, to show the answer comes
 * without the body being read.
 */
function post(cert: TlsCredentials | undefined, opts: { declaredLength?: number } = {}): Promise<{ status: number; body: string }> {
  const s = signers[0]!;
  const body = Buffer.from(JSON.stringify({}));
  const headers = signRequest({ method: 'POST', path: inventory.path, body, audience: fingerprint(s.entry.identity), timestamp: Date.now() }, gateway.signSecretKey);
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(inventory.path, s.entry.url),
      { method: 'POST', agent: false, rejectUnauthorized: false, ...cert, headers: { ...headers, 'content-type': 'application/json', 'content-length': opts.declaredLength ?? body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    if (opts.declaredLength) req.flushHeaders();
    else req.end(body);
  });
}

const stranger = () => identityFromSecrets('stranger', randomBytes(32), randomBytes(32));

describe('a signer', () => {
  it('serves the gateway, whose client shows the pinned certificate', async () => {
    const answer = await signers[0]!.call(inventory, {});
    expect(answer.keys).toEqual([]);
  });

  it('refuses a validly signed request from a client with no certificate, before reading its body', async () => {
    const r = await post(undefined, { declaredLength: 1_000_000 });
    expect(r.status).toBe(401);
    expect(r.body).toContain('TLS client certificate is not the pinned gateway identity');
  });

  it('refuses a validly signed request from a client whose certificate carries another key', async () => {
    const r = await post(await identityTlsCredentials(stranger()));
    expect(r.status).toBe(401);
    expect(r.body).toContain('TLS client certificate is not the pinned gateway identity');
    // The same request over the gateway's certificate is served: only the certificate differed.
    expect((await post(await identityTlsCredentials(gateway))).status).toBe(200);
  });

  it('answers /health without a client certificate', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get(new URL('/health', signers[0]!.entry.url), { agent: false, rejectUnauthorized: false }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => (res.statusCode === 200 ? resolve(b) : reject(new Error(`HTTP ${res.statusCode}`))));
        })
        .on('error', reject);
    });
    expect(JSON.parse(body)).toMatchObject({ name: 'signer1' });
  });

  it('speaks TLS 1.3 only', async () => {
    const { port, hostname } = new URL(signers[0]!.entry.url);
    const err = await new Promise<Error | undefined>((resolve) => {
      const s = tls.connect({ host: hostname, port: Number(port), maxVersion: 'TLSv1.2', rejectUnauthorized: false }, () => {
        s.destroy();
        resolve(undefined);
      });
      s.once('error', resolve);
    });
    expect(err?.message).toMatch(/protocol version|alert/i);
  });
});

describe("the gateway's client", () => {
  it("refuses a server whose certificate is not the signer's pinned key, naming the signer", async () => {
    // signer1's pinned identity, at signer2's address: a real signer, but not the one pinned.
    const misdirected = new SignerClient({ ...signers[0]!.entry, url: signers[1]!.entry.url }, gateway, 5000);
    try {
      const e = await misdirected.call(inventory, {}).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(SignerUnavailableError);
      expect((e as Error).message).toContain("signer signer1: the TLS server's certificate is not signer1's pinned identity key");
    } finally {
      misdirected.close();
    }
  });

  it('writes no request byte to an impostor', async () => {
    // A TLS server with a key of its own that records whatever application data it receives.
    let received = 0;
    let connections = 0;
    const impostor = tls.createServer({ ...(await identityTlsCredentials(stranger())), minVersion: 'TLSv1.3' }, (socket) => {
      socket.on('data', (d: Buffer) => (received += d.length));
      socket.on('error', () => undefined);
    });
    impostor.on('connection', () => connections++);
    impostor.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', r));
    const client = new SignerClient({ ...signers[0]!.entry, url: `https://127.0.0.1:${(impostor.address() as AddressInfo).port}` }, gateway, 5000);
    try {
      await expect(client.call(inventory, {})).rejects.toThrow(/signer signer1: .*not signer1's pinned identity key/);
      await new Promise((r) => setTimeout(r, 200));
      expect(connections).toBe(1);
      expect(received).toBe(0);
    } finally {
      client.close();
      await new Promise((r) => impostor.close(r));
    }
  });
});
