// The coordinator's side of DKLs23 signing (sign.ts): ecdsaCombine turns the signers' round-3
// broadcasts into r ‖ s, and combine() is the sum both it and each signer's last step compute,
// s = Σw / Σu with every partial carrying the same R, verified against the public key before
// anything is returned (signature.ts).

import { ProtocolError, checkParticipants, collectRound, type Message } from '../common.js';
import { fromHex, toHex, type PartyId } from '../../../contract/bytes.js';
import { decodePoint, decodeScalar, decodeWire, encodePoint, getCurve, type EcdsaCurve, type EcdsaCurveName } from './curves.js';
import { finishSignature } from './signature.js';
import { checkDigest, round3Payload } from './sign-state.js';

/** collectRound's `self` for the coordinator, which is not a party. */
const COORDINATOR = 0;

/** s = Σw / Σu over every signer's partial, each of which must carry the reference R. */
export function combine(
  c: EcdsaCurve,
  req: { publicKey: string; digest: string; lowS: boolean; signers: readonly PartyId[] },
  partials: ReadonlyMap<PartyId, { u: string; w: string; R: string }>,
  R: string,
): Uint8Array {
  let U = 0n;
  let W = 0n;
  for (const id of req.signers) {
    const p = partials.get(id)!;
    if (p.R !== R) throw new ProtocolError('inconsistent-view', 'computed a different R', id);
    U = c.Fn.add(U, decodeScalar(c, p.u, id));
    W = c.Fn.add(W, decodeScalar(c, p.w, id));
  }
  return finishSignature(c, decodeWire(c, R), U, W, fromHex(req.digest), fromHex(req.publicKey), req.lowS);
}

export interface EcdsaCombineRequest {
  curve: EcdsaCurveName;
  publicKey: Uint8Array;
  session: string;
  signers: readonly PartyId[];
  digest: Uint8Array;
  lowS?: boolean;
}

/**
 * Coordinator: combines the signers' round-3 broadcasts into r ‖ s and verifies it against the
 * public key before release. The partials cannot be checked one by one (u_i, w_i are masked), so
 * an invalid result aborts without naming a signer; an R differing from the first signer's names
 * its sender (which of the two diverged is not knowable here). The signers' own checks still apply.
 */
export function ecdsaCombine(request: EcdsaCombineRequest, partials: readonly Message[]): Uint8Array {
  const c = getCurve(request.curve);
  checkParticipants(request.signers, 1);
  checkDigest(request.digest);
  const publicKey = encodePoint(decodePoint(c, toHex(request.publicKey)));
  const signers = [...request.signers].sort((a, b) => a - b);
  const got = collectRound(partials, { session: request.session, round: 3, self: COORDINATOR, senders: signers, broadcast: true, payload: round3Payload(c) });
  return combine(c, { publicKey, digest: toHex(request.digest), lowS: request.lowS ?? false, signers }, got, got.get(signers[0]!)!.R);
}
