// The gateway ↔ signer call channel (contract/io/rpc-frames.ts, signers/node/rpc-listener.ts,
// gateway/signer-channel.ts) against a real signer: a frame over the cap is refused from its
// length; call connections are capped; many calls share one connection, each answer matched to
// its call; a call whose answer does not come in time fails at its bound while the others on
// its connection complete; a killed signer's connection fails the calls on it, and the same
// client reaches the restarted signer. (A connection without the pinned certificate: mtls.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint, type IdentitySecrets } from '../../contract/identity/identity.js';
import { verifyResponse } from '../../contract/identity/signed-request.js';
import type { TlsCredentials } from '../../contract/identity/tls.js';
import { RPC_MAX_FRAME } from '../../contract/io/rpc-frames.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { SignerClient, SignerUnavailableError } from '../../gateway/signer-client.js';
import { MAX_CALL_CONNECTIONS } from '../../signers/node/rpc-listener.js';
import type { TestCluster } from '../helpers/cluster.js';
import { stopWithSigners } from '../policy-cluster/helpers.js';
import { countingProxy, playTheGateway, rpcConnect, signedCall, type RawRpc } from './rpc-raw.js';

let tc: TestCluster;
let signers: SignerClient[];
let gateway: IdentitySecrets;
let gatewayCert: TlsCredentials;

beforeAll(async () => ({ tc, signers, gateway, gatewayCert } = await playTheGateway()), 120_000);

afterAll(() => stopWithSigners(tc, signers), 120_000);

const inventory = signerRoutes.keys.inventory;
const signer1 = () => signers[0]!;
const signer1Pid = () => tc.cluster().signers.find((s) => s.name === 'signer1')!.pid;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const outcome = (p: Promise<unknown>) => p.then(() => 'answered' as const, (e: unknown) => e);

describe('the call channel', () => {
  it('closes a connection on a frame declared over the cap, from its length alone; a frame at the cap is awaited', async () => {
    const over = await rpcConnect(signer1().entry.url, gatewayCert);
    const at = await rpcConnect(signer1().entry.url, gatewayCert);
    try {
      const header = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
      over.socket.write(header(RPC_MAX_FRAME + 1));
      at.socket.write(Buffer.concat([header(RPC_MAX_FRAME), Buffer.alloc(1024)]));
      const closed = await Promise.race([over.closed.then(() => true), sleep(3000).then(() => false)]);
      expect(closed, 'the oversized frame closed its connection with 4 bytes sent').toBe(true);
      expect(at.socket.destroyed, 'a frame within the cap is waited for').toBe(false);
      expect(over.answers).toEqual([]);
    } finally {
      over.socket.destroy();
      at.socket.destroy();
    }
  });

  it(`holds at most ${MAX_CALL_CONNECTIONS} call connections: the oldest idle ones make room, and the gateway's client reconnects`, async () => {
    await signer1().call(inventory, {});
    const raw: RawRpc[] = [];
    try {
      for (let i = 0; i < MAX_CALL_CONNECTIONS + 8; i++) raw.push(await rpcConnect(signer1().entry.url, gatewayCert));
      await sleep(300);
      // Whatever was open before (the client's connection, the cluster gateway's) went first, then the oldest raw ones.
      expect(raw.map((r) => r.socket.destroyed)).toEqual(raw.map((_, i) => i < 8));
      const last = raw.at(-1)!;
      last.socket.write(signedCall(gateway, fingerprint(signer1().entry.identity), 9, inventory.path, {}).frame);
      expect((await last.answered(1))[0]).toMatchObject({ id: 9, head: { status: 200 } });
      // The client's connection was closed for room: its next call opens a new one.
      expect((await signer1().call(inventory, {})).keys).toEqual([]);
    } finally {
      for (const r of raw) r.socket.destroy();
    }
  });

  it('answers many calls sent at once on one connection, each answer signed for its own call', async () => {
    const raw = await rpcConnect(signer1().entry.url, gatewayCert);
    try {
      const calls = Array.from({ length: 64 }, (_, i) => signedCall(gateway, fingerprint(signer1().entry.identity), i + 1, inventory.path, {}));
      raw.socket.write(Buffer.concat(calls.map((c) => c.frame)));
      const answers = await raw.answered(64);
      expect(answers.map((a) => a.id).sort((a, b) => a - b)).toEqual(calls.map((_, i) => i + 1));
      for (const a of answers) {
        expect(a.head.status).toBe(200);
        expect(() => verifyResponse({ status: a.head.status, body: a.body, headers: a.head.auth ?? {} }, signer1().entry.identity.signPublicKey, calls[a.id - 1]!.nonce)).not.toThrow();
      }
    } finally {
      raw.socket.destroy();
    }
  });

  it("the gateway's client multiplexes concurrent calls on a single connection", async () => {
    const proxy = await countingProxy(Number(new URL(signer1().entry.url).port));
    const client = new SignerClient({ ...signer1().entry, url: proxy.url }, gateway, 10_000);
    try {
      const answers = await Promise.all(Array.from({ length: 200 }, () => client.call(inventory, {})));
      expect(answers.every((a) => Array.isArray(a.keys))).toBe(true);
      expect(proxy.connections()).toBe(1);
    } finally {
      client.close();
      await proxy.close();
    }
  });

  it('a call not answered in time fails at its bound while the others on its connection complete; a new connection to a hung signer fails at its bound too', async () => {
    const proxy = await countingProxy(Number(new URL(signer1().entry.url).port));
    const client = new SignerClient({ ...signer1().entry, url: proxy.url }, gateway, 10_000);
    const fresh = new SignerClient(signer1().entry, gateway, 500);
    const pid = signer1Pid();
    try {
      await client.call(inventory, {});
      process.kill(pid, 'SIGSTOP');
      const started = Date.now();
      const short = outcome(client.call(inventory, {}, { timeoutMs: 300 }));
      const others = Array.from({ length: 5 }, () => client.call(inventory, {}));
      const handshake = outcome(fresh.call(inventory, {}));
      const e = await short;
      expect(e).toBeInstanceOf(SignerUnavailableError);
      expect(e).toMatchObject({ timedOut: true });
      expect(Date.now() - started).toBeLessThan(1500);
      const h = await handshake;
      expect(h).toMatchObject({ timedOut: true });
      expect((h as Error).message).toMatch(/TLS handshake not done within 500 ms|no answer within 500 ms/);
      await sleep(500);
      process.kill(pid, 'SIGCONT');
      expect((await Promise.all(others)).every((a) => Array.isArray(a.keys))).toBe(true);
      expect(proxy.connections()).toBe(1);
    } finally {
      process.kill(pid, 'SIGCONT');
      client.close();
      fresh.close();
      await proxy.close();
    }
  });

  it("a killed signer's connection fails the calls in flight on it at once, and the same client reaches the restarted signer", async () => {
    const client = new SignerClient(signer1().entry, gateway, 10_000);
    try {
      await client.call(inventory, {});
      const pid = signer1Pid();
      process.kill(pid, 'SIGSTOP');
      const inFlight = Array.from({ length: 3 }, () => outcome(client.call(inventory, {})));
      await sleep(200);
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      for (const e of await Promise.all(inFlight)) {
        expect(e).toBeInstanceOf(SignerUnavailableError);
        expect(e).toMatchObject({ timedOut: false });
        expect((e as Error).message).toMatch(/connection lost/);
      }
      expect(Date.now() - killedAt).toBeLessThan(3000);
      await tc.down();
      await tc.up();
      expect((await client.call(inventory, {})).keys).toEqual([]);
    } finally {
      client.close();
    }
  }, 120_000);
});
