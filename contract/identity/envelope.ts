// End-to-end protection of signer-to-signer messages relayed by the (untrusted) gateway.
//
// Point-to-point envelope (carries secrets, e.g. DKG shares):
//   sender makes a fresh X25519 key e; k ‖ n = HKDF-SHA256(X25519(e, R), salt = E ‖ R, info)
//   where R is the recipient's static X25519 key; ciphertext = ChaCha20-Poly1305(k, n, aad =
//   header); the sender's Ed25519 key signs header ‖ ciphertext.
//   - Ephemeral-static: confidentiality rests on the recipient's key alone and each message
//     has its own key (so a fixed-per-key nonce is safe); the sender keeps nothing that could
//     later decrypt what it sent. A static-static DH would authenticate implicitly but make
//     every message between a pair share one secret and give no transferable evidence.
//   - The signature authenticates the sender and is evidence a third party can check (who
//     sent what, e.g. for a complaint about a bad share).
//   - The header names purpose, session, round, sender and recipient (party ids and identity
//     fingerprints) and the ephemeral key; it is both signed and the AEAD's associated data,
//     so a message cannot be redirected, re-labelled, or replayed into another session/round.
// Broadcast envelope (public values, e.g. commitments): same header without recipient and
// ephemeral key, payload in clear, signed.
//
// Duplicates inside one session/round are the protocol layer's job (collectRound) plus
// `ReplayGuard` (signed-request.ts), which remembers what was already accepted.

import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { fromHex, partyIdSchema, toHex, type PartyId, type Rng } from '../bytes.js';
import { ed25519Sign, ed25519Verify, x25519Ephemeral, x25519Shared } from './curve25519.js';
import { fingerprint, type IdentitySecrets, type PublicIdentity } from './identity.js';
import { lengthPrefixed, type ReplayGuard } from './signed-request.js';

const enc = new TextEncoder();
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

export type EnvelopeErrorCode =
  | 'malformed'
  | 'bad-signature'
  | 'wrong-sender'
  | 'wrong-recipient'
  | 'wrong-purpose'
  | 'wrong-session'
  | 'wrong-round'
  | 'decrypt-failed'
  | 'replay';

/** An envelope was refused. `sender` is the party it claimed to come from. */
export class EnvelopeError extends Error {
  override name = 'EnvelopeError';
  constructor(
    readonly code: EnvelopeErrorCode,
    message: string,
    readonly sender?: PartyId,
  ) {
    super(sender === undefined ? message : `party ${sender}: ${message}`);
  }
}

/** Wire form: header JSON text exactly as signed, base64url body, hex signature. */
export interface Envelope {
  h: string;
  c: string;
  s: string;
}

/** Largest accepted body (base64url characters): protocol messages are far smaller. */
export const MAX_ENVELOPE_BODY = 8 * 1024 * 1024;

const hex32 = z.string().regex(/^[0-9a-f]{64}$/);

export const envelopeSchema = z.strictObject({
  h: z.string().min(2).max(4096),
  c: z.string().max(MAX_ENVELOPE_BODY).regex(/^[A-Za-z0-9_-]*$/),
  s: z.string().regex(/^[0-9a-f]{128}$/),
});

const headerFields = {
  v: z.literal(1),
  purpose: z.string().regex(/^[a-z0-9][a-z0-9:._-]{0,63}$/),
  session: z.string().min(1).max(128),
  round: z.number().int().min(0).max(0x7fffffff),
  from: partyIdSchema,
  sender: hex32,
};
const headerSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('p2p'), ...headerFields, to: partyIdSchema, recipient: hex32, epk: hex32 }),
  z.strictObject({ kind: z.literal('broadcast'), ...headerFields, to: z.literal('all') }),
]);
type Header = z.infer<typeof headerSchema>;

export interface EnvelopeAddress {
  /** What the message is for (protocol and key), e.g. `frost-sign:<keyId>`. */
  purpose: string;
  session: string;
  round: number;
  from: PartyId;
}

const signedBytes = (h: Uint8Array, c: Uint8Array): Uint8Array => lengthPrefixed(enc.encode('mpchsm/envelope/v1'), h, c);

function envelopeKey(shared: Uint8Array, epk: Uint8Array, rpk: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const salt = new Uint8Array(64);
  salt.set(epk);
  salt.set(rpk, 32);
  const okm = new Uint8Array(hkdfSync('sha256', shared, salt, enc.encode('mpchsm/envelope/v1 key+nonce'), 44));
  shared.fill(0);
  return { key: okm.subarray(0, 32), nonce: okm.subarray(32) };
}

/** ChaCha20-Poly1305 (RFC 8439), ciphertext ‖ tag: OpenSSL's, for the large protocol rounds. */
function aead(dir: 'seal' | 'open', key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, input: Uint8Array): Uint8Array {
  if (dir === 'seal') {
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    c.setAAD(aad, { plaintextLength: input.length });
    return Buffer.concat([c.update(input), c.final(), c.getAuthTag()]);
  }
  if (input.length < 16) throw new Error('ciphertext too short');
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  d.setAAD(aad, { plaintextLength: input.length - 16 });
  d.setAuthTag(input.subarray(input.length - 16));
  // The plaintext (it may carry secrets) exists once, in the buffer returned, which the caller
  // wipes: no concatenated copy is left behind. A stream cipher's final() adds nothing; it checks the tag.
  const plain = d.update(input.subarray(0, input.length - 16));
  try {
    d.final();
  } catch (e) {
    plain.fill(0);
    throw e;
  }
  return plain;
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Whether base64url text without padding (the schema allows no other character) is the one
 * encoding of the bytes it decodes to: no dangling character, no bits set after the last byte.
 * Decided from the length and the last character: encoding the body again to compare would
 * cost a copy of a protocol round's megabyte.
 */
function canonicalBase64url(s: string): boolean {
  const tail = s.length % 4;
  if (tail === 0) return true;
  if (tail === 1) return false;
  // Two characters carry one byte (4 bits unused), three carry two (2 bits unused).
  return (BASE64URL.indexOf(s[s.length - 1]!) & (tail === 2 ? 0x0f : 0x03)) === 0;
}

// Validates our own header too: never emit something a peer must refuse.
const headerText = (header: Header): string => JSON.stringify(headerSchema.parse(header));

function finish(h: string, body: Uint8Array, sender: IdentitySecrets): Envelope {
  const sig = ed25519Sign(signedBytes(enc.encode(h), body), sender.signSecretKey);
  // A view of the body, not a copy: a protocol round's body can be a megabyte.
  return { h, c: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64url'), s: toHex(sig) };
}

/** Encrypts `payload` to `recipient` and signs it as `sender`. */
export function sealEnvelope(
  msg: EnvelopeAddress & { to: PartyId; payload: Uint8Array },
  sender: IdentitySecrets,
  recipient: PublicIdentity,
  rng: Rng = randomBytes,
): Envelope {
  const esk = Uint8Array.from(rng(32));
  const rpk = fromHex(recipient.kexPublicKey);
  try {
    const eph = x25519Ephemeral(esk);
    const epk = eph.publicKey;
    const h = headerText({
      kind: 'p2p',
      v: 1,
      purpose: msg.purpose,
      session: msg.session,
      round: msg.round,
      from: msg.from,
      sender: sender.fingerprint,
      to: msg.to,
      recipient: fingerprint(recipient),
      epk: toHex(epk),
    });
    const { key, nonce } = envelopeKey(eph.shared(rpk), epk, rpk);
    let ct: Uint8Array;
    try {
      ct = aead('seal', key, nonce, enc.encode(h), msg.payload);
    } finally {
      key.fill(0);
      nonce.fill(0);
    }
    return finish(h, ct, sender);
  } finally {
    esk.fill(0);
  }
}

/** Signs a public broadcast message (not encrypted; bound like any envelope). */
export function signBroadcast(msg: EnvelopeAddress & { payload: Uint8Array }, sender: IdentitySecrets): Envelope {
  const h = headerText({
    kind: 'broadcast',
    v: 1,
    purpose: msg.purpose,
    session: msg.session,
    round: msg.round,
    from: msg.from,
    sender: sender.fingerprint,
    to: 'all',
  });
  return finish(h, msg.payload, sender);
}

/**
 * Checks and opens an envelope: signature by `sender`, then every header field against
 * `expect` (`to: 'all'` expects a broadcast), then decryption with our X25519 key. With a
 * `replayGuard`, an envelope accepted before is refused. Returns the payload.
 */
export function openEnvelope(
  envelope: unknown,
  self: IdentitySecrets,
  sender: PublicIdentity,
  expect: EnvelopeAddress & { to: PartyId | 'all' },
  replayGuard?: ReplayGuard,
): Uint8Array {
  const fail = (code: EnvelopeErrorCode, why: string): never => {
    throw new EnvelopeError(code, why, expect.from);
  };
  const w = envelopeSchema.safeParse(envelope);
  if (!w.success) return fail('malformed', `malformed envelope: ${w.error.issues[0]?.path.join('.')} ${w.error.issues[0]?.message}`);
  if (!canonicalBase64url(w.data.c)) fail('malformed', 'body is not canonical base64url');
  const body: Uint8Array = Buffer.from(w.data.c, 'base64url');
  const h = enc.encode(w.data.h);
  const signed = signedBytes(h, body);
  if (!ed25519Verify(fromHex(w.data.s), signed, fromHex(sender.signPublicKey)))
    fail('bad-signature', 'envelope signature does not verify under the sender identity');

  let header: Header;
  try {
    header = headerSchema.parse(JSON.parse(w.data.h));
  } catch {
    return fail('malformed', 'malformed envelope header');
  }
  if (header.from !== expect.from || header.sender !== fingerprint(sender))
    fail('wrong-sender', `envelope is from party ${header.from} (${header.sender.slice(0, 16)}…)`);
  if (header.purpose !== expect.purpose) fail('wrong-purpose', `envelope is for ${header.purpose}, expected ${expect.purpose}`);
  if (header.session !== expect.session) fail('wrong-session', `envelope is for session ${header.session}`);
  if (header.round !== expect.round) fail('wrong-round', `envelope is for round ${header.round}, expected ${expect.round}`);
  if (header.to !== expect.to || (header.kind === 'p2p' && header.recipient !== self.fingerprint))
    fail('wrong-recipient', `envelope is addressed to ${header.to}`);

  let payload: Uint8Array = body;
  if (header.kind === 'p2p') {
    const epk = fromHex(header.epk);
    const rpk = fromHex(self.public.kexPublicKey);
    let shared: Uint8Array;
    try {
      shared = x25519Shared(self.kexSecretKey, epk);
    } catch {
      return fail('decrypt-failed', 'ephemeral key is invalid');
    }
    const { key, nonce } = envelopeKey(shared, epk, rpk);
    try {
      payload = aead('open', key, nonce, h, body);
    } catch {
      fail('decrypt-failed', 'envelope does not decrypt');
    } finally {
      key.fill(0);
      nonce.fill(0);
    }
  }

  if (replayGuard) {
    const id = `env\0${header.session}\0${header.round}\0${header.from}\0${header.to}\0${toHex(sha256(signed))}`;
    const seen = replayGuard.remember(id);
    if (seen !== 'fresh') fail('replay', seen === 'replay' ? 'envelope was already accepted' : 'replay guard is full');
  }
  return payload;
}
