// Random vector OLE (DKLs23 Protocol 5.2 / Functionality 3.5): Bob ends with a random scalar b,
// Alice inputs (a_0, a_1), and they end with additive shares c_k + d_k = a_k·b — two rounds on top
// of the KOS extension (kos.ts), Bob speaking first.
//
//   Bob     β ← {0,1}^ξ, b = <g, β> for a public gadget vector g ∈ Z_q^ξ (so b is uniform even if
//           a few bits of β leak through a selective failure); OT-extension message with choices β
//   Alice   per OT j: pads α^0_j, α^1_j ∈ Z_q^3 from the extension; a dummy η ← Z_q;
//           sends ã_j = α^0_j − α^1_j + (a_0, a_1, η) for every j, then (Fiat–Shamir on ã)
//           θ ∈ Z_q^2, η' = η + θ·a, and μ = H(row checks α^0_j[2] + θ·α^0_j[0..1]);
//           her shares c_k = −Σ_j g_j·α^0_j[k]
//   Bob     d̈_j = α^{β_j}_j + β_j·ã_j (= α^0_j + β_j·(a, η)); checks μ against
//           d̈_j[2] + θ·d̈_j[0..1] − β_j·η' for all j (catches Alice using different a across OTs),
//           then d_k = Σ_j g_j·d̈_j[k]
//
// Parameters: ξ = |q| + 2·80 OTs (DKLs19's choice of statistical parameter s = 80), rounded up
// to whole bytes of choice bits (P-521: 521 + 160 → 688; the other curves need no rounding, and
// more OTs only add to b's entropy), L = 2, ρ = 1.
// The pads hash each OT row under a key naming the context and Alice's fresh salt (tccr.ts) and
// are read as |q|-bit scalars by rejection sampling (exactly uniform, no modular reduction); the salt
// makes Alice's pads fresh even if Bob replays an old extension message. The loops dominate
// signing time: pads, ã and d̈ stay bytes, added word by word (scalar-words.ts), and only the
// values that are multiplied become BigInts; the gadget sums are reduced once, at the end.

import { ProtocolError } from '../common.js';
import { fromHex, isLowerHex, toHex, type PartyId, type Rng } from '../../../contract/bytes.js';
import { bytesEqual } from './baseot.js';
import { decodeScalar, encodeScalar, hashToScalar, reduceWide, tagged, wideLength, type EcdsaCurve } from './curves.js';
import { readBigInt, writeBigInt } from '../integers.js';
import { addMod, belowN, scalarWords, subMod, wipe, wordStride, type ScalarWords } from './scalar-words.js';
import { KOS_PAD, kosReceive, kosSend, type KosMsg } from './kos.js';
import { tccr } from './tccr.js';

/** Width of each OT's payload: Alice's two inputs and one dummy. */
const WIDTH = 3;

/** Number of multiplication OTs ξ for a curve: |q| + 2s, a multiple of 8 (the extension works in bytes). */
export const xiFor = (c: EcdsaCurve): number => 8 * Math.ceil((c.orderBits + 2 * 80) / 8);
/** Bytes per extension column: (ξ + padding) / 8. */
export const colBytesFor = (c: EcdsaCurve): number => (xiFor(c) + KOS_PAD) / 8;

const gadgets = new Map<string, bigint[]>();
/** The public gadget vector: hashed from a fixed label, so no party chooses it. */
function gadget(c: EcdsaCurve): bigint[] {
  let g = gadgets.get(c.name);
  if (!g) {
    g = Array.from({ length: xiFor(c) }, (_, j) => hashToScalar(c, 'mpchsm/ecdsa/dkls23/gadget', c.name, j));
    gadgets.set(c.name, g);
  }
  return g;
}

/** Candidate scalars hashed per row: WIDTH, and one spare for a rejected candidate. */
const CANDIDATES = WIDTH + 1;

const dataViewOf = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/**
 * The pads of every 16-byte row: WIDTH uniform scalars each, read from the row's hash (tccr.ts,
 * keyed by the context and Alice's salt) by rejection sampling — exactly uniform, no modular
 * reduction. Each candidate is the low |q| bits of whole 16-byte blocks (P-521: 5 blocks, 521
 * bits kept; the others use every bit), so a candidate is rejected with probability
 * 1 − q/2^|q| (at most 2^-32, P-256's). A row whose candidates run out (probability below 2^-64)
 * is hashed further. Returned as a word table (scalar-words.ts): row j's pad k at
 * (j·WIDTH + k)·wordStride.
 */
function pads(c: EcdsaCurve, w: ScalarWords, ctx: Uint8Array, salt: Uint8Array, rows: Uint8Array): Uint8Array {
  const key = tagged('mpchsm/ecdsa/dkls23/pad', ctx, salt).subarray(0, 16);
  const blocks = Math.ceil(c.scalarLength / 16);
  const H = 16 * blocks;
  const S = wordStride(c);
  // The candidate is the block's last S bytes with the bits above |q| cleared (P-521 only).
  const top = c.orderBits - 8 * (S - 4);
  const topMask = top === 32 ? 0xffffffff : 2 ** top - 1;
  const hashed = tccr(key, rows, 0, 0, CANDIDATES * blocks);
  const hv = dataViewOf(hashed);
  const count = rows.length / 16;
  const out = new Uint8Array(count * WIDTH * S);
  const ov = dataViewOf(out);
  for (let j = 0; j < count; j++) {
    for (let k = 0, got = 0; got < WIDTH; k++) {
      let src = hv;
      let at = (j * CANDIDATES + k) * H + H - S;
      if (k >= CANDIDATES) {
        const more = tccr(key, rows.subarray(16 * j, 16 * j + 16), j, k * blocks, (k + 1) * blocks);
        src = dataViewOf(more);
        at = H - S;
      }
      const o = (j * WIDTH + got) * S;
      ov.setUint32(o, (src.getUint32(at) & topMask) >>> 0);
      for (let i = 4; i < S; i += 4) ov.setUint32(o + i, src.getUint32(at + i));
      if (belowN(w, ov, o)) got++;
    }
  }
  hashed.fill(0);
  return out;
}

/** Scalars of L bytes each to the word table's stride, or back (they differ for P-521 alone). */
function restride(c: EcdsaCurve, from: Uint8Array, count: number, toWords: boolean): Uint8Array {
  const L = c.scalarLength;
  const S = wordStride(c);
  if (S === L) return from;
  const [a, b] = toWords ? [L, S] : [S, L];
  const out = new Uint8Array(count * b);
  for (let i = 0; i < count; i++) out.set(from.subarray((i + 1) * a - L, (i + 1) * a), (i + 1) * b - L);
  return out;
}

/** θ: Fiat–Shamir on the whole of ã (hashed once), so Alice fixes ã before learning θ. */
function thetas(c: EcdsaCurve, ctx: Uint8Array, salt: Uint8Array, atilde: Uint8Array): [bigint, bigint] {
  const d = tagged('mpchsm/ecdsa/dkls23/atilde', ctx, salt, atilde);
  return [hashToScalar(c, 'mpchsm/ecdsa/dkls23/theta', d, 0), hashToScalar(c, 'mpchsm/ecdsa/dkls23/theta', d, 1)];
}

/** Bob's secrets between his two rounds. */
export interface RvoleBobKeep {
  /** β: the first ξ choice bits. */
  beta: Uint8Array;
  /** Extension rows t_j, 16 bytes each. */
  rows: Uint8Array;
}

export interface RvoleAliceMsg {
  salt: string;
  /** ã_j for every j, WIDTH scalars each, as bytes (public, but some 40 KB: no hex on the wire). */
  atilde: Uint8Array;
  eta: string;
  mu: string;
}

/** Bob, round 1: his random input b and the extension message. */
export function rvoleBobStart(c: EcdsaCurve, ctx: Uint8Array, keys0: Uint8Array, keys1: Uint8Array, rng: Rng): { b: bigint; msg: KosMsg; keep: RvoleBobKeep } {
  const xi = xiFor(c);
  const choices = rng(colBytesFor(c));
  const { msg, rows } = kosReceive(ctx, keys0, keys1, choices, rng(16), xi);
  const g = gadget(c);
  let b = 0n;
  for (let j = 0; j < xi; j++) b += g[j]! * BigInt((choices[j >> 3]! >> (j & 7)) & 1);
  return { b: c.Fn.create(b), msg, keep: { beta: choices.slice(0, xi / 8), rows } };
}

/**
 * Alice, round 2: checks Bob's extension (a failure names `bob`) and answers. Returns her
 * shares c_0, c_1 and the message.
 */
export function rvoleAlice(
  c: EcdsaCurve,
  ctx: Uint8Array,
  delta: Uint8Array,
  keys: Uint8Array,
  bobMsg: KosMsg,
  a: readonly [bigint, bigint],
  bob: PartyId,
  rng: Rng,
): { shares: [bigint, bigint]; msg: RvoleAliceMsg } {
  const { n } = c;
  const xi = xiFor(c);
  const S = wordStride(c);
  const w = scalarWords(c);
  const rows = kosSend(ctx, delta, keys, bobMsg, colBytesFor(c), xi, bob);
  const salt = rng(16);
  const flipped = new Uint8Array(rows.length);
  for (let k = 0; k < rows.length; k++) flipped[k] = rows[k]! ^ delta[k & 15]!;
  const alpha0 = pads(c, w, ctx, salt, rows);
  const alpha1 = pads(c, w, ctx, salt, flipped);
  const p0 = dataViewOf(alpha0);
  const p1 = dataViewOf(alpha1);
  const g = gadget(c);
  const eta = c.Fn.create(reduceWide(c, rng(wideLength(c))));
  const inputs = new Uint8Array(WIDTH * S);
  const iv = dataViewOf(inputs);
  [a[0], a[1], eta].forEach((x, k) => writeBigInt(iv, k * S, S, x));
  // ã_j = α0_j − α1_j + (a, η), word by word.
  const table = new Uint8Array(xi * WIDTH * S);
  const tv = dataViewOf(table);
  for (let j = 0; j < xi; j++) {
    for (let k = 0; k < WIDTH; k++) {
      const o = (j * WIDTH + k) * S;
      subMod(w, tv, o, p0, o, p1, o);
      addMod(w, tv, o, tv, o, iv, k * S);
    }
  }
  const atilde = restride(c, table, xi * WIDTH, false);
  const [t0, t1] = thetas(c, ctx, salt, atilde);
  const etaPrime = (eta + t0 * a[0] + t1 * a[1]) % n;
  const rowChecks = new Uint8Array(xi * S);
  const checks = dataViewOf(rowChecks);
  let c0 = 0n;
  let c1 = 0n;
  for (let j = 0; j < xi; j++) {
    const o = j * WIDTH * S;
    const x0 = readBigInt(p0, o, S);
    const x1 = readBigInt(p0, o + S, S);
    writeBigInt(checks, j * S, S, (readBigInt(p0, o + 2 * S, S) + t0 * x0 + t1 * x1) % n);
    c0 += g[j]! * x0;
    c1 += g[j]! * x1;
  }
  const checked = restride(c, rowChecks, xi, false);
  const mu = tagged('mpchsm/ecdsa/dkls23/mu', ctx, salt, checked);
  // Functions of her pads and inputs: only ã and the checks' hash leave.
  for (const b of [rowChecks, checked, alpha0, alpha1, inputs]) b.fill(0);
  wipe(w);
  return {
    shares: [c.Fn.neg(c0 % n), c.Fn.neg(c1 % n)],
    msg: { salt: toHex(salt), atilde, eta: encodeScalar(c, etaPrime), mu: toHex(mu) },
  };
}

/** Bob, after Alice's answer: checks it (a failure names `alice`) and returns d_0, d_1. */
export function rvoleBobFinish(c: EcdsaCurve, ctx: Uint8Array, keep: RvoleBobKeep, msg: RvoleAliceMsg, alice: PartyId): [bigint, bigint] {
  const { n } = c;
  const xi = xiFor(c);
  const sl = c.scalarLength;
  if (msg.atilde.length !== xi * WIDTH * sl || msg.salt.length !== 32 || msg.mu.length !== 64 || msg.eta.length !== 2 * sl)
    throw new ProtocolError('malformed', 'multiplication message has the wrong size', alice);
  if (!isLowerHex(msg.salt + msg.mu)) throw new ProtocolError('malformed', 'multiplication message is not hex', alice);
  const etaPrime = decodeScalar(c, msg.eta, alice);
  const S = wordStride(c);
  const av = dataViewOf(restride(c, msg.atilde, xi * WIDTH, true));
  const salt = fromHex(msg.salt);
  const [t0, t1] = thetas(c, ctx, salt, msg.atilde);
  const { beta } = keep;
  const g = gadget(c);
  const w = scalarWords(c);
  const padded = pads(c, w, ctx, salt, keep.rows);
  const pv = dataViewOf(padded);
  const checks = new Uint8Array(xi * S);
  const checkView = dataViewOf(checks);
  let checked: Uint8Array | undefined;
  let d0 = 0n;
  let d1 = 0n;
  try {
    for (let j = 0; j < xi; j++) {
      const bit = (beta[j >> 3]! >> (j & 7)) & 1;
      const o = j * WIDTH * S;
      // d̈_k = α^β_k + β·ã_k, in place of the pads. Every ã_k is range-checked and added (by mask)
      // whatever β is: work and failures must not depend on Bob's choices.
      for (let k = 0; k < WIDTH; k++) {
        if (!belowN(w, av, o + k * S)) throw new ProtocolError('scalar-range', 'multiplication message scalar out of range', alice);
        addMod(w, pv, o + k * S, pv, o + k * S, av, o + k * S, bit);
      }
      const x0 = readBigInt(pv, o, S);
      const x1 = readBigInt(pv, o + S, S);
      writeBigInt(checkView, j * S, S, (readBigInt(pv, o + 2 * S, S) + t0 * x0 + t1 * x1 + (n - BigInt(bit) * etaPrime)) % n);
      d0 += g[j]! * x0;
      d1 += g[j]! * x1;
    }
    checked = restride(c, checks, xi, false);
    if (!bytesEqual(tagged('mpchsm/ecdsa/dkls23/mu', ctx, salt, checked), fromHex(msg.mu))) throw new ProtocolError('bad-proof', 'multiplication consistency check failed', alice);
  } finally {
    // Functions of the pads his choices picked, also when the answer is refused.
    for (const b of [checks, padded, checked]) b?.fill(0);
    wipe(w);
  }
  return [d0 % n, d1 % n];
}
