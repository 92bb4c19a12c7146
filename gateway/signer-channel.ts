// The gateway's call connection to one signer: one long-lived TLS 1.3 connection, negotiated as
// RPC_ALPN, presenting the gateway's identity certificate (contract/identity/tls.ts) and used
// only once its handshake finished and the signer's certificate carries that signer's pinned
// identity key: no request byte is written to anyone else. Certificate chains are not what is
// trusted (they are self-signed); the pinned key is. Each call is one frame out and one back,
// matched by call id, many in flight at once (contract/io/rpc-frames.ts). A connection that
// closes fails the calls on it; the next call opens a new one.
import tls from 'node:tls';
import { FrameSplitter } from '../contract/io/frames.js';
import { answerHeadSchema, decodeMessage, encodeMessage, REFUSED, RPC_ALPN, RPC_MAX_FRAME, type AnswerHead, type RequestHead, type RpcMessage } from '../contract/io/rpc-frames.js';
import type { IdentitySecrets, PublicIdentity } from '../contract/identity/identity.js';
import { CHANNEL_TLS, identityTlsCredentials, peerSignKey } from '../contract/identity/tls.js';

/** The call got no answer: `timedOut` when it was given up (its bound, its signal) rather than failed. */
export class ChannelError extends Error {
  constructor(
    message: string,
    readonly timedOut = false,
  ) {
    super(message);
  }
}

type Settle = (e: ChannelError | undefined, answer?: RpcMessage<AnswerHead>) => void;

/** One open connection and the calls waiting on it, by call id. */
class Connection {
  private readonly waiting = new Map<number, Settle>();
  private nextId = 0;
  /** When a byte last arrived (or the connection opened). */
  private heardAt = Date.now();
  /** Why it ends, when this side ended it. */
  private endedBecause: ChannelError | undefined;

  constructor(readonly socket: tls.TLSSocket) {
    const splitter = new FrameSplitter(RPC_MAX_FRAME);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    // Only calls in flight (their timers) keep the process alive, never an idle connection.
    socket.unref();
    socket.on('data', (chunk: Buffer) => {
      this.heardAt = Date.now();
      try {
        for (const frame of splitter.push(chunk)) {
          const answer = decodeMessage(frame, answerHeadSchema);
          if (answer.id === REFUSED) {
            // The signer refused the connection (our certificate is not its pinned gateway): that is every call's answer.
            for (const settle of this.waiting.values()) settle(undefined, answer);
            this.waiting.clear();
            return this.end(new ChannelError('the signer refused the connection'));
          }
          // An answer to a call already given up finds nobody waiting and is dropped.
          this.waiting.get(answer.id)?.(undefined, answer);
          this.waiting.delete(answer.id);
        }
      } catch (e) {
        this.end(new ChannelError(`malformed answer frame: ${(e as Error).message}`));
      }
    });
    let lastError: Error | undefined;
    socket.on('error', (e) => (lastError = e));
    socket.once('close', () => {
      const why = this.endedBecause ?? new ChannelError(`connection lost${lastError ? `: ${lastError.message}` : ''}`);
      for (const settle of this.waiting.values()) settle(why);
      this.waiting.clear();
    });
  }

  get open(): boolean {
    return !this.socket.destroyed;
  }

  /** Writes one call; `settle` hears its answer or the connection's end. Returns the call's id. */
  send(head: RequestHead, body: Uint8Array, settle: Settle): number {
    if (this.socket.destroyed) throw new ChannelError(this.endedBecause?.message ?? 'connection lost');
    const id = (this.nextId = this.nextId === 0xffffffff ? 1 : this.nextId + 1);
    const frame = encodeMessage(id, head, body);
    this.waiting.set(id, settle);
    this.socket.write(frame);
    return id;
  }

  /**
   * Forgets a call given up. A call given up at its bound with nothing heard since it was sent,
   * and no other call waiting, leaves a connection that may be dead (a hung or vanished peer):
   * it is closed, and the next call opens a new one (whose handshake is bounded).
   */
  giveUp(id: number, sentAt: number, atBound: boolean): void {
    this.waiting.delete(id);
    if (atBound && this.heardAt < sentAt && this.waiting.size === 0) this.end(new ChannelError('connection closed: the signer went silent', true));
  }

  end(why: ChannelError): void {
    this.endedBecause ??= why;
    this.socket.destroy();
  }
}

export class SignerChannel {
  private current: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private closed = false;

  constructor(
    private readonly signer: PublicIdentity,
    private readonly url: URL,
    private readonly self: IdentitySecrets,
    /** A handshake not done by then is given up (a hung signer accepts TCP and says nothing). */
    private readonly handshakeMs: number,
  ) {}

  /** Sends one call and resolves its answer frame; rejects with ChannelError. Bounded by `timeoutMs` and `signal`. */
  exchange(head: RequestHead, body: Uint8Array, timeoutMs: number, signal?: AbortSignal): Promise<RpcMessage<AnswerHead>> {
    return new Promise((resolve, reject) => {
      let sent: { conn: Connection; id: number; at: number } | undefined;
      let done = false;
      const settle: Settle = (e, answer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (e) reject(e);
        else resolve(answer!);
      };
      const giveUp = (why: string, atBound: boolean) => {
        if (done) return;
        settle(new ChannelError(why, true));
        if (sent) sent.conn.giveUp(sent.id, sent.at, atBound);
      };
      const timer = setTimeout(() => giveUp(`no answer within ${timeoutMs} ms`, true), timeoutMs);
      const onAbort = () => giveUp(signal?.reason instanceof Error ? signal.reason.message : 'given up', false);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) return onAbort();
      const write = (conn: Connection) => {
        if (done) return;
        try {
          sent = { conn, id: conn.send(head, body, settle), at: Date.now() };
        } catch (e) {
          settle(new ChannelError((e as Error).message));
        }
      };
      if (this.current?.open) write(this.current);
      else this.connection().then(write, (e: Error) => settle(new ChannelError(e.message)));
    });
  }

  /** Ends the connection (failing the calls on it); later calls are refused. */
  close(): void {
    this.closed = true;
    this.current?.end(new ChannelError('the signer client was closed'));
  }

  private connection(): Promise<Connection> {
    if (this.closed) return Promise.reject(new Error('the signer client was closed'));
    if (this.current?.open) return Promise.resolve(this.current);
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<Connection> {
    const own = await identityTlsCredentials(this.self);
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({
        host: this.url.hostname.replace(/^\[|\]$/g, ''),
        port: Number(this.url.port || 443),
        ...own,
        ...CHANNEL_TLS,
        ALPNProtocols: [RPC_ALPN],
        rejectUnauthorized: false,
      });
      const fail = (e: Error) => {
        clearTimeout(timer);
        s.destroy();
        reject(e);
      };
      const timer = setTimeout(() => fail(new Error(`TLS handshake not done within ${this.handshakeMs} ms`)), this.handshakeMs);
      const lost = () => fail(new Error('connection closed during the TLS handshake'));
      s.once('error', fail);
      s.once('close', lost);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        s.off('error', fail);
        s.off('close', lost);
        s.on('error', () => undefined); // until the connection's own listeners are on
        if (peerSignKey(s.getPeerCertificate()) !== this.signer.signPublicKey) return fail(new Error(`the TLS server's certificate is not ${this.signer.name}'s pinned identity key`));
        if (s.alpnProtocol !== RPC_ALPN) return fail(new Error(`the signer does not speak ${RPC_ALPN} (an older signer?)`));
        resolve(s);
      });
    });
    const conn = new Connection(socket);
    if (this.closed) conn.end(new ChannelError('the signer client was closed'));
    else this.current = conn;
    return conn;
  }
}
