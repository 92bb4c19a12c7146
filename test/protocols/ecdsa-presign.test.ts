// DKLs23 presigning (signers/protocols/ecdsa/presign.ts): a batch made in two rounds, each
// presignature signing one digest in one round, rerandomised with the digest so that knowing R
// ahead helps no one (the R-transplant attack fails), and the aborts a lying coordinator causes.
import { decodeSecretful, encodeSecretful } from '../../signers/protocols/common.js';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { inboxOf, runLocally, type Message, type Step } from '../../signers/protocols/common.js';
import { fromHex, toHex, type PartyId } from '../../contract/bytes.js';
import {
  ecdsaCombine,
  ecdsaKeygenStart,
  ecdsaKeygenStep,
  ecdsaPresignStart,
  ecdsaPresignStep,
  ecdsaPresignedShare,
  type EcdsaCurveName,
  type EcdsaKeyShare,
  type EcdsaKeygenState,
  type EcdsaPresignature,
  type EcdsaPresignState,
} from '../../signers/protocols/ecdsa/index.js';
import { decodeScalar, decodeWire, encodeScalar, getCurve } from '../../signers/protocols/ecdsa/curves.js';
import { digestToScalar } from '../../signers/protocols/ecdsa/signature.js';
import { seededRng } from '../helpers/rng.js';
import { expectProtocolError } from '../helpers/protocol.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

function keygen(curve: EcdsaCurveName, n: number, t: number): EcdsaKeyShare[] {
  const ids = range(n);
  const rng = new Map(ids.map((id) => [id, seededRng(`pkg/${curve}/${id}`)]));
  const first: Step<EcdsaKeygenState, EcdsaKeyShare>[] = ids.map((id) => ecdsaKeygenStart({ curve, session: `keygen-${curve}`, self: id, participants: ids, threshold: t }, rng.get(id)!));
  return runLocally(ids, first, (id, s, inbox) => ecdsaKeygenStep(s, inbox, rng.get(id)!));
}

/** Runs a presigning session among `signers`; answers each signer's presignatures. */
function presign(shares: readonly EcdsaKeyShare[], signers: PartyId[], count: number, session = 'presign-1'): Map<PartyId, EcdsaPresignature[]> {
  const byId = new Map(shares.map((s) => [s.self, s]));
  const rng = new Map(signers.map((id) => [id, seededRng(`${session}/${id}`)]));
  const first: Step<EcdsaPresignState, EcdsaPresignature[]>[] = signers.map((id) => ecdsaPresignStart(byId.get(id)!, { session, signers, count }, rng.get(id)!));
  // Through JSON, as the signer's table and the relay carry them.
  const out = runLocally(signers, first, (id, s, inbox) => ecdsaPresignStep(decodeSecretful(encodeSecretful(s)) as typeof s, inbox, rng.get(id)!));
  return new Map(signers.map((id, k) => [id, out[k]!]));
}

const digestOf = (m: string) => new Uint8Array(createHash('sha256').update(m).digest());
const verifies = (curve: EcdsaCurveName, publicKey: string, digest: Uint8Array, raw: Uint8Array) => getCurve(curve).ecdsa.verify(raw, digest, fromHex(publicKey), { prehash: false, lowS: false });

describe('DKLs23 presignatures', () => {
  for (const curve of ['p256', 'secp256k1', 'p384'] as EcdsaCurveName[]) {
    it(`2-of-3 on ${curve}: a batch, each presignature signing one digest in one round`, () => {
      const shares = keygen(curve, 3, 2);
      const pk = shares[0]!.publicKey;
      const pre = presign(shares, [3, 1], 3);
      expect(pre.get(1)!.map((p) => p.id)).toEqual(pre.get(3)!.map((p) => p.id));
      expect(new Set(pre.get(1)!.map((p) => p.R)).size).toBe(3);
      for (let k = 0; k < 3; k++) {
        const digest = digestOf(`message ${k}`);
        const partials = [1, 3].map((id) => ecdsaPresignedShare(pre.get(id)![k]!, { session: `sign-${k}-x`, digest }));
        // R' = R + δ·G, never the R the gateway saw at presigning.
        expect((partials[0]!.payload as { R: string }).R).not.toBe(pre.get(1)![k]!.R);
        const sig = ecdsaCombine({ curve, publicKey: fromHex(pk), session: `sign-${k}-x`, signers: [1, 3], digest }, partials);
        expect(verifies(curve, pk, digest, sig)).toBe(true);
        expect(verifies(curve, pk, digestOf('another'), sig)).toBe(false);
      }
    });
  }

  it('different digests at the two signers: no signature comes out', () => {
    const shares = keygen('p256', 3, 2);
    const p = presign(shares, [1, 2], 1);
    const a = ecdsaPresignedShare(p.get(1)![0]!, { session: 'sign-split', digest: digestOf('a') });
    const b = ecdsaPresignedShare(p.get(2)![0]!, { session: 'sign-split', digest: digestOf('b') });
    for (const d of ['a', 'b']) expectProtocolError(() => ecdsaCombine({ curve: 'p256', publicKey: fromHex(shares[0]!.publicKey), session: 'sign-split', signers: [1, 2], digest: digestOf(d) }, [a, b]), 'inconsistent-view', 2);
    // Even given each share's R' as if they agreed, Σw/Σu' verifies for neither digest.
    const c = getCurve('p256');
    const [pa, pb] = [a.payload, b.payload] as { u: string; w: string; R: string }[];
    const s = c.Fn.div(c.Fn.add(decodeScalar(c, pa!.w), decodeScalar(c, pb!.w)), c.Fn.add(decodeScalar(c, pa!.u), decodeScalar(c, pb!.u)));
    for (const R of [pa!.R, pb!.R]) {
      const raw = fromHex(encodeScalar(c, c.Fn.create(decodeWire(c, R).toAffine().x)) + encodeScalar(c, s));
      for (const d of ['a', 'b']) expect(verifies('p256', shares[0]!.publicKey, digestOf(d), raw)).toBe(false);
    }
  });

  it('the R-transplant attack: R known ahead and a chosen digest do not give a signature on another digest', () => {
    const curve = 'p256';
    const c = getCurve(curve);
    const shares = keygen(curve, 3, 2);
    const pk = shares[0]!.publicKey;
    const pre = presign(shares, [1, 2], 1);
    const mine = [1, 2].map((id) => pre.get(id)![0]!);
    // The gateway knows R; it wants a signature on e*, which the policy never approved.
    const R = decodeWire(c, mine[0]!.R);
    const target = digestOf('transfer everything to the attacker');
    const eStar = digestToScalar(c, target);
    const r = c.Fn.create(R.toAffine().x);
    const rStar = c.Fn.create(R.double().toAffine().x);
    const e1 = c.Fn.div(c.Fn.mul(eStar, r), rStar);
    const asked = fromHex(encodeScalar(c, e1)); // the digest it gets approved and signed
    const forge = (s1: bigint) => fromHex(encodeScalar(c, rStar) + encodeScalar(c, c.Fn.div(c.Fn.mul(s1, rStar), c.Fn.mul(2n, r))));
    // Without rerandomisation (s = Σ(e·φ_i + r·v_i) / Σu_i) the forgery verifies: the attack is real.
    const sum = (f: (p: EcdsaPresignature) => bigint) => mine.reduce((acc, p) => c.Fn.add(acc, f(p)), 0n);
    const naive = c.Fn.div(sum((p) => c.Fn.add(c.Fn.mul(e1, c.Fn.fromBytes(p.phi)), c.Fn.mul(r, c.Fn.fromBytes(p.v)))), sum((p) => c.Fn.fromBytes(p.u)));
    expect(verifies(curve, pk, target, forge(naive))).toBe(true);
    // With δ the signers' shares give a valid signature on what was asked, and no forgery.
    const partials: Message[] = mine.map((p) => ecdsaPresignedShare(p, { session: 'sign-transplant', digest: asked }));
    const sig = ecdsaCombine({ curve, publicKey: fromHex(pk), session: 'sign-transplant', signers: [1, 2], digest: asked }, partials);
    expect(verifies(curve, pk, asked, sig)).toBe(true);
    const s1 = BigInt('0x' + toHex(sig.subarray(32)));
    expect(verifies(curve, pk, target, forge(s1))).toBe(false);
    expect(verifies(curve, pk, target, forge(c.Fn.neg(s1)))).toBe(false);
  });

  it('signers told different sets or batch sizes abort before any secret-dependent check', () => {
    const shares = keygen('p256', 3, 2);
    const rng = seededRng('mixed');
    const a = ecdsaPresignStart(shares[0]!, { session: 'presign-mixed', signers: [1, 2], count: 2 }, rng);
    const b = ecdsaPresignStart(shares[1]!, { session: 'presign-mixed', signers: [1, 2], count: 1 }, rng);
    expectProtocolError(() => ecdsaPresignStep(a.state, inboxOf(b.outbound, 1), rng), 'malformed', 2);
    const a2 = ecdsaPresignStart(shares[0]!, { session: 'presign-mixed', signers: [1, 2], count: 1 }, rng);
    const b2 = ecdsaPresignStart(shares[1]!, { session: 'presign-mixed', signers: [1, 2, 3], count: 1 }, rng);
    expectProtocolError(() => ecdsaPresignStep(a2.state, inboxOf(b2.outbound, 1), rng), 'inconsistent-view', 2);
    // A state drives one step only.
    const a3 = ecdsaPresignStart(shares[0]!, { session: 'presign-once', signers: [1, 2], count: 1 }, rng);
    const b3 = ecdsaPresignStart(shares[1]!, { session: 'presign-once', signers: [1, 2], count: 1 }, rng);
    ecdsaPresignStep(a3.state, inboxOf(b3.outbound, 1), rng);
    expectProtocolError(() => ecdsaPresignStep(a3.state, inboxOf(b3.outbound, 1), rng), 'consumed');
  });

  it('a peer whose round-2 messages do not open its commitment is named', () => {
    const shares = keygen('p256', 3, 2);
    const rng = seededRng('cheat');
    const a = ecdsaPresignStart(shares[0]!, { session: 'presign-cheat', signers: [1, 2], count: 2 }, rng);
    const b = ecdsaPresignStart(shares[1]!, { session: 'presign-cheat', signers: [1, 2], count: 2 }, rng);
    const a2 = ecdsaPresignStep(a.state, inboxOf(b.outbound, 1), rng);
    const b2 = ecdsaPresignStep(b.state, inboxOf(a.outbound, 2), rng);
    const bad = structuredClone(b2.outbound) as Message<{ items: { salt: string }[] }>[];
    bad[0]!.payload.items[1]!.salt = '00'.repeat(32);
    expectProtocolError(() => ecdsaPresignStep(a2.state, inboxOf(bad, 1), rng), 'bad-proof', 2);
  });
});
