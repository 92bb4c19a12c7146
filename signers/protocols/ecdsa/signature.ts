// Standard ECDSA on the threshold side: the digest-to-scalar conversion (SEC 1 / FIPS 186
// bits2int, then mod n), assembling and verifying (r, s), and raw r‖s ↔ DER conversion.

import { ProtocolError } from '../common.js';
import { toHex } from '../../../contract/bytes.js';
import { memoized } from '../../../contract/memo.js';
import { decodePoint, getCurve, type EcPoint, type EcdsaCurve, type EcdsaCurveName } from './curves.js';
import { bytesToBigInt } from '../integers.js';

/** e = bits2int(digest) mod n: the leftmost orderBits bits of the digest, as ECDSA specifies. */
export function digestToScalar(c: EcdsaCurve, digest: Uint8Array): bigint {
  const excess = 8 * digest.length - c.orderBits;
  const h = bytesToBigInt(digest);
  return (excess > 0 ? h >> BigInt(excess) : h) % c.n;
}

/**
 * Public keys with precomputed multiples, most recently used last. A threshold key signs again
 * and again in one signer process, and every signer and the coordinator verify every signature:
 * the table (built once, ~25 ms) makes each verification about 3× cheaper. A key gets its table
 * on its second use, so verifications cycling through many keys (KMS Verify) never pay ~25 ms
 * each for tables they would not reuse.
 */
const tables = new Map<string, EcPoint>();
const seenOnce = new Set<string>();
const TABLES = 16;

function keyTable(c: EcdsaCurve, publicKey: Uint8Array): EcPoint {
  const id = `${c.name}:${toHex(publicKey)}`;
  let P = tables.get(id);
  if (P) tables.delete(id);
  else if (!seenOnce.delete(id)) {
    if (seenOnce.size >= 4 * TABLES) seenOnce.delete(seenOnce.values().next().value!);
    seenOnce.add(id);
    return decodePoint(c, toHex(publicKey));
  } else {
    P = decodePoint(c, toHex(publicKey)).precompute(6, false);
    if (tables.size >= TABLES) tables.delete(tables.keys().next().value!);
  }
  tables.set(id, P);
  return P;
}

/** Verifies a raw r‖s signature over a digest (high s accepted unless `lowS`), as SEC 1 §4.1.4. */
export function ecdsaVerify(curve: EcdsaCurveName, publicKey: Uint8Array, digest: Uint8Array, sig: Uint8Array, lowS = false): boolean {
  const c = getCurve(curve);
  if (sig.length !== 2 * c.scalarLength || digest.length === 0) return false;
  return verifyRemembered({ c, publicKey, digest, sig, lowS });
}

interface Check {
  c: EcdsaCurve;
  publicKey: Uint8Array;
  digest: Uint8Array;
  sig: Uint8Array;
  lowS: boolean;
}

/**
 * Remembered by the exact inputs checked: the coordinator verifies each signature twice, as the
 * protocol's combination and as every signature's verify before release, over the same bytes,
 * and the second is then a lookup.
 */
const verifyRemembered = memoized(
  ({ c, publicKey, digest, sig, lowS }: Check): boolean => {
    const L = c.scalarLength;
    const r = bytesToBigInt(sig.subarray(0, L));
    const s = bytesToBigInt(sig.subarray(L));
    if (r === 0n || r >= c.n || s === 0n || s >= c.n || (lowS && s > c.n >> 1n)) return false;
    let Q: EcPoint;
    try {
      Q = keyTable(c, publicKey);
    } catch {
      return false;
    }
    const w = c.Fn.inv(s);
    // Public values only: variable-time multiplication is fine.
    const R = c.Point.BASE.multiplyUnsafe(c.Fn.mul(digestToScalar(c, digest), w)).add(Q.multiplyUnsafe(c.Fn.mul(r, w)));
    return !R.is0() && c.Fn.create(R.toAffine().x) === r;
  },
  64,
  ({ c, publicKey, digest, sig, lowS }) => `${c.name}:${lowS}:${toHex(publicKey)}:${toHex(digest)}:${toHex(sig)}`,
);

/**
 * From R, U = Σu = k·φ and W = Σw = φ·(e + r·x): s = W / U. Normalises s when `lowS`, then
 * verifies before returning r‖s, so no invalid signature ever leaves this function.
 */
export function finishSignature(c: EcdsaCurve, R: EcPoint, U: bigint, W: bigint, digest: Uint8Array, publicKey: Uint8Array, lowS: boolean): Uint8Array {
  if (U === 0n) throw new ProtocolError('bad-partial', 'the combined nonce share is zero');
  const r = c.Fn.create(R.toAffine().x);
  let s = c.Fn.div(W, U);
  if (r === 0n || s === 0n) throw new ProtocolError('bad-partial', 'degenerate signature');
  if (lowS && s > c.n >> 1n) s = c.n - s;
  const sig = new Uint8Array(2 * c.scalarLength);
  sig.set(c.Fn.toBytes(r), 0);
  sig.set(c.Fn.toBytes(s), c.scalarLength);
  if (!ecdsaVerify(c.name, publicKey, digest, sig)) throw new ProtocolError('bad-partial', 'the combined signature does not verify');
  return sig;
}

/** Raw r‖s → DER SEQUENCE { INTEGER r, INTEGER s }. */
export function ecdsaRawToDer(curve: EcdsaCurveName, raw: Uint8Array): Uint8Array {
  const c = getCurve(curve);
  if (raw.length !== 2 * c.scalarLength) throw new ProtocolError('malformed', `raw signature must be ${2 * c.scalarLength} bytes`);
  return c.ecdsa.Signature.fromBytes(raw, 'compact').toBytes('der');
}

/** DER → raw r‖s (strict DER, r and s in [1, n)). */
export function ecdsaDerToRaw(curve: EcdsaCurveName, der: Uint8Array): Uint8Array {
  const c = getCurve(curve);
  try {
    return c.ecdsa.Signature.fromBytes(der, 'der').toBytes('compact');
  } catch (e) {
    throw new ProtocolError('malformed', `not a DER ECDSA signature: ${(e as Error).message}`);
  }
}
