// DKLs23 threshold ECDSA signing (Doerner, Kondi, Lee, shelat, ePrint 2023/765, Protocol 3.6):
// three rounds among any t or more holders of a key from keygen.ts.
//
// Each signer i holds an additive share sk_i = λ_i·s_i + ζ_i of the key (ζ: zero-sharing from the
// pairwise seeds), samples an instance key r_i (R_i = r_i·G) and an inversion mask φ_i, and with
// every other signer j runs two random VOLEs (rvole.ts): one with i as Bob (random input χ_ij,
// later corrected to φ_i by sending ψ_ij = φ_i − χ_ij), one with i as Alice (inputs r_i, sk_i).
//
//   round 1, to each j (p2p):  a digest of the key, session, signers and digest i signs (checked
//                              before anything else, so a coordinator that tells signers different
//                              things causes a plain abort); commitment to R_i; i's OT-extension
//                              message as Bob
//   round 2, to each j (p2p):  R_i and its opening, pk_i = sk_i·G, ψ_ij, Γ^u = c^u·G and
//                              Γ^v = c^v·G of i's Alice shares, i's Alice message; a digest of the
//                              round-1 commitments and the digest i signs (so disagreement aborts
//                              before anything depends on the message)
//   round 3, broadcast:        u_i = r_i·(φ_i + Σ_j ψ_ji) + Σ_j (c^u + d^u), likewise v_i with
//                              sk_i and c^v, d^v; w_i = H(m)·φ_i + r_x·v_i; and R
//   output:                    s = Σw / Σu, r = x(R) — every signer (and the coordinator, with
//                              ecdsaCombine) computes and verifies the signature
//
// Checks, each naming the party it catches: the OT-extension (KOS) check, the multiplication
// consistency check, the commitment opening, χ_ij·R_j = d^u·G + Γ^u and χ_ij·pk_j = d^v·G + Γ^v
// (Alice used r_j and sk_j consistently), and Σ pk_j = PK (unattributable with zero-sharing).
//
// Abort is final: each step consumes its input state before any secret-dependent computation,
// so a state can drive at most one step, whether that step succeeds or throws. After an abort
// naming a party, the signer must persist ecdsaAfterAbort(keyShare, error) — it discards the
// pairwise setup with that party (the selective-abort attack on OT extension).
//
// sign.ts holds the rounds; sign-rounds.ts the two message-independent ones (shared with
// presign.ts); sign-state.ts what they send and keep and the hashes they share; combine.ts the
// final sum, for the last round and the coordinator.

import { ProtocolError, collectRound, type Message, type Step } from '../common.js';
import { fromHex, toHex, type PartyId, type Rng } from '../../../contract/bytes.js';
import { encodeScalar, encodeWire } from './curves.js';
import { combine } from './combine.js';
import { parseEcdsaKeyShare, type EcdsaKeyShare } from './keyshare.js';
import { digestToScalar } from './signature.js';
import { checkSigners, instanceFinish, instanceRespond, instanceStart } from './sign-rounds.js';
import { agreementOf, checkDigest, consume, round1Payload, round2Payload, round3Payload, sessionContext, sessionSchema, viewOf, type EcdsaSignState, type Live } from './sign-state.js';

export interface EcdsaSignRequest {
  session: string;
  /** The signers of this session: at least t participants, self included. */
  signers: readonly PartyId[];
  /** The message digest to sign (e.g. SHA-256 of the message), as the signer's policy approved it. */
  digest: Uint8Array;
  /** Normalise s to the lower half (BIP-62 / Ethereum style); off by default. */
  lowS?: boolean;
}

/** Round 1: sample r_i and φ_i, commit to R_i, and start a VOLE as Bob with every other signer. */
export function ecdsaSignStart(keyShare: EcdsaKeyShare, request: EcdsaSignRequest, rng: Rng): Step<EcdsaSignState> {
  const { key, secret } = parseEcdsaKeyShare(keyShare);
  if (!sessionSchema.safeParse(request.session).success) throw new ProtocolError('bad-parameters', 'invalid session id');
  checkDigest(request.digest);
  const { signers, pairs } = checkSigners(key, request.signers);
  const self = key.self;
  const base = { curve: key.curve, session: request.session, self, signers, keySession: key.session, publicKey: key.publicKey, digest: toHex(request.digest), lowS: request.lowS ?? false };
  const x = sessionContext(base);
  const { keep, items } = instanceStart(x, key, secret, signers, pairs, rng);
  const agreement = agreementOf(x, base.digest);
  const outbound: Message[] = [...items].map(([j, item]) => ({ session: request.session, round: 1, from: self, to: j, payload: { agreement, ...item } }));
  const state: Live<'round1'> = { ...base, phase: 'round1', ...keep };
  return { state, outbound };
}

/**
 * Advances a signer by one round given all of the round's inbound messages (own excluded, any
 * order). Rounds 1 and 2 are point-to-point (encrypt them end to end); round 3 is a broadcast.
 * The state passed in is consumed (a second call with it throws 'consumed'); persist the
 * returned state before sending its outbound messages. After round 3 the output is the
 * signature r ‖ s (fixed-length big-endian), already verified against the public key.
 */
export function ecdsaSignStep(state: EcdsaSignState, inbound: readonly Message[], rng: Rng): Step<EcdsaSignState, Uint8Array> {
  if (state.phase === 'consumed') throw new ProtocolError('consumed', 'this signing state was already used');
  const x = sessionContext(state);
  const { c } = x;
  const { session, self, signers } = state;
  const base = { curve: state.curve, session, self, signers, keySession: state.keySession, publicKey: state.publicKey, digest: state.digest, lowS: state.lowS };
  switch (state.phase) {
    case 'round1': {
      const got = collectRound(inbound, { session, round: 1, self, senders: signers, broadcast: false, payload: round1Payload(c) });
      const agreement = agreementOf(x, state.digest);
      for (const [j, m] of got)
        if (m.agreement !== agreement) throw new ProtocolError('inconsistent-view', 'runs this session with other signers, key or digest', j);
      const s = { ...state };
      consume(state);
      const commitments = new Map<PartyId, string>([[self, s.commitment]]);
      for (const [j, m] of got) commitments.set(j, m.commitment);
      const view = viewOf(x, base.digest, signers, commitments);
      const { keep, items } = instanceRespond(x, self, s, got, rng);
      const outbound: Message[] = [...items].map(([j, item]) => ({ session, round: 2, from: self, to: j, payload: { ...item, view } }));
      const next: Live<'round2'> = { ...base, phase: 'round2', ...keep, view };
      return { state: next, outbound };
    }
    case 'round2': {
      const got = collectRound(inbound, { session, round: 2, self, senders: signers, broadcast: false, payload: round2Payload(c) });
      const s = { ...state };
      consume(state);
      for (const [j, m] of got) if (m.view !== s.view) throw new ProtocolError('inconsistent-view', 'signs another digest or saw other round-1 commitments', j);
      const { R, u, v, phi } = instanceFinish(x, self, s.publicKey, s, got, rng);
      const rx = c.Fn.create(R.toAffine().x);
      if (rx === 0n) throw new ProtocolError('invalid-point', 'x(R) is zero mod n');
      const w = c.Fn.add(c.Fn.mul(digestToScalar(c, fromHex(s.digest)), phi), c.Fn.mul(rx, v));
      const payload = { u: encodeScalar(c, u), w: encodeScalar(c, w), R: encodeWire(R) };
      const next: Live<'round3'> = { ...base, phase: 'round3', ...payload };
      return { state: next, outbound: [{ session, round: 3, from: self, to: 'all', payload }] };
    }
    case 'round3': {
      const got = collectRound(inbound, { session, round: 3, self, senders: signers, broadcast: true, payload: round3Payload(c) });
      const s = { ...state };
      consume(state);
      got.set(self, { u: s.u, w: s.w, R: s.R });
      const sig = combine(c, s, got, s.R);
      return { state: { phase: 'consumed', session, self }, outbound: [], output: sig };
    }
  }
}
