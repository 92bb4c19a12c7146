// Trusted-dealer key ceremony for Shoup threshold RSA: generate a key or import an existing one
// (PKCS#8 PEM from a legacy HSM), share d over Z_m with m = φ(n)/4, publish v and v_i = v^{s_i}.
// Meant to run once inside the short-lived dealer process (signers/ceremony/rsa-dealer.ts),
// which exits right after; see the note there on what can and cannot be wiped.
//
// Generated keys use safe primes (p = 2p'+1), so Shoup's proofs are sound as in the paper and
// m = p'q'. Measured time for one safe prime (OpenSSL, 2-core dev machine): 1024-bit (for a
// 2048-bit key) 0.1–1.2 s; 1536-bit (3072) 1.5–6.5 s; 2048-bit (4096) 14–85 s. Two are needed
// per key, so a 4096-bit ceremony takes a few minutes at worst — acceptable for a one-off
// ceremony, so safe primes are used at every size.
// Prime generation draws on OpenSSL's CSPRNG; the injected Rng drives the sharing and v.
// Imported keys have ordinary primes; the scheme still works (see key.ts), `safePrimes` in the
// output reports which case holds, and proof.ts says what that changes.

import { checkPrimeSync, createPrivateKey, createPublicKey, generatePrimeSync } from 'node:crypto';
import { z } from 'zod';
import { checkParticipants, ProtocolError } from '../common.js';
import { partyIdSchema, toHex, type PartyId, type Rng } from '../../../contract/bytes.js';
import { bigIntToMinBytes, bitLength, gcd, modInverse, randomBelow } from './arith.js';
import { bytesToBigInt } from '../integers.js';
import { combinePartials } from './combine.js';
import {
  checkPublicParams,
  delta,
  elementHex,
  encodeKeyShare,
  encodePublicParams,
  modulusBytes,
  RSA_BITS,
  RSA_MAX_PARTY_ID,
  type RsaBits,
  type RsaPublicParams,
  type RsaPublicParamsJson,
} from './key.js';
import { modPow } from './modpow.js';

const E = 65537n;

export type RsaDealRequest = ({ bits: RsaBits } | { pkcs8Pem: string }) & { participants: PartyId[]; threshold: number };

export interface RsaDeal {
  /** The ordinary RSA public key, with its SubjectPublicKeyInfo DER. */
  publicKey: { n: bigint; e: bigint; spki: Uint8Array };
  /** Public parameters every signer and the coordinator hold. */
  params: RsaPublicParams;
  /** Whether p and q are safe primes (always for generated keys). */
  safePrimes: boolean;
  /** One entry per participant; each is what that signer alone must receive (s secret). */
  shares: { id: PartyId; s: bigint; vi: bigint }[];
}

/** The dealer process's stdin request. */
export const rsaDealRequestSchema = z.discriminatedUnion('mode', [
  z.object({
    mode: z.literal('generate'),
    bits: z.literal(RSA_BITS),
    participants: z.array(partyIdSchema).min(1).max(RSA_MAX_PARTY_ID),
    threshold: z.number().int().min(1),
  }),
  z.object({
    mode: z.literal('import'),
    pkcs8Pem: z.string().min(1).max(16_384),
    participants: z.array(partyIdSchema).min(1).max(RSA_MAX_PARTY_ID),
    threshold: z.number().int().min(1),
  }),
]);
export type RsaDealRequestJson = z.infer<typeof rsaDealRequestSchema>;

export interface RsaDealJson {
  publicKey: { n: string; e: string; spki: string };
  params: RsaPublicParamsJson;
  safePrimes: boolean;
  shares: { id: PartyId; s: string; vi: string }[];
}

const bad = (msg: string): never => {
  throw new ProtocolError('bad-parameters', msg);
};

const b64urlToBigInt = (s: string): bigint => {
  const b = Buffer.from(s, 'base64url');
  const x = bytesToBigInt(b);
  b.fill(0);
  return x;
};

function generateKey(bits: RsaBits): { n: bigint; e: bigint; p: bigint; q: bigint } {
  for (;;) {
    // OpenSSL sets the top two bits of each prime, so p·q has exactly `bits` bits.
    const p = generatePrimeSync(bits / 2, { safe: true, bigint: true });
    const q = generatePrimeSync(bits / 2, { safe: true, bigint: true });
    if (p !== q && bitLength(p * q) === bits) return { n: p * q, e: E, p, q };
  }
}

function importPkcs8(pem: string): { n: bigint; e: bigint; p: bigint; q: bigint } {
  if (!/^\s*-----BEGIN PRIVATE KEY-----/.test(pem)) bad('expected an unencrypted PKCS#8 PEM (BEGIN PRIVATE KEY)');
  let jwk: { n?: string; e?: string; p?: string; q?: string };
  try {
    const key = createPrivateKey({ key: pem, format: 'pem' });
    if (key.asymmetricKeyType !== 'rsa') bad(`expected an RSA key, got ${key.asymmetricKeyType}`);
    jwk = key.export({ format: 'jwk' });
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    return bad('the PKCS#8 PEM does not parse as a private key');
  }
  if (!jwk.n || !jwk.e || !jwk.p || !jwk.q) return bad('the key lacks its prime factors');
  const k = { n: b64urlToBigInt(jwk.n), e: b64urlToBigInt(jwk.e), p: b64urlToBigInt(jwk.p), q: b64urlToBigInt(jwk.q) };
  if (k.p * k.q !== k.n || k.p === k.q) bad('n is not the product of two distinct factors');
  if (!checkPrimeSync(k.p) || !checkPrimeSync(k.q)) bad('a factor of n is not prime');
  return k;
}

/** f(i) = Σ a_j i^j mod m (Horner). */
const evalPoly = (coeffs: readonly bigint[], i: number, m: bigint): bigint =>
  coeffs.reduceRight((acc, a) => (acc * BigInt(i) + a) % m, 0n);

/**
 * Deals a threshold RSA key. The whole key exists only inside this call; the caller (the
 * dealer process) hands each share to its signer and exits.
 */
export function dealRsa(req: RsaDealRequest, rng: Rng): RsaDeal {
  const { participants, threshold } = req;
  checkParticipants(participants, threshold);
  if (Math.max(...participants) > RSA_MAX_PARTY_ID) bad(`party identifiers must be at most ${RSA_MAX_PARTY_ID}`);

  if ('bits' in req && !(RSA_BITS as readonly number[]).includes(req.bits)) bad(`key size must be one of ${RSA_BITS.join(', ')}`);
  const { n, e, p, q } = 'bits' in req ? generateKey(req.bits) : importPkcs8(req.pkcs8Pem);
  if (!(RSA_BITS as readonly number[]).includes(bitLength(n))) bad(`key size must be one of ${RSA_BITS.join(', ')}`);
  const safePrimes = checkPrimeSync((p - 1n) / 2n) && checkPrimeSync((q - 1n) / 2n);

  // Every square has order dividing m = φ(n)/4, so d ≡ e⁻¹ (mod m) inverts e on the squares.
  const m = ((p - 1n) * (q - 1n)) / 4n;
  if (gcd(e, m) !== 1n) bad('e is not invertible mod φ(n)/4');
  const coeffs = [modInverse(e, m)];
  for (let j = 1; j < threshold; j++) coeffs.push(randomBelow(rng, m));

  let u = 0n;
  while (u <= 1n || gcd(u, n) !== 1n) u = randomBelow(rng, n);
  const v = (u * u) % n;

  const shares = participants.map((id) => {
    const s = evalPoly(coeffs, id, m);
    return { id, s, vi: modPow(v, s, n) };
  });
  coeffs.fill(0n); // drops the references; BigInt values themselves cannot be overwritten

  const params: RsaPublicParams = {
    n,
    e,
    v,
    threshold,
    participants: [...participants],
    verificationKeys: new Map(shares.map((s) => [s.id, s.vi])),
    multiplier: 1n,
    shareBits: bitLength(n),
  };
  checkPublicParams(params);
  selfTest(params, shares);

  const nB = bigIntToMinBytes(n);
  const eB = bigIntToMinBytes(e);
  const spki = createPublicKey({
    key: { kty: 'RSA', n: Buffer.from(nB).toString('base64url'), e: Buffer.from(eB).toString('base64url') },
    format: 'jwk',
  }).export({ type: 'spki', format: 'der' });
  return { publicKey: { n, e, spki: new Uint8Array(spki) }, params, safePrimes, shares };
}

/** Combines the first t shares on input v and checks the result, catching a broken key early. */
function selfTest(params: RsaPublicParams, shares: RsaDeal['shares']): void {
  const { n, v } = params;
  const d2 = 2n * delta(params);
  const partials = new Map(shares.slice(0, params.threshold).map((s) => [s.id, modPow(v, d2 * s.s, n)] as const));
  if (modPow(combinePartials(params, v, partials), params.e, n) !== v) bad('self-test of the dealt key failed');
}

export function encodeDeal(deal: RsaDeal): RsaDealJson {
  const k = modulusBytes(deal.params);
  return {
    publicKey: { n: elementHex(deal.publicKey.n, k), e: toHex(bigIntToMinBytes(deal.publicKey.e)), spki: toHex(deal.publicKey.spki) },
    params: encodePublicParams(deal.params),
    safePrimes: deal.safePrimes,
    shares: deal.shares.map((s) => ({ ...encodeKeyShare(s), vi: elementHex(s.vi, k) })),
  };
}
