// The threshold PRF behind symmetric keys: F_k(x) = RFC 9497's VOPRF Evaluate(k, x) in
// ristretto255-SHA512, with k Shamir-shared among the signers by the DKG (dkg.ts, group
// 'ristretto255'), so no party ever holds k (2HashDH, Jarecki–Kiayias–Krawczyk–Xu).
//
//   signer i:     Z_i = k_i·P, P = HashToGroup(x), with RFC 9497's DLEQ proof that
//                 log_G(K_i) = log_P(Z_i), K_i its verifying share (the VOPRF's BlindEvaluate
//                 with P as the blinded element)
//   coordinator:  checks each proof (a bad partial names its signer), Z = Σ λ_i·Z_i over t valid
//                 partials, output = Hash(len‖x‖len‖Z‖"Finalize"), exactly Evaluate(k, x)
//
// x is not blinded: each signer derives it itself from the client's signed request (which
// ciphertext, which encryption context), so that a coordinator cannot ask for the output of
// another input. The output is a 64-byte secret the caller turns into a data key.
//
// The group work is libsodium's (WebAssembly; constant-time where the scalar is secret), the
// hashing RFC 9380's expand_message_xmd (@noble/curves). Proofs follow RFC 9497 §2.2 exactly, so
// noble's VOPRF client verifies them too (test/protocols/tprf.test.ts checks both ways).

import { expand_message_xmd } from '@noble/curves/abstract/hash-to-curve.js';
import { bytesToNumberLE, concatBytes } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import sodium from 'libsodium-wrappers-sumo';
import { z } from 'zod';
import { fromHex, hexSchema, toHex, type PartyId, type Rng } from '../../contract/bytes.js';
import { messageSchema, ProtocolError, type Message } from './common.js';
import { checkPublicPackage, openKeyShare, type PublicPackage } from './dkg.js';
import { lagrangeAt } from './shamir.js';
import { getGroup } from './suites.js';

// RFC 9497 §3.1, §4.1: the VOPRF mode (0x01) of ristretto255-SHA512, and its domain separation.
const utf8 = (s: string) => new TextEncoder().encode(s);
const CONTEXT = concatBytes(utf8('OPRFV1-'), Uint8Array.of(0x01), utf8('-ristretto255-SHA512'));
const HASH_TO_GROUP_DST = concatBytes(utf8('HashToGroup-'), CONTEXT);
const HASH_TO_SCALAR_DST = concatBytes(utf8('HashToScalar-'), CONTEXT);
const SEED_DST = concatBytes(utf8('Seed-'), CONTEXT);
const group = getGroup('ristretto255');
const { Fn } = group;
const G = group.encoded;

export const TPRF_ROUND = 1;
export const tprfPartialSchema = z.strictObject({ evaluated: hexSchema.length(64), proof: hexSchema.length(128) });
export type TprfPartial = z.infer<typeof tprfPartialSchema>;

/** RFC 9497's I2OSP(len(x), 2) || x for each part. */
const framed = (...parts: Uint8Array[]): Uint8Array => concatBytes(...parts.flatMap((p) => [Uint8Array.of(p.length >> 8, p.length & 0xff), p]));

/** HashToGroup: hash_to_ristretto255 (RFC 9380 expand_message_xmd, then RFC 9496's one-way map). */
const hashToGroup = (x: Uint8Array): Uint8Array => sodium.crypto_core_ristretto255_from_hash(expand_message_xmd(x, HASH_TO_GROUP_DST, 64, sha512));
const hashToScalar = (x: Uint8Array): bigint => Fn.create(bytesToNumberLE(expand_message_xmd(x, HASH_TO_SCALAR_DST, 64, sha512)));

/** RFC 9497 §2.2.1 ComputeComposites for one element pair: d, and M = d·P. */
function composite(K: Uint8Array, P: Uint8Array, Z: Uint8Array): { d: bigint; M: Uint8Array } {
  const seed = sha512(framed(K, SEED_DST));
  const d = hashToScalar(concatBytes(framed(seed), Uint8Array.of(0, 0), framed(P, Z), utf8('Composite')));
  return { d, M: G.mul(P, d) };
}

const challenge = (K: Uint8Array, M: Uint8Array, Z: Uint8Array, t2: Uint8Array, t3: Uint8Array): bigint => hashToScalar(concatBytes(framed(K, M, Z, t2, t3), utf8('Challenge')));

/** RFC 9497 §2.2.1 GenerateProof (batch of one): that log_G(K) = log_P(Z) = k. Secret multiplications are libsodium's, constant-time. */
function proveDleq(k: Uint8Array, K: Uint8Array, P: Uint8Array, Z: Uint8Array, rng: Rng): Uint8Array {
  const { M } = composite(K, P, Z);
  const r = group.secret.random(rng);
  try {
    const c = challenge(K, M, group.secret.mul(M, k), group.secret.mulBase(r), group.secret.mul(M, r));
    return concatBytes(Fn.toBytes(c), group.secret.combine(r, [[k, Fn.neg(c)]]));
  } finally {
    r.fill(0);
  }
}

/** RFC 9497 §2.2.2 VerifyProof (batch of one). */
function verifyDleq(K: Uint8Array, P: Uint8Array, Z: Uint8Array, proof: Uint8Array): boolean {
  const [c, s] = [bytesToNumberLE(proof.subarray(0, 32)), bytesToNumberLE(proof.subarray(32))];
  if (c >= Fn.ORDER || s >= Fn.ORDER || c === 0n || s === 0n) return false;
  const { d, M } = composite(K, P, Z);
  const Zc = G.mul(Z, d);
  const t2 = G.add(G.mulBase(s), G.mul(K, c));
  const t3 = G.add(G.mul(M, s), G.mul(Zc, c));
  return challenge(K, M, Zc, t2, t3) === c;
}

/** RFC 9497 Finalize's hash: the PRF output of `input` whose (unblinded) element is `Z`. */
const finalize = (input: Uint8Array, Z: Uint8Array): Uint8Array => sha512(concatBytes(framed(input, Z), utf8('Finalize')));

/**
 * A signer's partial evaluation of F on `input`, with its proof. `keyShare` must be a share of
 * a ristretto255 key (openKeyShare checks it against its public package).
 */
export function tprfPartial(keyShare: unknown, session: string, input: Uint8Array, rng: Rng): Message<TprfPartial> {
  const { key, secret } = openKeyShare(keyShare);
  if (key.group !== 'ristretto255') throw new ProtocolError('bad-parameters', `a ${key.group} key is not a PRF key`);
  const K = fromHex(key.verifyingShares[String(key.self)]!);
  const P = hashToGroup(input);
  const Z = group.secret.mul(P, secret);
  return { session, round: TPRF_ROUND, from: key.self, to: 'all', payload: { evaluated: toHex(Z), proof: toHex(proveDleq(secret, K, P, Z, rng)) } };
}

export interface TprfResult {
  /** F_k(input): 64 bytes. */
  output: Uint8Array;
  /** The t signers whose partials were combined. */
  signers: PartyId[];
  /** Every rejected partial, each naming its sender where there is one. */
  faults: ProtocolError[];
}

/**
 * Coordinator: checks every partial's proof against its sender's verifying share, combines the
 * t valid ones with the lowest identifiers. Fewer than t valid: throws the first fault (naming
 * its sender) or 'missing'.
 */
export function tprfCombine(publicPackage: PublicPackage, session: string, input: Uint8Array, messages: readonly unknown[]): TprfResult {
  const { pub } = checkPublicPackage(publicPackage);
  if (pub.group !== 'ristretto255') throw new ProtocolError('bad-parameters', `a ${pub.group} key is not a PRF key`);
  const P = hashToGroup(input);
  const faults: ProtocolError[] = [];
  const valid = new Map<PartyId, Uint8Array>();
  for (const raw of messages) {
    try {
      const [from, Z] = checkPartial(pub.verifyingShares, session, P, raw);
      if (valid.has(from)) throw new ProtocolError('duplicate', 'second partial', from);
      valid.set(from, Z);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      faults.push(e);
    }
  }
  if (valid.size < pub.threshold) throw faults[0] ?? new ProtocolError('missing', `${valid.size} valid partials, ${pub.threshold} needed`);
  const signers = [...valid.keys()].sort((a, b) => a - b).slice(0, pub.threshold);
  const Z = signers.map((id) => G.mul(valid.get(id)!, lagrangeAt(Fn, signers, id))).reduce((a, b) => G.add(a, b));
  return { output: finalize(input, Z), signers, faults };
}

/** One partial: its envelope, its element, and its proof against its sender's verifying share. */
function checkPartial(verifyingShares: Readonly<Record<string, string>>, session: string, P: Uint8Array, raw: unknown): [PartyId, Uint8Array] {
  const m = messageSchema.safeParse(raw);
  const claimed = (raw as { from?: unknown } | null)?.from;
  if (!m.success) throw new ProtocolError('malformed', 'malformed partial envelope', typeof claimed === 'number' ? claimed : undefined);
  const { from, payload } = m.data;
  if (m.data.session !== session) throw new ProtocolError('wrong-session', `partial for session ${m.data.session}`, from);
  if (m.data.round !== TPRF_ROUND || m.data.to !== 'all') throw new ProtocolError('wrong-round', 'not a PRF partial', from);
  const K = verifyingShares[String(from)];
  if (!K) throw new ProtocolError('unknown-sender', 'sender holds no share of this key', from);
  const body = tprfPartialSchema.safeParse(payload);
  if (!body.success) throw new ProtocolError('malformed', 'partial payload', from);
  const Z = fromHex(body.data.evaluated);
  if (!sodium.crypto_core_ristretto255_is_valid_point(Z)) throw new ProtocolError('bad-partial', 'the evaluated element is not a valid ristretto255 element', from);
  let ok: boolean;
  try {
    ok = verifyDleq(fromHex(K), P, Z, fromHex(body.data.proof));
  } catch {
    ok = false; // an identity on the way: no proof of a valid evaluation
  }
  if (!ok) throw new ProtocolError('bad-partial', 'proof of correct evaluation does not verify', from);
  return [from, Z];
}
