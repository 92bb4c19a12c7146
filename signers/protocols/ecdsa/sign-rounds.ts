// The two message-independent rounds of DKLs23 signing for one multiplication instance, shared by
// three-round signing (sign.ts: one instance, the digest bound by its agreement and view) and
// batch presigning (presign.ts: many instances, bound to a presigning context): sampling r_i and
// φ_i and starting a VOLE as Bob with each peer; answering as Alice with r_i and sk_i; and
// finishing with every check that names a party — the OT-extension (KOS) check, the
// multiplication consistency check, the commitment opening, and Σ pk_j = PK — which yields R and
// this signer's u_i, v_i, φ_i (Σu = φ·k, Σv = φ·sk over the signers). What binds an instance to
// its digest or batch (agreement, view) is the caller's, checked before these run.

import { z } from 'zod';
import { ProtocolError, checkParticipants } from '../common.js';
import { toHex, type PartyId, type Rng } from '../../../contract/bytes.js';
import { decodeScalar, decodeWire, encodePoint, encodeScalar, hashToScalar, mulBaseWire, randomScalar, scalarBytes, secretMulEquals, type EcPoint } from './curves.js';
import { bytesToBigInt } from '../integers.js';
import { lagrange, type EcdsaKeyShare, type EcdsaPair } from './keyshare.js';
import { rvoleAlice, rvoleBobFinish, rvoleBobStart } from './rvole.js';
import { bobKeep, commit, pairContext, type Ctx, type Keep1, type Keep2, type round1Item, type round2Item } from './sign-state.js';

type Item1 = z.infer<ReturnType<typeof round1Item>>;
type Item2 = z.infer<ReturnType<typeof round2Item>>;

/** ζ_i: Σ over peers of ±PRF(seed_ij, session); the ζ of all signers sum to zero. */
function zeroShare(x: Ctx, self: PartyId, pairs: ReadonlyMap<PartyId, EcdsaPair>): bigint {
  let z = 0n;
  for (const [j, p] of pairs) {
    const v = hashToScalar(x.c, 'mpchsm/ecdsa/sign/zero', p.zeroSeed, x.session);
    z = self < j ? x.c.Fn.add(z, v) : x.c.Fn.sub(z, v);
  }
  return z;
}

/** Signers: at least t distinct participants, self included, none whose pair was discarded. */
export function checkSigners(key: EcdsaKeyShare, requested: readonly PartyId[]): { signers: PartyId[]; pairs: Map<PartyId, EcdsaPair> } {
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

/** Round 1 of one instance: sample r_i and φ_i, commit to R_i, start a VOLE as Bob with every peer. */
export function instanceStart(x: Ctx, key: EcdsaKeyShare, secret: bigint, signers: readonly PartyId[], pairs: ReadonlyMap<PartyId, EcdsaPair>, rng: Rng): { keep: Keep1; items: Map<PartyId, Item1> } {
  const { c } = x;
  const self = key.self;
  const sk = c.Fn.add(c.Fn.mul(lagrange(c, signers, self), secret), zeroShare(x, self, pairs));
  const r = randomScalar(c, rng);
  const phi = randomScalar(c, rng);
  const R = mulBaseWire(c, r);
  const salt = toHex(rng(32));
  const commitment = commit(x, self, R, salt);
  const bob: Keep1['bob'] = {};
  const alice: Keep1['alice'] = {};
  const items = new Map<PartyId, Item1>();
  for (const [j, p] of pairs) {
    const v = rvoleBobStart(c, pairContext(x, self, j), p.bob.keys0, p.bob.keys1, rng);
    bob[j] = { chi: scalarBytes(c, v.b), ...v.keep };
    // Copies: the key share's own bytes are wiped when the operation that opened it ends.
    alice[j] = { delta: Uint8Array.from(p.alice.delta), keys: Uint8Array.from(p.alice.keys) };
    items.set(j, { commitment, ot: v.msg });
  }
  return { keep: { r: scalarBytes(c, r), phi: scalarBytes(c, phi), sk: scalarBytes(c, sk), salt, R, commitment, bob, alice }, items };
}

/** Round 2 of one instance: open R_i, and answer each peer's VOLE as Alice with inputs r_i and sk_i. */
export function instanceRespond(x: Ctx, self: PartyId, keep: Keep1, got: ReadonlyMap<PartyId, Item1>, rng: Rng): { keep: Keep2; items: Map<PartyId, Item2> } {
  const { c } = x;
  const [r, phi, sk] = [keep.r, keep.phi, keep.sk].map(bytesToBigInt) as [bigint, bigint, bigint];
  const pk = mulBaseWire(c, sk);
  const peers: Keep2['peers'] = {};
  const items = new Map<PartyId, Item2>();
  for (const [j, m] of got) {
    const a = keep.alice[String(j)]!;
    const vole = rvoleAlice(c, pairContext(x, j, self), a.delta, a.keys, m.ot, [r, sk], j, rng);
    const [cu, cv] = vole.shares;
    const own: z.infer<typeof bobKeep> = keep.bob[String(j)]!;
    const chi = bytesToBigInt(own.chi);
    items.set(j, { R: keep.R, salt: keep.salt, pk, gammaU: mulBaseWire(c, cu), gammaV: mulBaseWire(c, cv), psi: encodeScalar(c, c.Fn.sub(phi, chi)), mul: vole.msg });
    peers[j] = { bob: own, cu: scalarBytes(c, cu), cv: scalarBytes(c, cv), commitment: m.commitment };
  }
  return { keep: { r: keep.r, phi: keep.phi, sk: keep.sk, R: keep.R, pk, peers }, items };
}

/** An instance's result: R = Σ R_j, and this signer's u_i, v_i and own φ_i. */
export interface InstanceResult {
  R: EcPoint;
  u: bigint;
  v: bigint;
  phi: bigint;
}

/** Finishes one instance with the peers' round-2 messages, running every check that names a party. */
export function instanceFinish(x: Ctx, self: PartyId, publicKey: string, keep: Keep2, got: ReadonlyMap<PartyId, Item2>, rng: Rng): InstanceResult {
  const { c } = x;
  const [r, phi, sk] = [keep.r, keep.phi, keep.sk].map(bytesToBigInt) as [bigint, bigint, bigint];
  let Rsum = decodeWire(c, keep.R);
  let pkSum = decodeWire(c, keep.pk);
  let phiSum = phi;
  let uSum = 0n;
  let vSum = 0n;
  for (const [j, m] of got) {
    const own = keep.peers[String(j)]!;
    const Rj = decodeWire(c, m.R, j);
    if (commit(x, j, m.R, m.salt) !== own.commitment) throw new ProtocolError('bad-proof', 'R does not open the round-1 commitment', j);
    const pkj = decodeWire(c, m.pk, j);
    const gu = decodeWire(c, m.gammaU, j);
    const gv = decodeWire(c, m.gammaV, j);
    const psi = decodeScalar(c, m.psi, j);
    const [du, dv] = rvoleBobFinish(c, pairContext(x, self, j), own.bob, m.mul, j);
    // χ·R_j = d^u·G + Γ^u and χ·pk_j = d^v·G + Γ^v: j used r_j and sk_j as its inputs.
    const chi = bytesToBigInt(own.bob.chi);
    if (!secretMulEquals(c, chi, [[Rj, du, gu], [pkj, dv, gv]], rng)) throw new ProtocolError('bad-proof', 'multiplication outputs are inconsistent with R and pk', j);
    Rsum = Rsum.add(Rj);
    pkSum = pkSum.add(pkj);
    phiSum = c.Fn.add(phiSum, psi);
    uSum = c.Fn.add(uSum, c.Fn.add(bytesToBigInt(own.cu), du));
    vSum = c.Fn.add(vSum, c.Fn.add(bytesToBigInt(own.cv), dv));
  }
  if (pkSum.is0() || encodePoint(pkSum) !== publicKey) throw new ProtocolError('bad-share', 'the signers’ public key shares do not sum to the public key');
  if (Rsum.is0()) throw new ProtocolError('invalid-point', 'R is the identity');
  return { R: Rsum, u: c.Fn.add(c.Fn.mul(r, phiSum), uSum), v: c.Fn.add(c.Fn.mul(sk, phiSum), vSum), phi };
}
