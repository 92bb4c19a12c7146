// Raw connections to a signer's RPC port for the channel tests: TLS with ALPN RPC_ALPN showing
// a chosen certificate (or none), frames written by hand, answers collected as they arrive.
import net from 'node:net';
import tls from 'node:tls';
import { FrameSplitter } from '../../contract/io/frames.js';
import { answerHeadSchema, decodeMessage, encodeMessage, RPC_ALPN, RPC_MAX_FRAME, type AnswerHead, type RpcMessage } from '../../contract/io/rpc-frames.js';
import { AUTH_HEADERS, signRequest } from '../../contract/identity/signed-request.js';
import type { IdentitySecrets } from '../../contract/identity/identity.js';
import { identityTlsCredentials, type TlsCredentials } from '../../contract/identity/tls.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import type { TestCluster } from '../helpers/cluster.js';
import { gatewayIdentity, startWithSigners } from '../policy-cluster/helpers.js';

export interface RawRpc {
  socket: tls.TLSSocket;
  answers: RpcMessage<AnswerHead>[];
  /** Resolves when the signer closed the connection (or it failed). */
  closed: Promise<void>;
  /** Resolves once `n` answers arrived; rejects after `ms`. */
  answered(n: number, ms?: number): Promise<RpcMessage<AnswerHead>[]>;
}

export function rpcConnect(url: string, cert?: TlsCredentials): Promise<RawRpc> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), ...cert, ALPNProtocols: [RPC_ALPN], rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    const answers: RpcMessage<AnswerHead>[] = [];
    const splitter = new FrameSplitter(RPC_MAX_FRAME);
    socket.on('data', (chunk: Buffer) => answers.push(...splitter.push(chunk).map((f) => decodeMessage(f, answerHeadSchema))));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => undefined);
    socket.once('secureConnect', () =>
      resolve({
        socket,
        answers,
        closed,
        answered: async (n, ms = 5000) => {
          const until = Date.now() + ms;
          while (answers.length < n) {
            if (Date.now() > until) throw new Error(`${answers.length} of ${n} answers within ${ms} ms`);
            await new Promise((r) => setTimeout(r, 10));
          }
          return answers;
        },
      }),
    );
    socket.once('error', reject);
  });
}

/** A call frame as the gateway signs it, to the signer whose fingerprint is `audience`; with its nonce. */
export function signedCall(gateway: IdentitySecrets, audience: string, id: number, path: string, body: object): { frame: Buffer; nonce: string } {
  const payload = Buffer.from(JSON.stringify(body));
  const auth = signRequest({ method: 'POST', path, body: payload, audience, timestamp: Date.now() }, gateway.signSecretKey);
  return { frame: encodeMessage(id, { path, auth }, payload), nonce: auth[AUTH_HEADERS.nonce]! };
}

/** A TCP proxy on 127.0.0.1 to `targetPort` that counts the connections made through it. */
export async function countingProxy(targetPort: number): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    count++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.once('close', () => sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connections: () => count,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** A cluster whose signers the test calls as its gateway: the gateway's clients, identity and certificate. */
export async function playTheGateway(): Promise<{ tc: TestCluster; signers: SignerClient[]; gateway: IdentitySecrets; gatewayCert: TlsCredentials }> {
  const { tc, signers } = await startWithSigners();
  const gateway = await gatewayIdentity(tc);
  return { tc, signers, gateway, gatewayCert: await identityTlsCredentials(gateway) };
}
