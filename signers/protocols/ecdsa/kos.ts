// OT extension: IKNP with the KOS consistency check (Keller, Orsini, Scholl, CRYPTO 2015), over
// KAPPA = 128 base OTs, the challenge derived by Fiat–Shamir from the receiver's message.
//
//   setup      extension sender holds Δ ∈ {0,1}^κ and k_i^{Δ_i}; extension receiver holds k_i^0, k_i^1
//   receiver   choice bits x (ℓ' bits = ℓ wanted + κ + s random padding bits), fresh nonce;
//              t_i^b = PRG(k_i^b, nonce), u_i = t_i^0 ⊕ t_i^1 ⊕ x;
//              χ_j = H(ctx, nonce, u) ∈ GF(2^128); sends u, x̃ = Σ x_j·χ_j, t̃ = Σ t_j·χ_j
//   sender     q_i = PRG(k_i^{Δ_i}, nonce) ⊕ Δ_i·u_i, so row q_j = t_j ⊕ x_j·Δ;
//              checks Σ q_j·χ_j = t̃ + x̃·Δ, else aborts naming the receiver
//
// Row j's random-OT messages are then H(q_j), H(q_j ⊕ Δ) for the sender and H(t_j) for the
// receiver (hashing lives in rvole.ts). The padding rows make x̃ statistically independent of
// the wanted choice bits. A failed check leaks information about Δ (the selective-abort attack),
// so a caller must discard the pairwise setup after any abort it attributes to the receiver.
//
// Σ t_j·χ_j is computed column-wise: Σ_j t_j·χ_j = Σ_i X^i · (⊕_{j : t_ij = 1} χ_j), which needs
// only XORs of χ's and one Horner pass of 128 doublings — no general GF(2^128) products.

import { ProtocolError } from '../common.js';
import { fromHex, toHex, type PartyId } from '../../../contract/bytes.js';
import { KAPPA, bytesEqual } from './baseot.js';
import { tagged, xof } from './curves.js';
import { tccr } from './tccr.js';

/** Statistical padding rows added to every extension (beyond κ). */
export const KOS_PAD = KAPPA + 64;

export interface KosMsg {
  nonce: string;
  /** The κ columns u_i, each ℓ'/8 bytes, concatenated (some 14 KB: bytes on the wire, not hex). */
  u: Uint8Array;
  /** x̃ ‖ t̃, 16 bytes each. */
  check: string;
}

/**
 * The extension's PRG, for all κ base-OT keys at once: block b of key i's stream is
 * H(k_i, (i, b)) of tccr.ts under an AES key naming the context and the receiver's fresh nonce —
 * secret 128-bit inputs through a correlation-robust hash. One native call for the whole matrix
 * instead of one hash call per 64 bytes.
 */
function prg(ctx: Uint8Array, nonce: Uint8Array, keys: Uint8Array, length: number): Uint8Array {
  const blocks = Math.ceil(length / 16);
  const stream = tccr(tagged('mpchsm/ecdsa/kos/prg', ctx, nonce).subarray(0, 16), keys, 0, 0, blocks);
  if (blocks * 16 === length) return stream;
  const out = new Uint8Array(KAPPA * length);
  for (let i = 0; i < KAPPA; i++) out.set(stream.subarray(i * blocks * 16, i * blocks * 16 + length), i * length);
  return out;
}

/** χ_0..χ_{ℓ'-1} as 4 little-endian 32-bit words each. */
function challenges(ctx: Uint8Array, nonce: Uint8Array, u: Uint8Array, rows: number): Uint32Array {
  const b = xof(16 * rows, 'mpchsm/ecdsa/kos/chi', ctx, nonce, u);
  const out = new Uint32Array(4 * rows);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let k = 0; k < out.length; k++) out[k] = dv.getUint32(4 * k, true);
  return out;
}

/** acc ← acc·X in GF(2^128) mod X^128 + X^7 + X^2 + X + 1 (4 LE words). */
function mulX(a: Uint32Array): void {
  const carry = a[3]! >>> 31;
  a[3] = (a[3]! << 1) | (a[2]! >>> 31);
  a[2] = (a[2]! << 1) | (a[1]! >>> 31);
  a[1] = (a[1]! << 1) | (a[0]! >>> 31);
  a[0] = (a[0]! << 1) ^ (-carry & 0x87);
}

/**
 * Σ_j M_j·χ_j for the bit matrix given by its κ columns (column i = bit i of every row): per
 * column, the XOR of the χ_j its set bits select, looked up a nibble at a time from tables of
 * the 16 XOR combinations of each 4 consecutive χ's; then Horner in X over the columns.
 */
function fold(cols: Uint8Array, colBytes: number, chi: Uint32Array): Uint32Array {
  const nibbles = 2 * colBytes;
  const table = new Uint32Array(nibbles * 16 * 4);
  for (let p = 0; p < nibbles; p++) {
    for (let v = 1; v < 16; v++) {
      const low = v & -v;
      const bit = 31 - Math.clz32(low);
      const dst = 4 * (16 * p + v);
      const src = 4 * (16 * p + (v ^ low));
      const k = 4 * (4 * p + bit);
      for (let w = 0; w < 4; w++) table[dst + w] = table[src + w]! ^ chi[k + w]!;
    }
  }
  const acc = new Uint32Array(4);
  for (let i = KAPPA - 1; i >= 0; i--) {
    mulX(acc);
    const off = i * colBytes;
    let a0 = acc[0]!;
    let a1 = acc[1]!;
    let a2 = acc[2]!;
    let a3 = acc[3]!;
    for (let p = 0; p < colBytes; p++) {
      const v = cols[off + p]!;
      const lo = 4 * (32 * p + (v & 15));
      const hi = 4 * (32 * p + 16 + (v >> 4));
      a0 ^= table[lo]! ^ table[hi]!;
      a1 ^= table[lo + 1]! ^ table[hi + 1]!;
      a2 ^= table[lo + 2]! ^ table[hi + 2]!;
      a3 ^= table[lo + 3]! ^ table[hi + 3]!;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
  }
  return acc;
}

/** ⊕_{j : x_j = 1} χ_j. */
function select(x: Uint8Array, chi: Uint32Array): Uint32Array {
  const acc = new Uint32Array(4);
  for (let j = 0; j < 8 * x.length; j++) {
    const m = -((x[j >> 3]! >> (j & 7)) & 1);
    for (let w = 0; w < 4; w++) acc[w]! ^= chi[4 * j + w]! & m;
  }
  return acc;
}

/** a·Δ in GF(2^128), Δ's bits read LSB-first as the coefficients of X^0..X^127. */
function mulDelta(a: Uint32Array, delta: Uint8Array): Uint32Array {
  const acc = new Uint32Array(4);
  for (let i = KAPPA - 1; i >= 0; i--) {
    mulX(acc);
    const m = -((delta[i >> 3]! >> (i & 7)) & 1);
    for (let w = 0; w < 4; w++) acc[w]! ^= a[w]! & m;
  }
  return acc;
}

const wordsToBytes = (w: Uint32Array): Uint8Array => {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  for (let k = 0; k < 4; k++) dv.setUint32(4 * k, w[k]!, true);
  return b;
};

/**
 * Rows 0..count-1 (16 bytes each) of the matrix given by its κ columns, 8×8 bit blocks at a time
 * (Hacker's Delight transpose8 on two 32-bit halves; bit m of byte k is element (k, m)).
 */
function transpose(cols: Uint8Array, colBytes: number, count: number): Uint8Array {
  if (count % 8 !== 0 || count > 8 * colBytes) throw new RangeError('row count must be a multiple of 8 within the matrix');
  const rows = new Uint8Array(16 * count);
  for (let a = 0; a < KAPPA / 8; a++) {
    const base = 8 * a * colBytes;
    for (let p = 0; p < count / 8; p++) {
      const at = (k: number) => cols[base + k * colBytes + p]!;
      let lo = at(0) | (at(1) << 8) | (at(2) << 16) | (at(3) << 24);
      let hi = at(4) | (at(5) << 8) | (at(6) << 16) | (at(7) << 24);
      let t = (lo ^ (lo >>> 7)) & 0x00aa00aa;
      lo ^= t ^ (t << 7);
      t = (hi ^ (hi >>> 7)) & 0x00aa00aa;
      hi ^= t ^ (t << 7);
      t = (lo ^ (lo >>> 14)) & 0x0000cccc;
      lo ^= t ^ (t << 14);
      t = (hi ^ (hi >>> 14)) & 0x0000cccc;
      hi ^= t ^ (t << 14);
      t = (lo ^ ((lo >>> 28) | (hi << 4))) & 0xf0f0f0f0;
      lo ^= t;
      hi ^= t >>> 4;
      const out = 16 * 8 * p + a;
      for (let m = 0; m < 4; m++) {
        rows[out + 16 * m] = (lo >>> (8 * m)) & 0xff;
        rows[out + 16 * (m + 4)] = (hi >>> (8 * m)) & 0xff;
      }
    }
  }
  return rows;
}

/**
 * Extension receiver. `choices` holds ℓ' bits (ℓ' a multiple of 8, including the KOS_PAD random
 * padding bits). Returns the message and the rows t_j of the first `count` OTs.
 */
export function kosReceive(ctx: Uint8Array, keys0: Uint8Array, keys1: Uint8Array, choices: Uint8Array, nonce: Uint8Array, count: number): { msg: KosMsg; rows: Uint8Array } {
  const colBytes = choices.length;
  const t0 = prg(ctx, nonce, keys0, colBytes);
  const t1 = prg(ctx, nonce, keys1, colBytes);
  const u = new Uint8Array(KAPPA * colBytes);
  for (let i = 0; i < KAPPA; i++) for (let p = 0; p < colBytes; p++) u[i * colBytes + p] = t0[i * colBytes + p]! ^ t1[i * colBytes + p]! ^ choices[p]!;
  const chi = challenges(ctx, nonce, u, 8 * colBytes);
  const check = toHex(wordsToBytes(select(choices, chi))) + toHex(wordsToBytes(fold(t0, colBytes, chi)));
  return { msg: { nonce: toHex(nonce), u, check }, rows: transpose(t0, colBytes, count) };
}

/**
 * Extension sender: runs the consistency check (a failure names `receiver`) and returns the rows
 * q_j of the first `count` OTs. Message sizes must already be validated against ℓ'.
 */
export function kosSend(ctx: Uint8Array, delta: Uint8Array, keys: Uint8Array, msg: KosMsg, colBytes: number, count: number, receiver: PartyId): Uint8Array {
  const nonce = fromHex(msg.nonce);
  const { u } = msg;
  if (u.length !== KAPPA * colBytes || nonce.length !== 16 || msg.check.length !== 64)
    throw new ProtocolError('malformed', 'OT extension message has the wrong size', receiver);
  const q = prg(ctx, nonce, keys, colBytes);
  for (let i = 0; i < KAPPA; i++) {
    const m = -((delta[i >> 3]! >> (i & 7)) & 1) & 0xff;
    for (let p = 0; p < colBytes; p++) q[i * colBytes + p]! ^= u[i * colBytes + p]! & m;
  }
  const chi = challenges(ctx, nonce, u, 8 * colBytes);
  const check = fromHex(msg.check);
  const xt = new Uint32Array(4);
  const tt = new Uint32Array(4);
  const dv = new DataView(check.buffer, check.byteOffset, 32);
  for (let k = 0; k < 4; k++) {
    xt[k] = dv.getUint32(4 * k, true);
    tt[k] = dv.getUint32(16 + 4 * k, true);
  }
  const expect = mulDelta(xt, delta);
  for (let k = 0; k < 4; k++) expect[k]! ^= tt[k]!;
  if (!bytesEqual(wordsToBytes(fold(q, colBytes, chi)), wordsToBytes(expect)))
    throw new ProtocolError('bad-proof', 'OT extension consistency check failed', receiver);
  return transpose(q, colBytes, count);
}
