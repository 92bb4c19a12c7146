// The client side of the nginx phase (nginx-phase.ts), run in a benchmark client process
// (worker.ts): closed-loop full TLS 1.3 handshakes against a local server. Each handshake is a
// new connection that offers no session to resume, and the server issues no tickets, so every
// one costs the server a signature (CertificateVerify, RSA-PSS) with the key in the token.
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { closedLoop } from './stats.js';
import type { LoadResult, WorkerCommand } from './types.js';

type HandshakeCommand = Extract<WorkerCommand, { op: 'handshakes' }>;

/** One full handshake, the chain checked against `ca` and the name `localhost`; resolves with the connected socket. */
function handshake(c: HandshakeCommand): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: c.port, servername: 'localhost', ca: c.ca, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }, () => resolve(s));
    s.once('error', reject);
    s.setTimeout(30_000, () => s.destroy(new Error('no handshake within 30 s')));
  });
}

/**
 * Checks that the server presents the certificate for the key (`spki`): the handshake itself
 * verified the server's signature against that certificate, so the key in the token signed.
 * Then runs `concurrency` clients for `durationMs`, counting handshakes.
 */
export async function handshakeLoad(c: HandshakeCommand): Promise<LoadResult> {
  const first = await handshake(c);
  try {
    const der = first.getPeerX509Certificate()?.raw;
    const presented = der && new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
    if (!presented?.equals(Buffer.from(c.spki, 'base64'))) throw new Error("the server's certificate is not for the key under test");
  } finally {
    first.destroy();
  }
  return closedLoop(c, async () => void (await handshake(c)).destroy());
}
