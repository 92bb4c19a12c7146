// Shamir sharing over a prime-order group, as key generation and resharing use it: Lagrange
// coefficients, polynomial evaluation, Feldman commitments and their evaluation, and
// interpolation in the exponent. Written once for every group (FROST's and threshold ECDSA's);
// the callers fix encodings and which party a failure is attributed to.

import type { CurvePoint } from '@noble/curves/abstract/curve.js';
import type { IField } from '@noble/curves/abstract/modular.js';
import type { PartyId } from '../../contract/bytes.js';

/** A point of any of the groups keys live in (all have bigint coordinates). */
export interface ShamirPoint extends CurvePoint<bigint, ShamirPoint> {}

/** Lagrange coefficient of `i` within `ids`, evaluated at x (x = 0 gives the usual λ_i). */
export function lagrangeAt(Fn: IField<bigint>, ids: readonly PartyId[], i: PartyId, x = 0n): bigint {
  const xi = BigInt(i);
  let num = Fn.ONE;
  let den = Fn.ONE;
  for (const j of ids) {
    if (j === i) continue;
    const xj = BigInt(j);
    num = Fn.mul(num, Fn.sub(x, xj));
    den = Fn.mul(den, Fn.sub(xi, xj));
  }
  return Fn.div(num, den);
}

/** Σ_m a_m · x^m (Horner). */
export const evalPoly = (Fn: IField<bigint>, coeffs: readonly bigint[], x: bigint): bigint => coeffs.reduceRight((acc, a) => Fn.add(Fn.mul(acc, x), a), Fn.ZERO);

/** Σ_m C_m · x^m: a Feldman commitment evaluated at x (public data, variable time is fine). */
export const evalCommitment = <P extends CurvePoint<bigint, P>>(C: readonly P[], x: bigint): P =>
  C.slice(0, -1).reduceRight((acc, c) => acc.multiplyUnsafe(x).add(c), C[C.length - 1]!);

/** The coefficient-wise sum of Feldman commitments of equal length: the commitment to the summed polynomial. */
export const sumCommitments = <P extends CurvePoint<bigint, P>>(Cs: readonly (readonly P[])[], zero: P): P[] =>
  Cs[0]!.map((_, m) => Cs.reduce((acc, C) => acc.add(C[m]!), zero));

/** Σ_{j∈points} λ_j(x) · P_j: the value at x of the polynomial through `points`, in the exponent. */
export function interpolateAt<P extends CurvePoint<bigint, P>>(Fn: IField<bigint>, points: ReadonlyMap<PartyId, P>, zero: P, x: bigint): P {
  const ids = [...points.keys()];
  return ids.reduce((acc, j) => acc.add(points.get(j)!.multiplyUnsafe(lagrangeAt(Fn, ids, j, x))), zero);
}
