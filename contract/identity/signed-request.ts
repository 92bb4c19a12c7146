// Signed requests and responses on the gateway↔signer channel. Each side pins the other's
// Ed25519 key. A request is bound to method, path, body, the intended receiver (audience: its
// identity fingerprint, so a request for one signer cannot be replayed to another), a timestamp
// and a nonce; the receiver refuses stale timestamps and nonces it has seen. A response is
// bound to status, body and the nonce of the request it answers. Also here, because envelopes
// (envelope.ts) use them too: the length-prefixed framing of signed bytes and the replay guard.

import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { fromHex, toHex, type Rng } from '../bytes.js';
import { ed25519Sign, ed25519Verify } from './curve25519.js';

const enc = new TextEncoder();
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());
const hex32 = z.string().regex(/^[0-9a-f]{64}$/);

/** Concatenates length-prefixed fields: unambiguous, whatever bytes the fields contain. */
export function lengthPrefixed(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint32(at, p.length);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Replay guard

/**
 * Remembers accepted messages, bounded in size. `whenFull`:
 *  - 'refuse' (default, fail closed): entries live until their expiry; with no room left a new
 *    key is refused. Use for signed requests, whose keys expire with the timestamp window.
 *  - 'evict-oldest': forget the oldest entry. Use for envelopes, where session/round binding
 *    and the protocol's per-round duplicate check already stop replays the guard forgets.
 */
export class ReplayGuard {
  readonly #seen = new Map<string, number>(); // key → expiry (ms since epoch; Infinity: none)

  constructor(
    readonly maxEntries = 65_536,
    readonly whenFull: 'refuse' | 'evict-oldest' = 'refuse',
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Records `key`: 'fresh' the first time, 'replay' if already held, 'full' if refused. */
  remember(key: string, now = 0, expiresAt = Infinity): 'fresh' | 'replay' | 'full' {
    const held = this.#seen.get(key);
    if (held !== undefined && held > now) return 'replay';
    this.#seen.delete(key);
    // Keys come in about the order they expire, so the expired ones leave from the front as new
    // ones arrive: a busy guard holds what is live, not maxEntries keys long expired. One that
    // expires out of order is swept when the guard is full.
    for (const [k, exp] of this.#seen) {
      if (exp > now) break;
      this.#seen.delete(k);
    }
    if (this.#seen.size >= this.maxEntries) {
      for (const [k, exp] of this.#seen) if (exp <= now) this.#seen.delete(k);
      if (this.#seen.size >= this.maxEntries) {
        if (this.whenFull === 'refuse') return 'full';
        this.#seen.delete(this.#seen.keys().next().value as string);
      }
    }
    this.#seen.set(key, expiresAt);
    return 'fresh';
  }
}

// ---------------------------------------------------------------------------------------------
// Signed requests and responses

export const AUTH_HEADERS = {
  timestamp: 'x-mpchsm-timestamp',
  nonce: 'x-mpchsm-nonce',
  audience: 'x-mpchsm-audience',
  replyTo: 'x-mpchsm-reply-to',
  signature: 'x-mpchsm-signature',
} as const;

export type RequestAuthErrorCode = 'malformed' | 'bad-signature' | 'wrong-audience' | 'stale' | 'replay' | 'busy';

export class RequestAuthError extends Error {
  override name = 'RequestAuthError';
  constructor(
    readonly code: RequestAuthErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Header bag as Node's `IncomingHttpHeaders` (lower-case names). */
export type HeaderBag = Record<string, string | string[] | undefined>;

export interface SignedRequest {
  method: string;
  /** Path and query exactly as sent on the request line. */
  path: string;
  body: Uint8Array;
  /** Fingerprint of the receiver's identity. */
  audience: string;
}

const requestSchema = z.object({
  method: z.string().regex(/^[A-Z]{1,16}$/),
  path: z.string().max(4096).regex(/^\/[\x21-\x7e]*$/),
  audience: hex32,
});
/** What a receiver checks of a request before its headers (its audience is in a header). */
const receivedSchema = requestSchema.omit({ audience: true });
const nonceRe = /^[0-9a-f]{32}$/;
const timestampRe = /^[0-9]{1,15}$/;

const requestBytes = (r: SignedRequest, timestamp: string, nonce: string): Uint8Array =>
  lengthPrefixed(enc.encode('mpchsm/request/v1'), enc.encode(r.method), enc.encode(r.path), enc.encode(r.audience), enc.encode(timestamp), enc.encode(nonce), sha256(r.body));

const responseBytes = (status: number, body: Uint8Array, replyTo: string): Uint8Array =>
  lengthPrefixed(enc.encode('mpchsm/response/v1'), enc.encode(String(status)), enc.encode(replyTo), sha256(body));

function header(headers: HeaderBag, name: string, re: RegExp): string {
  const v = headers[name];
  if (typeof v !== 'string' || !re.test(v)) throw new RequestAuthError('malformed', `missing or malformed ${name} header`);
  return v;
}

/** Signs a request; returns the headers to send with it. `timestamp` is ms since the epoch. */
export function signRequest(
  req: SignedRequest & { timestamp: number; nonce?: string },
  signSecretKey: Uint8Array,
  rng: Rng = randomBytes,
): Record<string, string> {
  requestSchema.parse(req);
  const nonce = req.nonce ?? toHex(rng(16));
  const timestamp = String(req.timestamp);
  if (!nonceRe.test(nonce) || !timestampRe.test(timestamp)) throw new RangeError('nonce must be 16 bytes hex; timestamp integer ms');
  return {
    [AUTH_HEADERS.timestamp]: timestamp,
    [AUTH_HEADERS.nonce]: nonce,
    [AUTH_HEADERS.audience]: req.audience,
    [AUTH_HEADERS.signature]: toHex(ed25519Sign(requestBytes(req, timestamp, nonce), signSecretKey)),
  };
}

/**
 * Authenticates a received request against the caller's pinned Ed25519 key (hex or bytes).
 * `audience` is our own fingerprint. Returns the request's nonce (to bind the response).
 */
export function verifyRequest(
  req: Omit<SignedRequest, 'audience'> & { headers: HeaderBag },
  publicKey: Uint8Array | string,
  opts: { audience: string; now: number; maxSkewMs: number; replayGuard: ReplayGuard },
): { nonce: string; timestamp: number } {
  if (!receivedSchema.safeParse(req).success) throw new RequestAuthError('malformed', 'malformed method or path');
  const timestamp = header(req.headers, AUTH_HEADERS.timestamp, timestampRe);
  const nonce = header(req.headers, AUTH_HEADERS.nonce, nonceRe);
  const audience = header(req.headers, AUTH_HEADERS.audience, /^[0-9a-f]{64}$/);
  const sig = header(req.headers, AUTH_HEADERS.signature, /^[0-9a-f]{128}$/);
  if (audience !== opts.audience) throw new RequestAuthError('wrong-audience', 'request is addressed to another party');
  const ts = Number(timestamp);
  if (Math.abs(opts.now - ts) > opts.maxSkewMs) throw new RequestAuthError('stale', 'request timestamp is outside the accepted window');
  const pk = typeof publicKey === 'string' ? fromHex(publicKey) : publicKey;
  if (!ed25519Verify(fromHex(sig), requestBytes({ ...req, audience }, timestamp, nonce), pk))
    throw new RequestAuthError('bad-signature', 'request signature does not verify under the pinned key');
  // Only authenticated requests reach the guard, so strangers cannot fill it. A nonce must be
  // remembered for as long as its timestamp would still pass the window check.
  const seen = opts.replayGuard.remember(`req\0${nonce}`, opts.now, ts + opts.maxSkewMs + 1);
  if (seen === 'replay') throw new RequestAuthError('replay', 'request nonce was already used');
  if (seen === 'full') throw new RequestAuthError('busy', 'too many recent requests to check for replay');
  return { nonce, timestamp: ts };
}

/** Signs a response to the request whose nonce is `replyTo`; returns headers to send. */
export function signResponse(res: { status: number; body: Uint8Array; replyTo: string }, signSecretKey: Uint8Array): Record<string, string> {
  if (!nonceRe.test(res.replyTo) || !Number.isInteger(res.status)) throw new RangeError('bad status or replyTo');
  return {
    [AUTH_HEADERS.replyTo]: res.replyTo,
    [AUTH_HEADERS.signature]: toHex(ed25519Sign(responseBytes(res.status, res.body, res.replyTo), signSecretKey)),
  };
}

/** Authenticates a response: signed by the pinned key and answering our request `replyTo`. */
export function verifyResponse(
  res: { status: number; body: Uint8Array; headers: HeaderBag },
  publicKey: Uint8Array | string,
  replyTo: string,
): void {
  const got = header(res.headers, AUTH_HEADERS.replyTo, nonceRe);
  const sig = header(res.headers, AUTH_HEADERS.signature, /^[0-9a-f]{128}$/);
  const pk = typeof publicKey === 'string' ? fromHex(publicKey) : publicKey;
  if (!ed25519Verify(fromHex(sig), responseBytes(res.status, res.body, got), pk))
    throw new RequestAuthError('bad-signature', 'response signature does not verify under the pinned key');
  if (got !== replyTo) throw new RequestAuthError('replay', 'response answers another request');
}
