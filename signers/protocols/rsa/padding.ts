// PKCS #1 v2.2 (RFC 8017) encodings used around threshold RSA: EMSA-PKCS1-v1_5 and EMSA-PSS
// (encode, and PSS verify so a signer can check a representative it is asked to sign), and the
// decryption decoders EME-OAEP and EME-PKCS1-v1_5.
//
// The decoders must not tell an attacker which check failed (Bleichenbacher, Manger): every check
// is folded into one flag with branch-free integer arithmetic over every byte, and any failure
// throws the same DecodeError. The only data-dependent work is the final copy of the message,
// whose length is the output anyway. PKCS#1 v1.5 decryption remains a padding oracle if the
// caller reveals success or failure to an adaptive attacker; prefer OAEP.

import { sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { concatBytes } from '@noble/hashes/utils.js';
import { DIGEST_INFO_PREFIX } from '../../../contract/keys/specs.js';

export type SignHash = 'sha256' | 'sha384' | 'sha512';
export type OaepHash = 'sha1' | 'sha256';
export type HashName = SignHash | OaepHash;

const HASHES: Record<HashName, (m: Uint8Array) => Uint8Array> = { sha1, sha256, sha384, sha512 };
const HASH_LEN: Record<HashName, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };
export const hashLength = (h: HashName): number => HASH_LEN[h];

const DIGEST_INFO: Record<SignHash, Uint8Array> = { sha256: DIGEST_INFO_PREFIX['SHA-256'], sha384: DIGEST_INFO_PREFIX['SHA-384'], sha512: DIGEST_INFO_PREFIX['SHA-512'] };

/** The one error every decoding failure produces. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  constructor() {
    super('decryption error');
  }
}

/** A local misuse (wrong digest length, key too short for the encoding). */
export class EncodingError extends Error {
  override readonly name = 'EncodingError';
}

function checkDigest(digest: Uint8Array, hash: SignHash): void {
  if (digest.length !== HASH_LEN[hash]) throw new EncodingError(`${hash} digest must be ${HASH_LEN[hash]} bytes`);
}

/** MGF1 (RFC 8017 §B.2.1). */
export function mgf1(seed: Uint8Array, len: number, hash: HashName): Uint8Array {
  const h = HASHES[hash];
  const out = new Uint8Array(len);
  const block = new Uint8Array(seed.length + 4);
  block.set(seed);
  for (let counter = 0, off = 0; off < len; counter++, off += HASH_LEN[hash]) {
    new DataView(block.buffer).setUint32(seed.length, counter);
    out.set(h(block).subarray(0, len - off), off);
  }
  return out;
}

/** EMSA-PKCS1-v1_5-ENCODE (§9.2) from a digest: 00 01 FF…FF 00 DigestInfo. */
export function emsaPkcs1v15Encode(digest: Uint8Array, hash: SignHash, emLen: number): Uint8Array {
  checkDigest(digest, hash);
  return pkcs1v15Block(concatBytes(DIGEST_INFO[hash], digest), emLen);
}

/**
 * The type-1 block 00 01 FF…FF 00 T (§9.2 steps 4–5) around any T of 1 to emLen − 11 bytes:
 * PKCS#11's CKM_RSA_PKCS signs a T its caller built (a SHA-1 DigestInfo, TLS 1.0's MD5‖SHA-1).
 */
export function pkcs1v15Block(t: Uint8Array, emLen: number): Uint8Array {
  if (t.length === 0) throw new EncodingError('nothing to sign');
  if (emLen < t.length + 11) throw new EncodingError('intended encoded message length too short');
  const em = new Uint8Array(emLen).fill(0xff);
  em[0] = 0x00;
  em[1] = 0x01;
  em[emLen - t.length - 1] = 0x00;
  em.set(t, emLen - t.length);
  return em;
}

/** EMSA-PSS-ENCODE (§9.1.1) from a digest, salt length = hash length, MGF1 with the same hash. */
export function emsaPssEncode(digest: Uint8Array, hash: SignHash, emBits: number, salt: Uint8Array): Uint8Array {
  checkDigest(digest, hash);
  const hLen = HASH_LEN[hash];
  if (salt.length !== hLen) throw new EncodingError(`salt must be ${hLen} bytes`);
  const emLen = Math.ceil(emBits / 8);
  if (emLen < 2 * hLen + 2) throw new EncodingError('encoding error: key too short');
  const h = HASHES[hash](concatBytes(new Uint8Array(8), digest, salt));
  const db = new Uint8Array(emLen - hLen - 1);
  db[db.length - hLen - 1] = 0x01;
  db.set(salt, db.length - hLen);
  const mask = mgf1(h, db.length, hash);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >>> (8 * emLen - emBits);
  return concatBytes(db, h, Uint8Array.of(0xbc));
}

/**
 * EMSA-PSS-VERIFY (§9.1.2), salt length = hash length: does `em` encode `digest`? Used by a
 * signer to check the representative the coordinator asks it to sign. The inputs are public.
 */
export function emsaPssVerify(digest: Uint8Array, hash: SignHash, emBits: number, em: Uint8Array): boolean {
  checkDigest(digest, hash);
  const hLen = HASH_LEN[hash];
  const emLen = Math.ceil(emBits / 8);
  if (em.length !== emLen || emLen < 2 * hLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const topMask = 0xff >>> (8 * emLen - emBits);
  if ((em[0]! & ~topMask & 0xff) !== 0) return false;
  const db = em.slice(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const mask = mgf1(h, db.length, hash);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= topMask;
  const psLen = db.length - hLen - 1;
  for (let i = 0; i < psLen; i++) if (db[i] !== 0) return false;
  if (db[psLen] !== 0x01) return false;
  const salt = db.subarray(psLen + 1);
  return Buffer.from(HASHES[hash](concatBytes(new Uint8Array(8), digest, salt))).equals(Buffer.from(h));
}

// Branch-free byte predicates: 1 or 0, for a, b in 0..255.
const eqByte = (a: number, b: number): number => (((a ^ b) - 1) >>> 31) & 1;
const select = (bit: number, a: number, b: number): number => (a & -bit) | (b & ~-bit); // bit ? a : b

/** EME-OAEP decoding (§7.1.2 step 3) of the k-byte EM = I2OSP(c^d mod n, k). */
export function oaepDecode(em: Uint8Array, hash: OaepHash, label: Uint8Array = new Uint8Array(0)): Uint8Array {
  const hLen = HASH_LEN[hash];
  const k = em.length;
  if (k < 2 * hLen + 2) throw new DecodeError(); // depends on the key length only
  const lHash = HASHES[hash](label);
  const maskedSeed = em.subarray(1, 1 + hLen);
  const db = em.slice(1 + hLen);
  const seed = mgf1(db, hLen, hash);
  for (let i = 0; i < hLen; i++) seed[i]! ^= maskedSeed[i]!;
  const dbMask = mgf1(seed, db.length, hash);
  for (let i = 0; i < db.length; i++) db[i]! ^= dbMask[i]!;

  let good = eqByte(em[0]!, 0);
  for (let i = 0; i < hLen; i++) good &= eqByte(db[i]!, lHash[i]!);
  // After lHash: zero or more 0x00, then 0x01, then the message. Find the first 0x01 and fail
  // if any other non-zero byte precedes it, touching every byte either way.
  let found = 0;
  let index = 0;
  for (let i = hLen; i < db.length; i++) {
    const isOne = eqByte(db[i]!, 1);
    const isZero = eqByte(db[i]!, 0);
    const first = isOne & (found ^ 1);
    index = select(first, i, index);
    good &= found | isOne | isZero;
    found |= isOne;
  }
  good &= found;
  seed.fill(0);
  if (good !== 1) {
    db.fill(0);
    throw new DecodeError();
  }
  const msg = db.slice(index + 1);
  db.fill(0);
  return msg;
}

/** EME-PKCS1-v1_5 decoding (§7.2.2 step 3): 00 02 PS (≥ 8 non-zero bytes) 00 M. */
export function pkcs1v15Decode(em: Uint8Array): Uint8Array {
  const k = em.length;
  if (k < 11) throw new DecodeError(); // depends on the key length only
  let good = eqByte(em[0]!, 0) & eqByte(em[1]!, 2);
  let found = 0;
  let index = 0;
  for (let i = 2; i < k; i++) {
    const isZero = eqByte(em[i]!, 0);
    const first = isZero & (found ^ 1);
    index = select(first, i, index);
    found |= isZero;
  }
  good &= found;
  good &= ((9 - index) >>> 31) & 1; // index ≥ 10: at least 8 padding bytes
  if (good !== 1) throw new DecodeError();
  return em.slice(index + 1);
}
