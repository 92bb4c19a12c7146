// A signer's long-term identity: an Ed25519 key pair (signs envelopes, requests, responses)
// and a separate X25519 key pair (receives end-to-end encrypted envelopes) — one key per
// algorithm, never one key used for both. Both secrets live in the sealed store; the public
// half is exported as a small JSON document that other parties pin. The document carries a
// self-signature binding the name and the X25519 key to the Ed25519 key, and a fingerprint
// that administrators compare out of band.

import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519PublicKey, ed25519Sign, ed25519Verify, forgetSecretKey, x25519PublicKey, x25519Shared } from './curve25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { z } from 'zod';
import { fromHex, toHex, type Rng } from '../bytes.js';
import { writeFileAtomic } from '../io/atomic.js';
import { ShareStore } from '../io/sealed-store.js';
import type { ScryptParams } from '../io/seal.js';

export interface PublicIdentity {
  name: string;
  /** Ed25519 public key, hex. */
  signPublicKey: string;
  /** X25519 public key, hex. */
  kexPublicKey: string;
  /** Ed25519 signature over name and both keys, hex. */
  selfSignature: string;
}

export interface IdentitySecrets {
  readonly public: PublicIdentity;
  readonly fingerprint: string;
  readonly signSecretKey: Uint8Array;
  readonly kexSecretKey: Uint8Array;
}

export class IdentityError extends Error {
  override name = 'IdentityError';
}

/** Store record holding this signer's identity secrets. */
export const IDENTITY_RECORD = 'identity';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const key32 = z.string().regex(/^[0-9a-f]{64}$/, '32 bytes, lower-case hex');

export const publicIdentitySchema = z.strictObject({
  name: z.string().regex(NAME_RE),
  signPublicKey: key32,
  kexPublicKey: key32,
  selfSignature: z.string().regex(/^[0-9a-f]{128}$/),
  /** Informational in exported documents; checked against the computed one when present. */
  fingerprint: key32.optional(),
});

const enc = new TextEncoder();

function body(domain: string, name: string, signPub: Uint8Array, kexPub: Uint8Array): Uint8Array {
  const n = enc.encode(name);
  const d = enc.encode(domain);
  const out = new Uint8Array(d.length + 1 + n.length + 64);
  out.set(d);
  out[d.length] = n.length; // names are at most 64 ASCII bytes
  out.set(n, d.length + 1);
  out.set(signPub, d.length + 1 + n.length);
  out.set(kexPub, d.length + 1 + n.length + 32);
  return out;
}

const selfSigned = (p: Pick<PublicIdentity, 'name' | 'signPublicKey' | 'kexPublicKey'>): Uint8Array =>
  body('mpchsm/identity-self/v1\0', p.name, fromHex(p.signPublicKey), fromHex(p.kexPublicKey));

/** SHA-256 over name and both public keys, hex. */
export const fingerprint = (p: Pick<PublicIdentity, 'name' | 'signPublicKey' | 'kexPublicKey'>): string =>
  toHex(sha256(body('mpchsm/identity/v1\0', p.name, fromHex(p.signPublicKey), fromHex(p.kexPublicKey))));

/** Derives the full identity (public document included) from the two secret keys. */
export function identityFromSecrets(name: string, signSecretKey: Uint8Array, kexSecretKey: Uint8Array): IdentitySecrets {
  if (!NAME_RE.test(name)) throw new IdentityError(`invalid identity name ${JSON.stringify(name)}`);
  const unsigned = {
    name,
    signPublicKey: toHex(ed25519PublicKey(signSecretKey)),
    kexPublicKey: toHex(x25519PublicKey(kexSecretKey)),
  };
  const pub: PublicIdentity = { ...unsigned, selfSignature: toHex(ed25519Sign(selfSigned(unsigned), signSecretKey)) };
  return { public: pub, fingerprint: fingerprint(pub), signSecretKey, kexSecretKey };
}

// Record layout: version byte, Ed25519 seed, X25519 secret, name (ASCII).
function encodeSecrets(s: IdentitySecrets): Uint8Array {
  const n = enc.encode(s.public.name);
  const out = new Uint8Array(65 + n.length);
  out[0] = 1;
  out.set(s.signSecretKey, 1);
  out.set(s.kexSecretKey, 33);
  out.set(n, 65);
  return out;
}

/** Generates this signer's identity at init and seals it into the store. Refuses to overwrite. */
export async function createIdentity(store: ShareStore, name: string, rng: Rng = randomBytes): Promise<IdentitySecrets> {
  if (await store.has(IDENTITY_RECORD)) throw new IdentityError('this store already holds an identity');
  const id = identityFromSecrets(name, Uint8Array.from(rng(32)), Uint8Array.from(rng(32)));
  const record = encodeSecrets(id);
  try {
    await store.put(IDENTITY_RECORD, record);
  } finally {
    record.fill(0);
  }
  return id;
}

/**
 * What a new party makes first (`signer init`, `gateway init`): a store sealed under `secret` in
 * `storeDir` holding a new identity, whose public half (with `extra` fields) goes to `publicFile`.
 */
export async function sealNewIdentity(storeDir: string, secret: Uint8Array, name: string, publicFile: string, extra: object = {}, scrypt?: ScryptParams): Promise<PublicIdentity & { fingerprint: string }> {
  const store = await ShareStore.init(storeDir, secret, scrypt ? { scrypt } : {});
  let identity: PublicIdentity & { fingerprint: string };
  try {
    identity = exportPublicIdentity(await createIdentity(store, name));
  } finally {
    store.close();
  }
  await writeFileAtomic(publicFile, Buffer.from(JSON.stringify({ ...identity, ...extra }, null, 2) + '\n'), 0o644);
  return identity;
}

/** Loads the identity sealed in the store. */
export async function loadIdentity(store: ShareStore): Promise<IdentitySecrets> {
  const record = await store.get(IDENTITY_RECORD);
  if (!record) throw new IdentityError('this store holds no identity; initialise the signer first');
  try {
    if (record.length < 66 || record[0] !== 1) throw new IdentityError('identity record has an unknown layout');
    return identityFromSecrets(
      new TextDecoder().decode(record.subarray(65)),
      record.slice(1, 33),
      record.slice(33, 65),
    );
  } finally {
    record.fill(0);
  }
}

/** Zeroes the secret keys held in memory. */
export function wipeIdentity(s: IdentitySecrets): void {
  forgetSecretKey(s.signSecretKey);
  forgetSecretKey(s.kexSecretKey);
  s.signSecretKey.fill(0);
  s.kexSecretKey.fill(0);
}

/** The document to publish and pin: the public identity plus its fingerprint. */
export const exportPublicIdentity = (s: IdentitySecrets): PublicIdentity & { fingerprint: string } => ({
  ...s.public,
  fingerprint: s.fingerprint,
});

/** A fixed X25519 scalar, only for probing peer keys (never a secret). */
const LOW_ORDER_PROBE = new Uint8Array(32).fill(9);

/**
 * Validates a public identity document received from elsewhere: shape, key encodings (no
 * small-order keys), self-signature, and the fingerprint if one is given.
 */
export function parsePublicIdentity(doc: unknown): PublicIdentity {
  const r = publicIdentitySchema.safeParse(doc);
  if (!r.success) throw new IdentityError(`malformed public identity: ${r.error.issues[0]?.path.join('.')} ${r.error.issues[0]?.message}`);
  const { fingerprint: claimed, ...pub } = r.data;
  try {
    if (ed25519.Point.fromBytes(fromHex(pub.signPublicKey), false).isSmallOrder()) throw new Error();
    // X25519 rejects low-order peer keys by throwing; probe with a fixed scalar.
    x25519Shared(LOW_ORDER_PROBE, fromHex(pub.kexPublicKey));
  } catch {
    throw new IdentityError(`public identity ${pub.name}: invalid or weak public key`);
  }
  if (!ed25519Verify(fromHex(pub.selfSignature), selfSigned(pub), fromHex(pub.signPublicKey)))
    throw new IdentityError(`public identity ${pub.name}: self-signature does not verify`);
  if (claimed !== undefined && claimed !== fingerprint(pub))
    throw new IdentityError(`public identity ${pub.name}: fingerprint does not match its keys`);
  return pub;
}
