// Ed25519 and X25519 of the channel (envelopes, signed requests and responses, identities)
// through OpenSSL (node:crypto): 20–30× faster than the pure-JS versions on this machine, and
// every signature, verification and key agreement of a relayed protocol round goes through
// here. The bytes are the same: Ed25519 signatures are deterministic (RFC 8032), X25519 shared
// secrets are RFC 7748's; keys stay raw 32-byte strings everywhere else.
import { createPrivateKey, createPublicKey, diffieHellman, sign, verify, type KeyObject } from 'node:crypto';

const CURVE = { ed25519: 'Ed25519', x25519: 'X25519' } as const;
type Kind = keyof typeof CURVE;
const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
/**
 * JWK import is ~10× faster than PKCS#8 DER here. Node requires the public `x` in a private JWK
 * but derives the public half from `d` (checked by test/node/curve25519.test.ts), so a
 * placeholder stands in for it.
 */
const PLACEHOLDER_X = b64u(new Uint8Array(32));

/**
 * Secret arrays → their key objects, so a long-lived key (an identity's) is parsed once. An array
 * must not be given new contents after use; a wiped one is dropped with forgetSecretKey.
 */
const privateKeys = new WeakMap<Uint8Array, KeyObject>();
/** Peers' public keys, pinned and reused for every message; bounded. */
const publicKeys = new Map<string, KeyObject>();
const PUBLIC_KEYS = 256;

function privateKey(kind: Kind, secret: Uint8Array, cache: boolean): KeyObject {
  if (secret.length !== 32) throw new RangeError(`${kind} secret key must be 32 bytes`);
  let k = cache ? privateKeys.get(secret) : undefined;
  if (!k) {
    k = createPrivateKey({ key: { kty: 'OKP', crv: CURVE[kind], d: b64u(secret), x: PLACEHOLDER_X }, format: 'jwk' });
    if (cache) privateKeys.set(secret, k);
  }
  return k;
}

function publicKey(kind: Kind, raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new RangeError(`${kind} public key must be 32 bytes`);
  const id = kind + Buffer.from(raw).toString('hex');
  let k = publicKeys.get(id);
  if (!k) {
    k = createPublicKey({ key: { kty: 'OKP', crv: CURVE[kind], x: b64u(raw) }, format: 'jwk' });
    if (publicKeys.size >= PUBLIC_KEYS) publicKeys.delete(publicKeys.keys().next().value!);
    publicKeys.set(id, k);
  }
  return k;
}

const rawPublic = (k: KeyObject): Uint8Array => new Uint8Array(Buffer.from(createPublicKey(k).export({ format: 'jwk' }).x!, 'base64url'));

export const ed25519PublicKey = (secret: Uint8Array): Uint8Array => rawPublic(privateKey('ed25519', secret, true));
export const x25519PublicKey = (secret: Uint8Array): Uint8Array => rawPublic(privateKey('x25519', secret, true));

/** Ed25519 signature of `message` with a long-lived secret key. */
export const ed25519Sign = (message: Uint8Array, secret: Uint8Array): Uint8Array => new Uint8Array(sign(null, message, privateKey('ed25519', secret, true)));

/** RFC 8032 verification (OpenSSL's: s < L, canonical encodings); false for any malformed input. */
export function ed25519Verify(signature: Uint8Array, message: Uint8Array, key: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return verify(null, message, publicKey('ed25519', key), signature);
  } catch {
    return false;
  }
}

/** X25519(secret, peer) with a long-lived secret. Throws on a low-order peer key (all-zero result, RFC 7748 §6.1). */
export const x25519Shared = (secret: Uint8Array, peer: Uint8Array): Uint8Array =>
  new Uint8Array(diffieHellman({ privateKey: privateKey('x25519', secret, true), publicKey: publicKey('x25519', peer) }));

/** A one-message X25519 key: its public half and its agreement with one peer (not cached). */
export function x25519Ephemeral(secret: Uint8Array): { publicKey: Uint8Array; shared: (peer: Uint8Array) => Uint8Array } {
  const k = privateKey('x25519', secret, false);
  return { publicKey: rawPublic(k), shared: (peer) => new Uint8Array(diffieHellman({ privateKey: k, publicKey: publicKey('x25519', peer) })) };
}

/** Drops a wiped secret's key object. */
export const forgetSecretKey = (secret: Uint8Array): void => void privateKeys.delete(secret);
