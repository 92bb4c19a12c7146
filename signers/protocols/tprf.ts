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

import { ristretto255_hasher, ristretto255_oprf } from '@noble/curves/ed25519.js';
import { z } from 'zod';
import { fromHex, hexSchema, toHex, type PartyId, type Rng } from '../../contract/bytes.js';
import { messageSchema, ProtocolError, type Message } from './common.js';
import { checkPublicPackage, openKeyShare, type PublicPackage } from './dkg.js';
import { lagrangeAt } from './shamir.js';
import { getGroup, type GroupPoint } from './suites.js';

const VOPRF = ristretto255_oprf.voprf;
/** RFC 9497 §3.1's HashToGroup domain for the VOPRF mode of this suite. */
const HASH_TO_GROUP_DST = new TextEncoder().encode(`HashToGroup-OPRFV1-\x01-${ristretto255_oprf.name}`);
/** The scalar 1 (little-endian): the coordinator's "blind", since nothing is blinded. */
const ONE = Uint8Array.of(1, ...new Uint8Array(31));
const group = getGroup('ristretto255');

export const TPRF_ROUND = 1;
export const tprfPartialSchema = z.strictObject({ evaluated: hexSchema.length(64), proof: hexSchema.length(128) });
export type TprfPartial = z.infer<typeof tprfPartialSchema>;

/** P = HashToGroup(x): the element every signer multiplies by its share. */
const inputElement = (input: Uint8Array): Uint8Array => ristretto255_hasher.hashToCurve(input, { DST: HASH_TO_GROUP_DST }).toBytes();

/**
 * A signer's partial evaluation of F on `input`, with its proof. `keyShare` must be a share of
 * a ristretto255 key (openKeyShare checks it against its public package).
 */
export function tprfPartial(keyShare: unknown, session: string, input: Uint8Array, rng: Rng): Message<TprfPartial> {
  const { key, secret } = openKeyShare(keyShare);
  if (key.group !== 'ristretto255') throw new ProtocolError('bad-parameters', `a ${key.group} key is not a PRF key`);
  const K = fromHex(key.verifyingShares[String(key.self)]!);
  const { evaluated, proof } = VOPRF.blindEvaluate(group.Fn.toBytes(secret), K, inputElement(input), (n = 32) => new Uint8Array(rng(n)));
  return { session, round: TPRF_ROUND, from: key.self, to: 'all', payload: { evaluated: toHex(evaluated), proof: toHex(proof) } };
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
  const { pub, shares } = checkPublicPackage(publicPackage);
  if (pub.group !== 'ristretto255') throw new ProtocolError('bad-parameters', `a ${pub.group} key is not a PRF key`);
  const P = inputElement(input);
  const faults: ProtocolError[] = [];
  const valid = new Map<PartyId, GroupPoint>();
  for (const raw of messages) {
    try {
      const [from, Z] = checkPartial(shares, session, input, P, raw);
      if (valid.has(from)) throw new ProtocolError('duplicate', 'second partial', from);
      valid.set(from, Z);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      faults.push(e);
    }
  }
  if (valid.size < pub.threshold) throw faults[0] ?? new ProtocolError('missing', `${valid.size} valid partials, ${pub.threshold} needed`);
  const signers = [...valid.keys()].sort((a, b) => a - b).slice(0, pub.threshold);
  let Z = group.Point.ZERO;
  for (const id of signers) Z = Z.add(valid.get(id)!.multiply(lagrangeAt(group.Fn, signers, id)));
  return { output: ristretto255_oprf.oprf.finalize(input, ONE, Z.toBytes()), signers, faults };
}

/** One partial: its envelope, its element, and its proof against its sender's verifying share. */
function checkPartial(shares: ReadonlyMap<PartyId, GroupPoint>, session: string, input: Uint8Array, P: Uint8Array, raw: unknown): [PartyId, GroupPoint] {
  const m = messageSchema.safeParse(raw);
  const claimed = (raw as { from?: unknown } | null)?.from;
  if (!m.success) throw new ProtocolError('malformed', 'malformed partial envelope', typeof claimed === 'number' ? claimed : undefined);
  const { from, payload } = m.data;
  if (m.data.session !== session) throw new ProtocolError('wrong-session', `partial for session ${m.data.session}`, from);
  if (m.data.round !== TPRF_ROUND || m.data.to !== 'all') throw new ProtocolError('wrong-round', 'not a PRF partial', from);
  const K = shares.get(from);
  if (!K) throw new ProtocolError('unknown-sender', 'sender holds no share of this key', from);
  const body = tprfPartialSchema.safeParse(payload);
  if (!body.success) throw new ProtocolError('malformed', 'partial payload', from);
  const evaluated = fromHex(body.data.evaluated);
  try {
    // The VOPRF client's check: the proof verifies (then unblinds by 1 and hashes; that output is not used).
    VOPRF.finalize(input, ONE, evaluated, P, K.toBytes(), fromHex(body.data.proof));
  } catch {
    throw new ProtocolError('bad-partial', 'proof of correct evaluation does not verify', from);
  }
  return [from, group.Point.fromBytes(evaluated)];
}
