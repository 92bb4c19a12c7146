// The threshold PRF of symmetric keys (signers/protocols/tprf.ts): t partials with their DLEQ
// proofs combine into exactly RFC 9497's VOPRF Evaluate(k, x) for the key k no one holds; a
// bad partial is named and left out while t good ones remain.
import { describe, expect, it } from 'vitest';
import { ristretto255_hasher, ristretto255_oprf } from '@noble/curves/ed25519.js';
import { fromHex, toHex, type PartyId } from '../../contract/bytes.js';
import { publicPackage, type DkgKeyShare } from '../../signers/protocols/dkg.js';
import { lagrangeAt } from '../../signers/protocols/shamir.js';
import { getGroup } from '../../signers/protocols/suites.js';
import { tprfCombine, tprfPartial } from '../../signers/protocols/tprf.js';
import { expectProtocolError, runDkg } from '../helpers/protocol.js';
import { seededRng } from '../helpers/rng.js';

const enc = (s: string) => new TextEncoder().encode(s);
const g = getGroup('ristretto255');
const rng = seededRng('tprf');
/** noble's VOPRF Evaluate(k, x) (RFC 9497 §3.3.2), present at run time though its typings omit it. */
const evaluate = (ristretto255_oprf.voprf as unknown as { evaluate(sk: Uint8Array, input: Uint8Array): Uint8Array }).evaluate;

/** The whole key, interpolated from t shares: only a test ever computes it. */
function wholeKey(keys: Map<PartyId, DkgKeyShare>, ids: PartyId[]): Uint8Array {
  let k = 0n;
  for (const id of ids) k = g.Fn.add(k, g.Fn.mul(lagrangeAt(g.Fn, ids, id), g.Fn.fromBytes(keys.get(id)!.secretShare)));
  return g.Fn.toBytes(k);
}

describe('threshold PRF (2HashDH on ristretto255, RFC 9497 VOPRF)', () => {
  const keys = runDkg('ristretto255', 2, [1, 2, 3], 'tprf');
  const pub = publicPackage(keys.get(1)!);
  const input = enc('key 1234 · version 1 · nonce 00..0f · context digest');
  const partial = (id: PartyId, x = input, session = 's1') => tprfPartial(keys.get(id)!, session, x, rng);

  it('any t partials give RFC 9497 Evaluate(k, x) for the shared k, the same for every set', () => {
    const expected = toHex(evaluate(wholeKey(keys, [1, 3]), input));
    for (const set of [[1, 2], [1, 3], [2, 3]] as PartyId[][]) {
      const r = tprfCombine(pub, 's1', input, set.map((id) => partial(id)));
      expect(toHex(r.output)).toBe(expected);
      expect(r.signers).toEqual(set);
    }
    expect(toHex(tprfCombine(pub, 's1', enc('another input'), [partial(1, enc('another input')), partial(2, enc('another input'))]).output)).not.toBe(expected);
  });

  it('each partial is an RFC 9497 VOPRF evaluation with its proof: noble\'s VOPRF client verifies it', () => {
    const ONE = Uint8Array.of(1, ...new Uint8Array(31));
    const DST = enc(`HashToGroup-OPRFV1-\x01-${ristretto255_oprf.name}`);
    const P = ristretto255_hasher.hashToCurve(input, { DST }).toBytes();
    for (const id of [1, 2, 3] as PartyId[]) {
      const p = partial(id).payload;
      const K = fromHex(keys.get(id)!.verifyingShares[String(id)]!);
      expect(() => ristretto255_oprf.voprf.finalize(input, ONE, fromHex(p.evaluated), P, K, fromHex(p.proof))).not.toThrow();
      const other = fromHex(keys.get(id === 1 ? 2 : 1)!.verifyingShares[String(id === 1 ? 2 : 1)]!);
      expect(() => ristretto255_oprf.voprf.finalize(input, ONE, fromHex(p.evaluated), P, other, fromHex(p.proof))).toThrow();
    }
  });

  it('a partial for another input, a tampered element or proof is named; t good ones still combine', () => {
    const other = partial(3, enc('another input'));
    expectProtocolError(() => tprfCombine(pub, 's1', input, [partial(1), other]), 'bad-partial', 3);
    const tampered = partial(2);
    tampered.payload.evaluated = toHex(g.Point.BASE.toBytes());
    expectProtocolError(() => tprfCombine(pub, 's1', input, [partial(1), tampered]), 'bad-partial', 2);
    const badProof = partial(2);
    badProof.payload.proof = partial(2).payload.proof.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const r = tprfCombine(pub, 's1', input, [partial(1), badProof, partial(3)]);
    expect(r.signers).toEqual([1, 3]);
    expect(r.faults.map((f) => [f.code, f.sender])).toEqual([['bad-partial', 2]]);
  });

  it('refuses partials of another session, a sender without a share, duplicates and malformed ones', () => {
    expectProtocolError(() => tprfCombine(pub, 's1', input, [partial(1), partial(2, input, 's2')]), 'wrong-session', 2);
    expectProtocolError(() => tprfCombine(pub, 's1', input, [partial(1), { ...partial(2), from: 9 }]), 'unknown-sender', 9);
    expectProtocolError(() => tprfCombine(pub, 's1', input, [partial(1), partial(1)]), 'duplicate', 1);
    expectProtocolError(() => tprfCombine(pub, 's1', input, [partial(1), { ...partial(2), payload: { evaluated: 'zz' } }]), 'malformed', 2);
    expectProtocolError(() => tprfCombine(pub, 's1', input, [partial(1)]), 'missing');
  });

  it('refuses keys of a signing group, at the signer and at the coordinator', () => {
    const ed = runDkg('ed25519', 2, [1, 2, 3], 'not-prf');
    expectProtocolError(() => tprfPartial(ed.get(1)!, 's1', input, rng), 'bad-parameters');
    expectProtocolError(() => tprfCombine(publicPackage(ed.get(1)!), 's1', input, []), 'bad-parameters');
  });
});
