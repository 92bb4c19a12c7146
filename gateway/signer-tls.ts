// The gateway's HTTPS agent for one signer: connections present the gateway's identity
// certificate (contract/identity/tls.ts), and a connection is handed to a request only after
// its TLS handshake finished and the signer's certificate carries that signer's pinned identity
// key — no request byte is written to anyone else. Certificate chains are not what is trusted
// (they are self-signed); the pinned key is.
import https from 'node:https';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { IdentitySecrets, PublicIdentity } from '../contract/identity/identity.js';
import { CHANNEL_TLS, identityTlsCredentials, peerSignKey } from '../contract/identity/tls.js';

type Created = (err: Error | null, socket?: Duplex) => void;

export class PinnedSignerAgent extends https.Agent {
  constructor(
    private readonly signer: PublicIdentity,
    private readonly self: IdentitySecrets,
    /** A handshake not done by then is given up (a hung signer accepts TCP and says nothing). */
    private readonly handshakeMs: number,
    options: https.AgentOptions,
  ) {
    super(options);
  }

  override createConnection(options: tls.ConnectionOptions, created: Created): undefined {
    identityTlsCredentials(this.self).then(
      (own) => this.connect(options, own, created),
      (e: Error) => created(e),
    );
    return undefined;
  }

  private connect(options: tls.ConnectionOptions, own: { key: string; cert: string }, created: Created): void {
    // No session resumption: every connection shows the signer's certificate afresh.
    const socket = tls.connect({ ...options, ...own, ...CHANNEL_TLS, session: undefined, rejectUnauthorized: false });
    const fail = (e: Error) => {
      clearTimeout(timer);
      socket.destroy();
      created(e);
    };
    const timer = setTimeout(() => fail(new Error(`TLS handshake not done within ${this.handshakeMs} ms`)), this.handshakeMs);
    socket.once('error', fail);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      if (peerSignKey(socket.getPeerCertificate()) !== this.signer.signPublicKey) {
        return fail(new Error(`the TLS server's certificate is not ${this.signer.name}'s pinned identity key`));
      }
      created(null, socket);
    });
  }
}
