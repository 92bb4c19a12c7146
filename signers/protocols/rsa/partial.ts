// Signer side: one partial signature/decryption with its proof of correctness (Shoup §2).
//
//   x_i = x^{2Δ·s_i} mod n, proof that log_v(v_i) = log_{x^{4Δ}}(x_i²).
//
// Cost per partial: one share-length exponentiation (x^{2Δ s_i}) on the native constant-time
// path; with the proof, asked for only when the coordinator's combination fails, two more
// (v^r, g^r) plus one short one (g = x^{4Δ}) and a squaring. Shares
// are modulus-length for a dealt key and grow with each resharing (key.ts, shareBits).

import { z } from 'zod';
import { ProtocolError, type Message } from '../common.js';
import { hexSchema, toHex, type Rng } from '../../../contract/bytes.js';
import { bigIntToMinBytes } from './arith.js';
import { bigIntToBytes } from '../integers.js';
import { delta, modulusBytes, RSA_MAX_SHARE_BITS, type RsaKeyShare, type RsaPublicParams } from './key.js';
import { modPow } from './modpow.js';
import { maxResponseBits, proveEqualLogs } from './proof.js';
import { parseRequest, requestInput } from './request.js';

/** Round number carried by partial messages. */
export const RSA_PARTIAL_ROUND = 1;

/** The proof (c, z) comes only when asked: the coordinator needs it only if the combination fails. */
export const rsaPartialPayloadSchema = z.object({
  xi: hexSchema.min(2).max(2 * 512),
  c: hexSchema.length(64).optional(),
  z: hexSchema.min(2).max(2 * Math.ceil(maxResponseBits(RSA_MAX_SHARE_BITS) / 8)).optional(),
});
export type RsaPartialPayload = z.infer<typeof rsaPartialPayloadSchema>;

/**
 * The partial for input x (already validated with requestInput). Exported for callers that
 * checked the request themselves; rsaPartial is the usual entry.
 */
export function partialForInput(
  params: RsaPublicParams,
  share: RsaKeyShare,
  session: string,
  x: bigint,
  rng: Rng,
  prove: boolean,
): Message<RsaPartialPayload> {
  const vi = params.verificationKeys.get(share.id);
  if (vi === undefined) throw new ProtocolError('bad-parameters', `party ${share.id} is not a participant`);
  const { n, v } = params;
  const d = delta(params);
  const xi = modPow(x, 2n * d * share.s, n);
  const payload: RsaPartialPayload = { xi: toHex(bigIntToBytes(xi, modulusBytes(params))) };
  if (prove) {
    const g = modPow(x, 4n * d, n);
    const proof = proveEqualLogs({ session, id: share.id, x }, { n, v, vi, g, u: (xi * xi) % n }, share.s, params.shareBits, rng);
    Object.assign(payload, { c: toHex(bigIntToBytes(proof.c, 32)), z: toHex(bigIntToMinBytes(proof.z)) });
  }
  return { session, round: RSA_PARTIAL_ROUND, from: share.id, to: 'all', payload };
}

/**
 * Signer entry: validates the coordinator's request, recomputes/checks the input it implies
 * (see request.ts) and returns this signer's partial message, addressed to all, with its proof
 * when `prove`.
 */
export function rsaPartial(params: RsaPublicParams, share: RsaKeyShare, request: unknown, rng: Rng, prove: boolean): Message<RsaPartialPayload> {
  const req = parseRequest(request);
  return partialForInput(params, share, req.session, requestInput(params, req), rng, prove);
}
