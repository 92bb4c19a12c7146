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
// makes Alice's pads fresh even if Bob replays an old extension message. Sums are reduced
// lazily: the loops dominate signing time.

import { ProtocolError } from '../common.js';
import { fromHex, isLowerHex, toHex, type PartyId, type Rng } from '../../../contract/bytes.js';
import { bytesEqual } from './baseot.js';
import { decodeScalar, encodeScalar, hashToScalar, reduceWide, tagged, wideLength, type EcdsaCurve } from './curves.js';
import { bytesToBigInt, readBigInt, writeBigInt } from '../integers.js';
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

/**
 * The pads of every 16-byte row: WIDTH uniform scalars each, read from the row's hash (tccr.ts,
 * keyed by the context and Alice's salt) by rejection sampling — exactly uniform, no modular
 * reduction. Each candidate is the low |q| bits of whole 16-byte blocks (P-521: 5 blocks, 521
 * bits kept; the others use every bit), so a candidate is rejected with probability
 * 1 − q/2^|q| (at most 2^-32, P-256's). A row whose candidates run out (probability below 2^-64)
 * is hashed further.
 */
function pads(c: EcdsaCurve, ctx: Uint8Array, salt: Uint8Array, rows: Uint8Array): bigint[][] {
  const key = tagged('mpchsm/ecdsa/dkls23/pad', ctx, salt).subarray(0, 16);
  const blocks = Math.ceil(c.scalarLength / 16);
  const H = 16 * blocks;
  // Straight from the bytes, 64 bits at a time through one view: no hex string per candidate.
  const hashed = tccr(key, rows, 0, 0, CANDIDATES * blocks);
  const view = new DataView(hashed.buffer, hashed.byteOffset, hashed.byteLength);
  const at = (o: number): bigint => readBigInt(view, o, H);
  const keep = (v: bigint): bigint => (128 * blocks === c.orderBits ? v : BigInt.asUintN(c.orderBits, v));
  const out: bigint[][] = [];
  for (let j = 0; 16 * j < rows.length; j++) {
    const res: bigint[] = [];
    for (let k = 0; res.length < WIDTH; k++) {
      const v =
        k < CANDIDATES
          ? keep(at((j * CANDIDATES + k) * H))
          : keep(bytesToBigInt(tccr(key, rows.subarray(16 * j, 16 * j + 16), j, k * blocks, (k + 1) * blocks)));
      if (v < c.n) res.push(v);
    }
    out.push(res);
  }
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
  const rows = kosSend(ctx, delta, keys, bobMsg, colBytesFor(c), xi, bob);
  const salt = rng(16);
  const flipped = new Uint8Array(rows.length);
  for (let k = 0; k < rows.length; k++) flipped[k] = rows[k]! ^ delta[k & 15]!;
  const alpha0 = pads(c, ctx, salt, rows);
  const alpha1 = pads(c, ctx, salt, flipped);
  const g = gadget(c);
  const eta = c.Fn.create(reduceWide(c, rng(wideLength(c))));
  const inputs = [a[0], a[1], eta];
  const sl = c.scalarLength;
  const atilde = new Uint8Array(xi * WIDTH * sl);
  const out = new DataView(atilde.buffer);
  for (let j = 0; j < xi; j++) {
    const p0 = alpha0[j]!;
    const p1 = alpha1[j]!;
    for (let k = 0; k < WIDTH; k++) {
      // α0 − α1 + input ∈ (−n, 2n): two conditional corrections instead of a division.
      let v = p0[k]! - p1[k]! + inputs[k]!;
      if (v < 0n) v += n;
      else if (v >= n) v -= n;
      writeBigInt(out, (j * WIDTH + k) * sl, sl, v);
    }
  }
  const [t0, t1] = thetas(c, ctx, salt, atilde);
  const etaPrime = (eta + t0 * a[0] + t1 * a[1]) % n;
  const rowChecks = new Uint8Array(xi * sl);
  const checks = new DataView(rowChecks.buffer);
  alpha0.forEach((p, j) => writeBigInt(checks, j * sl, sl, (p[2]! + t0 * p[0]! + t1 * p[1]!) % n));
  const mu = tagged('mpchsm/ecdsa/dkls23/mu', ctx, salt, rowChecks);
  rowChecks.fill(0); // functions of her pads: only their hash leaves
  let c0 = 0n;
  let c1 = 0n;
  for (let j = 0; j < xi; j++) {
    c0 += g[j]! * alpha0[j]![0]!;
    c1 += g[j]! * alpha0[j]![1]!;
  }
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
  const atilde = new DataView(msg.atilde.buffer, msg.atilde.byteOffset, msg.atilde.byteLength);
  const scalar = (off: number): bigint => {
    const s = readBigInt(atilde, off, sl);
    if (s >= n) throw new ProtocolError('scalar-range', 'multiplication message scalar out of range', alice);
    return s;
  };
  const salt = fromHex(msg.salt);
  const padded = pads(c, ctx, salt, keep.rows);
  const etaPrime = decodeScalar(c, msg.eta, alice);
  const [t0, t1] = thetas(c, ctx, salt, msg.atilde);
  const { beta } = keep;
  const g = gadget(c);
  const checks = new Uint8Array(xi * sl);
  const checkView = new DataView(checks.buffer);
  let d0 = 0n;
  let d1 = 0n;
  for (let j = 0; j < xi; j++) {
    const bit = BigInt((beta[j >> 3]! >> (j & 7)) & 1);
    const v = padded[j]!;
    const off = j * WIDTH * sl;
    // d̈_k = α^β_k + β·ã_k, kept unreduced (< 2n): only sums and the check use it. Every ã_k is
    // read and range-checked whatever β is: work and failures must not depend on Bob's choices.
    const dd = v.map((vk, k) => vk + bit * scalar(off + k * sl));
    writeBigInt(checkView, j * sl, sl, (dd[2]! + t0 * dd[0]! + t1 * dd[1]! + (n - bit * etaPrime)) % n);
    d0 += g[j]! * dd[0]!;
    d1 += g[j]! * dd[1]!;
  }
  const mu = tagged('mpchsm/ecdsa/dkls23/mu', ctx, salt, checks);
  checks.fill(0); // functions of the pads his choices picked
  if (!bytesEqual(mu, fromHex(msg.mu))) throw new ProtocolError('bad-proof', 'multiplication consistency check failed', alice);
  return [d0 % n, d1 % n];
}
