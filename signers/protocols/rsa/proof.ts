// Shoup's proof that a partial is correct: equality of discrete logs log_v(v_i) = log_g(u) with
// g = x^{4Δ} and u = x_i², made non-interactive with Fiat–Shamir over SHA-256 and bound to the
// session, the signer's identifier, the modulus and the input x.
//
// Prover: r ← [0, 2^{B+384}), c = H(…, v^r, g^r), z = s·c + r, where B is the key's public share
// width (shareBits: |n| for a dealt key, more once reshared). With c < 2^256 and s < 2^B,
// s·c < 2^{B+256}, so z hides s up to statistical distance 2^-128.
// Verifier: recompute v' = v^z·v_i^{-c} and g' = g^z·u^{-c}, accept iff c = H(…, v', g').
//
// Soundness (Shoup, Lemma 2) relies on the squares mod n having no small-order elements, which
// holds when p and q are safe primes. For an ordinary (imported) key a prover who knew an element
// of small order ω could cheat with probability about 1/ω per attempt; finding such an element
// needs the factorisation of n, which no single signer has. Whatever the proofs say, the
// coordinator checks y^e ≡ x before anything is released, so a cheat can cause a failed
// operation but never a wrong signature or plaintext.

import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import type { PartyId, Rng } from '../../../contract/bytes.js';
import { bitLength, modInverse, randomBits } from './arith.js';
import { bigIntToBytes, bytesToBigInt } from '../integers.js';
import { modPow } from './modpow.js';

const TAG = utf8ToBytes('mpchsm/rsa-shoup/eqlog/v1');
const CHALLENGE_BITS = 256;
const SLACK_BITS = 128;

export interface ProofContext {
  session: string;
  id: PartyId;
  /** The input the partial is computed on (message representative or ciphertext). */
  x: bigint;
}

/** The statement: v_i = v^s and u = g^s, all mod n. */
export interface EqLogStatement {
  n: bigint;
  v: bigint;
  vi: bigint;
  g: bigint;
  u: bigint;
}

export interface EqLogProof {
  c: bigint;
  z: bigint;
}

/** Largest z an honest prover produces, for shares below 2^shareBits, has this many bits at most. */
export const maxResponseBits = (shareBits: number): number => shareBits + CHALLENGE_BITS + SLACK_BITS + 1;

function challenge(ctx: ProofContext, st: EqLogStatement, vr: bigint, gr: bigint): bigint {
  const k = Math.ceil(bitLength(st.n) / 8);
  const session = utf8ToBytes(ctx.session);
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint16(0, session.length);
  new DataView(head.buffer).setUint16(2, ctx.id);
  const elems = [st.n, ctx.x, st.v, st.vi, st.g, st.u, vr, gr].map((a) => bigIntToBytes(a, k));
  return bytesToBigInt(sha256(concatBytes(TAG, head, session, ...elems)));
}

/** Proves log_v(v_i) = log_g(u) = s, for 0 ≤ s < 2^shareBits. Two share-length exponentiations. */
export function proveEqualLogs(ctx: ProofContext, st: EqLogStatement, s: bigint, shareBits: number, rng: Rng): EqLogProof {
  // A wider s would show through z; parseKeyShare keeps shares within their bound.
  if (s < 0n || bitLength(s) > shareBits) throw new RangeError('share wider than its public bound');
  const r = randomBits(rng, shareBits + CHALLENGE_BITS + SLACK_BITS);
  const c = challenge(ctx, st, modPow(st.v, r, st.n), modPow(st.g, r, st.n));
  return { c, z: s * c + r };
}

/** Verifies a proof for shares below 2^shareBits. Two long and two 256-bit exponentiations plus two inversions. */
export function verifyEqualLogs(ctx: ProofContext, st: EqLogStatement, proof: EqLogProof, shareBits: number): boolean {
  const { n } = st;
  if (proof.c < 0n || bitLength(proof.c) > CHALLENGE_BITS || proof.z < 0n || bitLength(proof.z) > maxResponseBits(shareBits))
    return false;
  let viInv: bigint, uInv: bigint;
  try {
    viInv = modInverse(st.vi, n);
    uInv = modInverse(st.u, n);
  } catch {
    return false;
  }
  const vr = (modPow(st.v, proof.z, n) * modPow(viInv, proof.c, n)) % n;
  const gr = (modPow(st.g, proof.z, n) * modPow(uInv, proof.c, n)) % n;
  return challenge(ctx, st, vr, gr) === proof.c;
}
