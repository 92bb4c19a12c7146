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
// sign.ts holds the rounds; sign-state.ts what they send and keep and the hashes they share;
// combine.ts the final sum, for the last round and the coordinator.

import { z } from 'zod';
import { ProtocolError, checkParticipants, collectRound, type Message, type Step } from '../common.js';
import { fromHex, toHex, type PartyId, type Rng } from '../../../contract/bytes.js';
import { decodeScalar, decodeWire, encodePoint, encodeScalar, encodeWire, hashToScalar, mulBaseWire, randomScalar, secretMulEquals } from './curves.js';
import { combine } from './combine.js';
import { lagrange, parseEcdsaKeyShare, type EcdsaKeyShare, type EcdsaPair } from './keyshare.js';
import { rvoleAlice, rvoleBobFinish, rvoleBobStart } from './rvole.js';
import { digestToScalar } from './signature.js';
import {
  agreementOf,
  bobKeep,
  checkDigest,
  commit,
  consume,
  pairContext,
  round1Payload,
  round2Payload,
  round3Payload,
  sessionContext,
  sessionSchema,
  viewOf,
  type Ctx,
  type EcdsaSignState,
  type Live,
} from './sign-state.js';

/** ζ_i: Σ over peers of ±PRF(seed_ij, session); the ζ of all signers sum to zero. */
function zeroShare(x: Ctx, self: PartyId, seeds: ReadonlyMap<PartyId, string>): bigint {
  let z = 0n;
  for (const [j, seed] of seeds) {
    const v = hashToScalar(x.c, 'mpchsm/ecdsa/sign/zero', fromHex(seed), x.session);
    z = self < j ? x.c.Fn.add(z, v) : x.c.Fn.sub(z, v);
  }
  return z;
}

// ---------------------------------------------------------------------------------------------
// Signing.

export interface EcdsaSignRequest {
  session: string;
  /** The signers of this session: at least t participants, self included. */
  signers: readonly PartyId[];
  /** The message digest to sign (e.g. SHA-256 of the message), as the signer's policy approved it. */
  digest: Uint8Array;
  /** Normalise s to the lower half (BIP-62 / Ethereum style); off by default. */
  lowS?: boolean;
}

/** Signers: at least t distinct participants, self included, none whose pair was discarded. */
function checkSigners(key: EcdsaKeyShare, requested: readonly PartyId[]): { signers: PartyId[]; pairs: Map<PartyId, EcdsaPair> } {
  checkParticipants(requested, 1, key.self);
  if (requested.length < key.threshold) throw new ProtocolError('bad-parameters', `${requested.length} signers, but the threshold is ${key.threshold}`);
  const signers = [...requested].sort((a, b) => a - b);
  const pairs = new Map<PartyId, EcdsaPair>();
  for (const id of signers) {
    if (!key.participants.includes(id)) throw new ProtocolError('bad-parameters', `party ${id} is not a participant of this key`);
    if (id === key.self) continue;
    const pair = key.pairs[String(id)]!;
    if (pair.discarded) throw new ProtocolError('bad-parameters', `the pairwise setup with party ${id} was discarded after an abort; it needs a new key setup`, id);
    pairs.set(id, pair);
  }
  return { signers, pairs };
}

/** Round 1: sample r_i and φ_i, commit to R_i, and start a VOLE as Bob with every other signer. */
export function ecdsaSignStart(keyShare: EcdsaKeyShare, request: EcdsaSignRequest, rng: Rng): Step<EcdsaSignState> {
  const { key, curve: c, secret } = parseEcdsaKeyShare(keyShare);
  if (!sessionSchema.safeParse(request.session).success) throw new ProtocolError('bad-parameters', 'invalid session id');
  checkDigest(request.digest);
  const { signers, pairs } = checkSigners(key, request.signers);
  const self = key.self;
  const base = { curve: key.curve, session: request.session, self, signers, keySession: key.session, publicKey: key.publicKey, digest: toHex(request.digest), lowS: request.lowS ?? false };
  const x = sessionContext(base);
  const seeds = new Map([...pairs].map(([j, p]) => [j, p.zeroSeed] as const));
  const sk = c.Fn.add(c.Fn.mul(lagrange(c, signers, self), secret), zeroShare(x, self, seeds));
  const r = randomScalar(c, rng);
  const phi = randomScalar(c, rng);
  const R = mulBaseWire(c, r);
  const salt = toHex(rng(32));
  const commitment = commit(x, self, R, salt);
  const bob: Record<string, z.infer<typeof bobKeep>> = {};
  const alice: Record<string, { delta: string; keys: string }> = {};
  const outbound: Message[] = [];
  for (const [j, p] of pairs) {
    const v = rvoleBobStart(c, pairContext(x, self, j), fromHex(p.bob.keys0), fromHex(p.bob.keys1), rng);
    bob[j] = { chi: encodeScalar(c, v.b), ...v.keep };
    alice[j] = p.alice;
    outbound.push({ session: request.session, round: 1, from: self, to: j, payload: { agreement: agreementOf(x, base.digest), commitment, ot: v.msg } });
  }
  const state: Live<'round1'> = { ...base, phase: 'round1', r: encodeScalar(c, r), phi: encodeScalar(c, phi), sk: encodeScalar(c, sk), salt, R, commitment, bob, alice };
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
  const peers = signers.filter((j) => j !== self);
  const base = { curve: state.curve, session, self, signers, keySession: state.keySession, publicKey: state.publicKey, digest: state.digest, lowS: state.lowS };
  switch (state.phase) {
    case 'round1': {
      const got = collectRound(inbound, { session, round: 1, self, senders: signers, broadcast: false, payload: round1Payload(c) });
      const agreement = agreementOf(x, state.digest);
      for (const [j, m] of got)
        if (m.agreement !== agreement) throw new ProtocolError('inconsistent-view', 'runs this session with other signers, key or digest', j);
      const s = { ...state };
      consume(state);
      const r = decodeScalar(c, s.r);
      const phi = decodeScalar(c, s.phi);
      const sk = decodeScalar(c, s.sk);
      const pk = mulBaseWire(c, sk);
      const commitments = new Map<PartyId, string>([[self, s.commitment]]);
      for (const [j, m] of got) commitments.set(j, m.commitment);
      const view = viewOf(x, s.digest, signers, commitments);
      const peerState: Live<'round2'>['peers'] = {};
      const outbound: Message[] = [];
      for (const j of peers) {
        const m = got.get(j)!;
        const a = s.alice[String(j)]!;
        const vole = rvoleAlice(c, pairContext(x, j, self), fromHex(a.delta), fromHex(a.keys), m.ot, [r, sk], j, rng);
        const [cu, cv] = vole.shares;
        const chi = decodeScalar(c, s.bob[String(j)]!.chi);
        const payload: z.infer<ReturnType<typeof round2Payload>> = {
          R: s.R,
          salt: s.salt,
          pk,
          gammaU: mulBaseWire(c, cu),
          gammaV: mulBaseWire(c, cv),
          psi: encodeScalar(c, c.Fn.sub(phi, chi)),
          mul: vole.msg,
          view,
        };
        peerState[j] = { bob: s.bob[String(j)]!, cu: encodeScalar(c, cu), cv: encodeScalar(c, cv), commitment: m.commitment };
        outbound.push({ session, round: 2, from: self, to: j, payload });
      }
      const next: Live<'round2'> = { ...base, phase: 'round2', r: s.r, phi: s.phi, sk: s.sk, R: s.R, pk, view, peers: peerState };
      return { state: next, outbound };
    }
    case 'round2': {
      const got = collectRound(inbound, { session, round: 2, self, senders: signers, broadcast: false, payload: round2Payload(c) });
      const s = { ...state };
      consume(state);
      const r = decodeScalar(c, s.r);
      const phi = decodeScalar(c, s.phi);
      const sk = decodeScalar(c, s.sk);
      let Rsum = decodeWire(c, s.R);
      let pkSum = decodeWire(c, s.pk);
      let phiSum = phi;
      let uSum = 0n;
      let vSum = 0n;
      for (const j of peers) {
        const m = got.get(j)!;
        const own = s.peers[String(j)]!;
        if (m.view !== s.view) throw new ProtocolError('inconsistent-view', 'signs another digest or saw other round-1 commitments', j);
        const Rj = decodeWire(c, m.R, j);
        if (commit(x, j, m.R, m.salt) !== own.commitment) throw new ProtocolError('bad-proof', 'R does not open the round-1 commitment', j);
        const pkj = decodeWire(c, m.pk, j);
        const gu = decodeWire(c, m.gammaU, j);
        const gv = decodeWire(c, m.gammaV, j);
        const psi = decodeScalar(c, m.psi, j);
        const [du, dv] = rvoleBobFinish(c, pairContext(x, self, j), own.bob, m.mul, j);
        // χ·R_j = d^u·G + Γ^u and χ·pk_j = d^v·G + Γ^v: j used r_j and sk_j as its inputs.
        const chi = decodeScalar(c, own.bob.chi);
        if (!secretMulEquals(c, chi, [[Rj, du, gu], [pkj, dv, gv]], rng))
          throw new ProtocolError('bad-proof', 'multiplication outputs are inconsistent with R and pk', j);
        Rsum = Rsum.add(Rj);
        pkSum = pkSum.add(pkj);
        phiSum = c.Fn.add(phiSum, psi);
        uSum = c.Fn.add(uSum, c.Fn.add(decodeScalar(c, own.cu), du));
        vSum = c.Fn.add(vSum, c.Fn.add(decodeScalar(c, own.cv), dv));
      }
      if (pkSum.is0() || encodePoint(pkSum) !== s.publicKey) throw new ProtocolError('bad-share', 'the signers’ public key shares do not sum to the public key');
      if (Rsum.is0()) throw new ProtocolError('invalid-point', 'R is the identity');
      const rx = c.Fn.create(Rsum.toAffine().x);
      if (rx === 0n) throw new ProtocolError('invalid-point', 'x(R) is zero mod n');
      const u = c.Fn.add(c.Fn.mul(r, phiSum), uSum);
      const v = c.Fn.add(c.Fn.mul(sk, phiSum), vSum);
      const w = c.Fn.add(c.Fn.mul(digestToScalar(c, fromHex(s.digest)), phi), c.Fn.mul(rx, v));
      const R = encodeWire(Rsum);
      const payload = { u: encodeScalar(c, u), w: encodeScalar(c, w), R };
      const next: Live<'round3'> = { ...base, phase: 'round3', R, u: payload.u, w: payload.w };
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
