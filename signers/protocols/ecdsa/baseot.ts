// Base OT: a batch of KAPPA random 1-of-2 OTs, Chou–Orlandi "Simplest OT" (ePrint 2015/267) with
// the known fixes, always over P-256 whatever the key's curve (the base-OT group is independent of
// the signing group, and OpenSSL's P-256 is constant-time and ~20× faster than JS here).
//
//   sender   a ← Z_q, A = a·G, plus a Schnorr proof of knowledge of a      (message 1)
//   receiver for each i, with choice bit c_i: b_i ← Z_q,
//            B_i = b_i·G + c_i·A, key k_i = H(ctx, i, c_i, A, B_i, b_i·A)  (message 2)
//   sender   k_i^0 = H(ctx, i, 0, A, B_i, a·B_i), k_i^1 = H(ctx, i, 1, A, B_i, a·(B_i − A))
//
// Fixes over the original: the proof of knowledge of a (the simulator extracts a, as in DKLs'
// verified Simplest OT), and keys that hash the context (session and ordered pair), the index,
// the bit, A and B_i — so a receiver cannot relate keys across indices or batches (the CO15
// batch attack) and k^0 ≠ k^1 even when a·B_i and a·(B_i − A) share an x-coordinate (ECDH
// returns x only). The receiver computes both candidate B_i and selects by mask, so which one it
// sent does not show in its timing.

import { createECDH, timingSafeEqual } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { ProtocolError } from '../common.js';
import { fromHex, toHex, type PartyId, type Rng } from '../../../contract/bytes.js';
import { getCurve, randomScalar, tagged } from './curves.js';
import { bigIntToBytes, bytesToBigInt } from '../integers.js';

/** Number of base OTs: the computational security parameter of the OT extension. */
export const KAPPA = 128;
/** Length of each OT key (the key of the extension's PRG for that column). */
export const SEED_BYTES = 16;

const P = p256.Point;
const Fn = p256.Point.Fn;
const POINT = 33;

export interface BaseOtSenderMsg {
  /** A, compressed. */
  A: string;
  /** Schnorr proof of knowledge of a: R (33 bytes) ‖ z (32 bytes). */
  proof: string;
}

const randomP256Scalar = (rng: Rng): bigint => randomScalar(getCurve('p256'), rng);

const scalar32 = (s: bigint): Uint8Array => bigIntToBytes(s, 32);

/** OpenSSL's P-256 key for a secret k (its bytes wiped once set). */
function p256Key(k: bigint): ReturnType<typeof createECDH> {
  const e = createECDH('prime256v1');
  const kb = scalar32(k);
  e.setPrivateKey(kb);
  kb.fill(0);
  return e;
}

/** x-coordinate of k·Q by OpenSSL (constant-time in k); throws on an invalid Q. */
const ecdhX = (k: bigint, Q: Uint8Array): Buffer => p256Key(k).computeSecret(Q);

const baseMul = (k: bigint): Uint8Array => new Uint8Array(p256Key(k).getPublicKey(null, 'uncompressed'));

const pokChallenge = (ctx: Uint8Array, A: Uint8Array, R: Uint8Array): bigint =>
  bytesToBigInt(tagged('mpchsm/ecdsa/baseot/pok', ctx, A, R)) % Fn.ORDER;

const otKey = (ctx: Uint8Array, i: number, bit: number, A: Uint8Array, B: Uint8Array, x: Uint8Array): Uint8Array =>
  tagged('mpchsm/ecdsa/baseot/key', ctx, i, bit, A, B, x).subarray(0, SEED_BYTES);

/** Sender, message 1. Returns the secret a as bytes (keep it until the receiver answers) and the message. */
export function baseOtSenderStart(ctx: Uint8Array, rng: Rng): { secret: Uint8Array; msg: BaseOtSenderMsg } {
  const a = randomP256Scalar(rng);
  const A = P.fromBytes(baseMul(a)).toBytes(true);
  const k = randomP256Scalar(rng);
  const R = P.fromBytes(baseMul(k)).toBytes(true);
  const z = Fn.add(k, Fn.mul(pokChallenge(ctx, A, R), a));
  return { secret: scalar32(a), msg: { A: toHex(A), proof: toHex(R) + toHex(scalar32(z)) } };
}

function decodeP256(hex: string, sender: PartyId, what: string) {
  try {
    if (hex.length !== 2 * POINT) throw new Error(`expected ${POINT} bytes`);
    const p = P.fromBytes(fromHex(hex));
    p.assertValidity();
    if (p.is0()) throw new Error('identity');
    if (toHex(p.toBytes(true)) !== hex) throw new Error('non-canonical encoding');
    return p;
  } catch (e) {
    throw new ProtocolError('invalid-point', `base OT ${what}: ${(e as Error).message}`, sender);
  }
}

/**
 * Receiver: checks the sender's proof, then for each choice bit returns B_i (to send) and the
 * chosen key k_i^{c_i}. `choices` holds KAPPA bits, LSB-first.
 */
export function baseOtReceive(
  ctx: Uint8Array,
  msg: BaseOtSenderMsg,
  choices: Uint8Array,
  sender: PartyId,
  rng: Rng,
): { B: string[]; keys: Uint8Array } {
  const Apt = decodeP256(msg.A, sender, 'A');
  if (msg.proof.length !== 2 * (POINT + 32)) throw new ProtocolError('malformed', 'base OT proof length', sender);
  const R = decodeP256(msg.proof.slice(0, 2 * POINT), sender, 'proof commitment');
  const z = BigInt('0x' + msg.proof.slice(2 * POINT));
  if (z >= Fn.ORDER) throw new ProtocolError('scalar-range', 'base OT proof response out of range', sender);
  const A = Apt.toBytes(true);
  const c = pokChallenge(ctx, A, R.toBytes(true));
  if (!P.BASE.multiplyUnsafe(z).equals(R.add(Apt.multiplyUnsafe(c))))
    throw new ProtocolError('bad-proof', 'base OT proof of knowledge does not verify', sender);

  const B: string[] = [];
  const keys = new Uint8Array(KAPPA * SEED_BYTES);
  for (let i = 0; i < KAPPA; i++) {
    const bit = (choices[i >> 3]! >> (i & 7)) & 1;
    const b = randomP256Scalar(rng);
    const B0 = P.fromBytes(baseMul(b));
    const e0 = B0.toBytes(true);
    const e1 = B0.add(Apt).toBytes(true);
    // Constant-time select of the encoding to send.
    const mask = -bit & 0xff;
    const Bi = new Uint8Array(POINT);
    for (let k = 0; k < POINT; k++) Bi[k] = (e0[k]! & ~mask) | (e1[k]! & mask);
    keys.set(otKey(ctx, i, bit, A, Bi, ecdhX(b, A)), i * SEED_BYTES);
    B.push(toHex(Bi));
  }
  return { B, keys };
}

/** Sender, after the receiver's message: both keys of every OT (k^0 block, then k^1 block). */
export function baseOtSenderFinish(ctx: Uint8Array, secretBytes: Uint8Array, msg: BaseOtSenderMsg, B: readonly string[], receiver: PartyId): { keys0: Uint8Array; keys1: Uint8Array } {
  if (B.length !== KAPPA) throw new ProtocolError('malformed', `base OT: ${B.length} points, expected ${KAPPA}`, receiver);
  const secret = bytesToBigInt(secretBytes);
  const A = fromHex(msg.A);
  const Apt = P.fromBytes(A);
  const keys0 = new Uint8Array(KAPPA * SEED_BYTES);
  const keys1 = new Uint8Array(KAPPA * SEED_BYTES);
  const seen = new Set<string>();
  for (let i = 0; i < KAPPA; i++) {
    const Bpt = decodeP256(B[i]!, receiver, `B[${i}]`);
    // A repeated B_i (or B_i = A) would correlate keys; an honest receiver never sends one.
    if (seen.has(B[i]!) || Bpt.equals(Apt)) throw new ProtocolError('invalid-point', `base OT B[${i}] repeats a point`, receiver);
    seen.add(B[i]!);
    const Bi = fromHex(B[i]!);
    keys0.set(otKey(ctx, i, 0, A, Bi, ecdhX(secret, Bi)), i * SEED_BYTES);
    keys1.set(otKey(ctx, i, 1, A, Bi, ecdhX(secret, Bpt.subtract(Apt).toBytes(true))), i * SEED_BYTES);
  }
  return { keys0, keys1 };
}

/** Constant-time equality of byte strings of equal length. */
export const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && timingSafeEqual(a, b);
