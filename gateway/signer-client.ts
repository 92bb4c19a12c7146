// Calls to one signer: over its pinned, mutually authenticated TLS connection
// (gateway/signer-channel.ts), signed by the gateway's identity, answers checked against the
// signer's pinned identity and read by the route's schema (contract/signer-rpc/routes.ts), and
// always bounded in time.
import https from 'node:https';
import { z } from 'zod';
import { AUTH_HEADERS, signRequest, verifyResponse } from '../contract/identity/signed-request.js';
import type { IdentitySecrets } from '../contract/identity/identity.js';
import { fingerprint } from '../contract/identity/identity.js';
import type { SignerErrorCode } from '../contract/signer-rpc/errors.js';
import type { Route, RouteAnswer, RouteBody } from '../contract/signer-rpc/route.js';
import type { SignerEntry } from './config.js';
import { beforeSignerCall } from './audit-intent.js';
import { ChannelError, SignerChannel } from './signer-channel.js';

/** The signer could not be reached or did not answer in time. */
export class SignerUnavailableError extends Error {
  constructor(
    readonly signer: string,
    message: string,
    /** It may only be slow: no answer in time, or the call was given up (CallOptions.signal). */
    readonly timedOut = false,
  ) {
    super(`signer ${signer}: ${message}`);
  }
}

/** The signer answered, authenticated, and refused (or failed) the request. */
export class SignerRefusedError extends Error {
  constructor(
    readonly signer: string,
    readonly status: number,
    /** A code of contract/signer-rpc/errors.ts, as the signer answered it ('error' if it named none). */
    readonly code: SignerErrorCode | 'error',
    message: string,
  ) {
    super(`signer ${signer} refused: ${message}`);
  }
}

/** Per-call bounds: how long to wait, and a signal that gives the call up (its reason, an Error, says why). */
export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What a signer's /health says: whether it answered, and whether it can serve (its store writable). */
export interface SignerProbe {
  answered: boolean;
  healthy: boolean;
  /** The signer's own account of its store ('writable' or 'not writable: ENOSPC…'), or why it did not answer. */
  detail: string;
}

const HEALTH_MAX_BYTES = 64 * 1024;
const healthSchema = z.object({ store: z.string().max(300).optional() }).passthrough();

export class SignerClient {
  private readonly channel: SignerChannel;
  private readonly audience: string;

  constructor(
    readonly entry: SignerEntry,
    private readonly self: IdentitySecrets,
    private readonly timeoutMs: number,
    /** The head of the gateway's own audit log, sent with every call for the signer to record. */
    private readonly callerHead?: () => { seq: number; hash: string },
  ) {
    this.audience = fingerprint(entry.identity);
    this.channel = new SignerChannel(entry.identity, new URL(entry.url), self, timeoutMs);
  }

  get id(): number {
    return this.entry.id;
  }

  get name(): string {
    return this.entry.name;
  }

  /**
   * Sends `body` on the route's path and resolves the signer's authenticated answer, read by the
   * route's response schema (an answer that fails it rejects with the ZodError).
   */
  call<R extends Route>(route: R, body: RouteBody<R>, opts: CallOptions = {}): Promise<RouteAnswer<R>> {
    // Inside an audited request, nothing that may release leaves before its intent is durable (audit-intent.ts).
    const intent = beforeSignerCall(this, route, body);
    return intent ? intent.then(() => this.send(route, body, opts)) : this.send(route, body, opts);
  }

  private async send<R extends Route>(route: R, body: RouteBody<R>, opts: CallOptions): Promise<RouteAnswer<R>> {
    const path = route.path;
    const payload = Buffer.from(JSON.stringify(this.callerHead ? { ...(body as object), callerHead: this.callerHead() } : body));
    const auth = signRequest({ method: 'POST', path, body: payload, audience: this.audience, timestamp: Date.now() }, this.self.signSecretKey);
    const nonce = auth[AUTH_HEADERS.nonce]!;
    let answer;
    try {
      answer = await this.channel.exchange({ path, auth }, payload, opts.timeoutMs ?? this.timeoutMs, opts.signal);
    } catch (e) {
      throw new SignerUnavailableError(this.name, (e as Error).message, e instanceof ChannelError && e.timedOut);
    }
    const { head: { status, auth: answerAuth }, body: raw } = answer;
    if (status === 401 || (status === 404 && answerAuth?.[AUTH_HEADERS.signature] === undefined)) {
      // Not signed: the signer did not accept our request at all (a signed 404 is a refusal, e.g. no-key).
      throw new SignerRefusedError(this.name, status, 'unauthenticated', safeMessage(raw));
    }
    try {
      verifyResponse({ status, body: raw, headers: answerAuth ?? {} }, this.entry.identity.signPublicKey, nonce);
    } catch (e) {
      throw new SignerUnavailableError(this.name, `unauthenticated answer: ${(e as Error).message}`);
    }
    const json = JSON.parse(raw.toString('utf8')) as { code?: string; message?: string };
    if (status !== 200) throw new SignerRefusedError(this.name, status, (json.code as SignerErrorCode | undefined) ?? 'error', json.message ?? `status ${status}`);
    return route.response.parse(json) as RouteAnswer<R>;
  }

  /** Unauthenticated liveness probe: answered, with a writable store. */
  async health(timeoutMs = 1000): Promise<boolean> {
    return (await this.probe(timeoutMs)).healthy;
  }

  /**
   * GET /health on a connection of its own (not behind calls stuck on a hung signer), bounded
   * by `timeoutMs`. The answer is unauthenticated (no certificate is checked or shown): it only
   * steers where requests go first.
   */
  probe(timeoutMs = 1000): Promise<SignerProbe> {
    return new Promise((resolve) => {
      const req = https.get(new URL('/health', this.entry.url), { agent: false, rejectUnauthorized: false }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > HEALTH_MAX_BYTES) req.destroy(new Error('health answer too large'));
          else chunks.push(c);
        });
        res.on('error', () => undefined);
        res.on('end', () => {
          clearTimeout(timer);
          if (res.statusCode !== 200) return resolve({ answered: true, healthy: false, detail: `health answered HTTP ${res.statusCode}` });
          let store: string | undefined;
          try {
            store = healthSchema.parse(JSON.parse(Buffer.concat(chunks).toString('utf8'))).store;
          } catch {
            return resolve({ answered: true, healthy: false, detail: 'health answered malformed data' });
          }
          // A signer that does not report its store (older, or awaiting admission) is taken as able to write.
          resolve({ answered: true, healthy: store === undefined || store === 'writable', detail: store === undefined ? 'ok' : `store ${store}` });
        });
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (e) => {
        clearTimeout(timer);
        resolve({ answered: false, healthy: false, detail: e.message });
      });
    });
  }

  close(): void {
    this.channel.close();
  }
}

function safeMessage(raw: Buffer): string {
  try {
    return String((JSON.parse(raw.toString('utf8')) as { message?: unknown }).message ?? 'refused');
  } catch {
    return 'refused';
  }
}
