// Signer side: one partial signature/decryption with its proof of correctness (Shoup §2).
//
//   x_i = x^{2Δ·s_i} mod n, proof that log_v(v_i) = log_{x^{4Δ}}(x_i²).
//
// Cost per partial: three share-length exponentiations (x^{2Δ s_i}, and v^r, g^r in the proof),
// all on the native constant-time path, plus one short one (g = x^{4Δ}) and a squaring. Shares
// are modulus-length for a dealt key and grow with each resharing (key.ts, shareBits).

import { z } from 'zod';
import { ProtocolError, type Message } from '../common.js';
import { hexSchema, toHex, type Rng } from '../../../contract/bytes.js';
import { bigIntToBytes, bigIntToMinBytes } from './arith.js';
import { delta, modulusBytes, RSA_MAX_SHARE_BITS, type RsaKeyShare, type RsaPublicParams } from './key.js';
import { modPow } from './modpow.js';
import { maxResponseBits, proveEqualLogs } from './proof.js';
import { parseRequest, requestInput } from './request.js';

/** Round number carried by partial messages. */
export const RSA_PARTIAL_ROUND = 1;

export const rsaPartialPayloadSchema = z.object({
  xi: hexSchema.min(2).max(2 * 512),
  c: hexSchema.length(64),
  z: hexSchema.min(2).max(2 * Math.ceil(maxResponseBits(RSA_MAX_SHARE_BITS) / 8)),
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
): Message<RsaPartialPayload> {
  const vi = params.verificationKeys.get(share.id);
  if (vi === undefined) throw new ProtocolError('bad-parameters', `party ${share.id} is not a participant`);
  const { n, v } = params;
  const d = delta(params);
  const xi = modPow(x, 2n * d * share.s, n);
  const g = modPow(x, 4n * d, n);
  const proof = proveEqualLogs({ session, id: share.id, x }, { n, v, vi, g, u: (xi * xi) % n }, share.s, params.shareBits, rng);
  return {
    session,
    round: RSA_PARTIAL_ROUND,
    from: share.id,
    to: 'all',
    payload: {
      xi: toHex(bigIntToBytes(xi, modulusBytes(params))),
      c: toHex(bigIntToBytes(proof.c, 32)),
      z: toHex(bigIntToMinBytes(proof.z)),
    },
  };
}

/**
 * Signer entry: validates the coordinator's request, recomputes/checks the input it implies
 * (see request.ts) and returns this signer's partial message, addressed to all.
 */
export function rsaPartial(params: RsaPublicParams, share: RsaKeyShare, request: unknown, rng: Rng): Message<RsaPartialPayload> {
  const req = parseRequest(request);
  return partialForInput(params, share, req.session, requestInput(params, req), rng);
}
