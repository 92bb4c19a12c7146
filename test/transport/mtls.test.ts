// The gateway ↔ signer channel is mutual TLS over the identity keys the configuration pins: a
// signer closes a call connection whose TLS client did not prove the gateway's key (even with a
// validly signed request inside) before reading it, serves no operation over HTTPS, answers
// /health to anyone, speaks TLS 1.3 only; the gateway's client writes nothing to a server whose
// certificate is not that signer's pinned identity.
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint, identityFromSecrets, type IdentitySecrets } from '../../contract/identity/identity.js';
import { REFUSED } from '../../contract/io/rpc-frames.js';
import { identityTlsCredentials, type TlsCredentials } from '../../contract/identity/tls.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { SignerClient, SignerRefusedError, SignerUnavailableError } from '../../gateway/signer-client.js';
import type { TestCluster } from '../helpers/cluster.js';
import { stopWithSigners } from '../policy-cluster/helpers.js';
import { playTheGateway, rpcConnect, signedCall, type RawRpc } from './rpc-raw.js';

let tc: TestCluster;
let signers: SignerClient[];
let gateway: IdentitySecrets;
let gatewayCert: TlsCredentials;

beforeAll(async () => ({ tc, signers, gateway, gatewayCert } = await playTheGateway()), 120_000);

afterAll(() => stopWithSigners(tc, signers), 120_000);

const inventory = signerRoutes.keys.inventory;
const stranger = () => identityFromSecrets('stranger', randomBytes(32), randomBytes(32));

/**
 * Opens a call connection to signer 1 showing `cert` (none when undefined) and sends all but the
 * last byte of a validly signed call: an answer that comes is not an answer to the call.
 */
async function partialCall(cert: TlsCredentials | undefined): Promise<RawRpc> {
  const s = signers[0]!;
  const raw = await rpcConnect(s.entry.url, cert);
  const { frame } = signedCall(gateway, fingerprint(s.entry.identity), 1, inventory.path, {});
  raw.socket.write(frame.subarray(0, frame.length - 1));
  return raw;
}

describe('a signer', () => {
  it('serves the gateway, whose client shows the pinned certificate', async () => {
    const answer = await signers[0]!.call(inventory, {});
    expect(answer.keys).toEqual([]);
  });

  for (const [who, cert] of [
    ['with no certificate', () => Promise.resolve(undefined)],
    ['whose certificate carries another key', () => identityTlsCredentials(stranger())],
  ] as const) {
    it(`refuses a call connection from a client ${who}, answering one unsigned refusal and closing it unread`, async () => {
      const raw = await partialCall(await cert());
      await raw.closed;
      expect(raw.answers).toHaveLength(1);
      const [refusal] = raw.answers;
      expect(refusal!.id).toBe(REFUSED);
      expect(refusal!.head).toEqual({ status: 401 });
      expect(JSON.parse(refusal!.body.toString())).toMatchObject({ code: 'unauthenticated', message: 'the TLS client certificate is not the pinned gateway identity' });
    });
  }

  it('serves the same call over the gateway certificate once its frame is complete: only the certificate differed', async () => {
    const s = signers[0]!;
    const raw = await rpcConnect(s.entry.url, gatewayCert);
    try {
      const { frame } = signedCall(gateway, fingerprint(s.entry.identity), 1, inventory.path, {});
      raw.socket.write(frame.subarray(0, frame.length - 1));
      await new Promise((r) => setTimeout(r, 200));
      expect(raw.answers).toEqual([]);
      raw.socket.write(frame.subarray(frame.length - 1));
      const [answer] = await raw.answered(1);
      expect(answer).toMatchObject({ id: 1, head: { status: 200 } });
    } finally {
      raw.socket.destroy();
    }
  });

  it("refuses a gateway client whose identity is not the pinned one as 'unauthenticated'", async () => {
    const other = new SignerClient(signers[0]!.entry, stranger(), 5000);
    try {
      const e = await other.call(inventory, {}).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(SignerRefusedError);
      expect(e).toMatchObject({ status: 401, code: 'unauthenticated' });
    } finally {
      other.close();
    }
  });

  it('serves no operation over HTTPS, even to the gateway certificate', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      https
        .request(new URL(inventory.path, signers[0]!.entry.url), { method: 'POST', agent: false, rejectUnauthorized: false, ...gatewayCert }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
        .on('error', reject)
        .end('{}');
    });
    expect(status).toBe(404);
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
