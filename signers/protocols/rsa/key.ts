// Public parameters and key shares of a Shoup threshold RSA key, in memory (bigint) and on the
// wire (lower-case hex, validated with zod). Every party — signers and the coordinator — holds the
// same public parameters; a signer additionally holds its share s_i.
//
// Group: the squares mod n. Shares are points of a polynomial over Z_m with m = φ(n)/4, which is
// Shoup's m = p'q' for safe primes and, for an ordinary (imported) key, a multiple of the order
// of every square, so the Lagrange-in-the-exponent identity holds for any RSA key.
// With ordinary primes m has small prime factors r ≤ L, and t−1 shares are then not uniform
// modulo those r: they can reveal which small primes divide φ(n)/4 (d mod r itself is e⁻¹ mod r,
// nothing new) — a few bits about p and q modulo small primes, far from what factoring needs.
//
// A reshared key (reshare.ts) has integer shares on an integer polynomial whose constant term is
// M·d for a public multiplier M (a product of factorials), and shares grow with every resharing:
// `multiplier` and `shareBits` describe both, with defaults that are exactly a dealt key's.

import { z } from 'zod';
import { checkParticipants, ProtocolError, secretBytesSchema } from '../common.js';
import { fromHex, hexSchema, partyIdSchema, toHex, type PartyId } from '../../../contract/bytes.js';
import { bigIntToMinBytes, bitLength, factorial, gcd } from './arith.js';
import { bigIntToBytes, bytesToBigInt } from '../integers.js';
import { modPow } from './modpow.js';

/** Supported modulus lengths. */
export const RSA_BITS = [2048, 3072, 4096] as const;
export type RsaBits = (typeof RSA_BITS)[number];

/**
 * Highest party identifier. Shoup's Δ = L! with L the highest identifier multiplies every share
 * exponent; 64! ≈ 2^296 keeps that overhead small, and every prime factor of e must exceed L.
 */
export const RSA_MAX_PARTY_ID = 64;

/**
 * Largest share width. Each resharing widens shares (reshare.ts): by about 150 bits with three to
 * five signers, 1,500–1,700 with 64. This allows some 70–100 resharings of a key held by a few
 * signers (fewer than ten with 64) while partials, exponentiations this long, stay cheap; past
 * it, resharing refuses and the key must be dealt afresh.
 */
export const RSA_MAX_SHARE_BITS = 16_384;

export interface RsaPublicParams {
  n: bigint;
  e: bigint;
  /** Verification base: a random square mod n. */
  v: bigint;
  threshold: number;
  participants: PartyId[];
  /** v_i = v^{s_i} mod n for each participant. */
  verificationKeys: Map<PartyId, bigint>;
  /** M ≥ 1: the shares interpolate (Δ-scaled Lagrange) to M·d. 1 for a dealt key. */
  multiplier: bigint;
  /** Every share satisfies 0 ≤ s_i < 2^shareBits. bitLength(n) for a dealt key. */
  shareBits: number;
}

export interface RsaKeyShare {
  id: PartyId;
  /** s_i = f(i): mod m for a dealt key, an integer below 2^shareBits for a reshared one. Secret. */
  s: bigint;
}

/** k: the modulus length in bytes. */
export const modulusBytes = (p: { n: bigint }): number => Math.ceil(bitLength(p.n) / 8);

/** Δ = L! where L is the highest participant identifier. */
export const delta = (p: { participants: readonly PartyId[] }): bigint => factorial(Math.max(...p.participants));

const intSchema = hexSchema.min(2).max(2 * 1024);

export const rsaPublicParamsSchema = z.object({
  n: intSchema,
  e: intSchema,
  v: intSchema,
  threshold: z.number().int().min(1),
  participants: z.array(partyIdSchema).min(1).max(RSA_MAX_PARTY_ID),
  verificationKeys: z.array(z.object({ id: partyIdSchema, vi: intSchema })).max(RSA_MAX_PARTY_ID),
  /** Absent for a dealt key (1). */
  multiplier: hexSchema.min(2).max(RSA_MAX_SHARE_BITS / 4).optional(),
  /** Absent for a dealt key (bitLength(n)). */
  shareBits: z.number().int().min(1).max(RSA_MAX_SHARE_BITS).optional(),
});
export type RsaPublicParamsJson = z.infer<typeof rsaPublicParamsSchema>;

export const rsaKeyShareSchema = z.object({ id: partyIdSchema, s: hexSchema.min(2).max(RSA_MAX_SHARE_BITS / 4) });
/** A share as a signer's record holds it: s_i as big-endian bytes, never a string (signers/node/key-records.ts). */
const rsaHeldShareSchema = z.object({ id: partyIdSchema, s: secretBytesSchema(undefined, RSA_MAX_SHARE_BITS / 8) });
export type RsaKeyShareJson = z.infer<typeof rsaKeyShareSchema>;
const anyShareSchema = z.union([rsaKeyShareSchema, rsaHeldShareSchema]);

/** Minimal-length lower-case hex of a non-negative integer. */
export const intHex = (x: bigint): string => toHex(bigIntToMinBytes(x));
function hexInt(h: string): bigint {
  const b = fromHex(h);
  const x = bytesToBigInt(b);
  b.fill(0); // shares pass through here
  return x;
}
/** Fixed-length (k-byte) hex of a group element. */
export const elementHex = (x: bigint, k: number): string => toHex(bigIntToBytes(x, k));

/**
 * Checks the structural requirements of the scheme: modulus length, odd e with no prime factor
 * ≤ L (so gcd(e, 4Δ²) = 1) and prime to M (so combining can invert 4Δ²M), participants and
 * threshold, the share width, and elements that are units mod n.
 */
export function checkPublicParams(p: RsaPublicParams): void {
  const fail = (msg: string): never => {
    throw new ProtocolError('bad-parameters', msg);
  };
  checkParticipants(p.participants, p.threshold);
  if (Math.max(...p.participants) > RSA_MAX_PARTY_ID) fail(`party identifiers must be at most ${RSA_MAX_PARTY_ID}`);
  if (!(RSA_BITS as readonly number[]).includes(bitLength(p.n)) || (p.n & 1n) === 0n)
    fail(`modulus must be odd and ${RSA_BITS.join(', ')} bits`);
  if (p.e < 3n || p.e >= p.n || gcd(p.e, 4n * delta(p)) !== 1n)
    fail('public exponent must be odd with no prime factor up to the highest party identifier');
  if (p.multiplier < 1n || gcd(p.e, p.multiplier) !== 1n) fail('multiplier must be positive and prime to e');
  if (!Number.isInteger(p.shareBits) || p.shareBits < 1 || p.shareBits > RSA_MAX_SHARE_BITS) fail(`share width must be 1..${RSA_MAX_SHARE_BITS} bits`);
  const unit = (x: bigint, what: string): void => {
    if (x <= 1n || x >= p.n || gcd(x, p.n) !== 1n) fail(`${what} is not a unit mod n`);
  };
  unit(p.v, 'verification base');
  if (p.verificationKeys.size !== p.participants.length) fail('one verification key per participant');
  for (const id of p.participants) {
    const vi = p.verificationKeys.get(id);
    if (vi === undefined) fail(`no verification key for party ${id}`);
    else unit(vi, `verification key of party ${id}`);
  }
}

/** Encodes public parameters; a dealt key's encoding has no multiplier or shareBits (as before resharing existed). */
export function encodePublicParams(p: RsaPublicParams): RsaPublicParamsJson {
  const k = modulusBytes(p);
  return {
    n: elementHex(p.n, k),
    e: intHex(p.e),
    v: elementHex(p.v, k),
    threshold: p.threshold,
    participants: [...p.participants],
    verificationKeys: p.participants.map((id) => ({ id, vi: elementHex(p.verificationKeys.get(id)!, k) })),
    ...(p.multiplier !== 1n && { multiplier: intHex(p.multiplier) }),
    ...(p.shareBits !== bitLength(p.n) && { shareBits: p.shareBits }),
  };
}

/** Parses public parameters from their JSON form, and checks them unless `check` is false (the same bytes were checked before). */
export function parsePublicParams(json: unknown, check = true): RsaPublicParams {
  const r = rsaPublicParamsSchema.safeParse(json);
  if (!r.success) throw new ProtocolError('malformed', `RSA public parameters: ${r.error.issues[0]?.path.join('.')} ${r.error.issues[0]?.message}`);
  const vks = new Map<PartyId, bigint>();
  for (const { id, vi } of r.data.verificationKeys) {
    if (vks.has(id)) throw new ProtocolError('bad-parameters', `verification key of party ${id} appears twice`);
    vks.set(id, hexInt(vi));
  }
  const n = hexInt(r.data.n);
  const p: RsaPublicParams = {
    n,
    e: hexInt(r.data.e),
    v: hexInt(r.data.v),
    threshold: r.data.threshold,
    participants: r.data.participants,
    verificationKeys: vks,
    multiplier: r.data.multiplier === undefined ? 1n : hexInt(r.data.multiplier),
    shareBits: r.data.shareBits ?? bitLength(n),
  };
  if (check) checkPublicParams(p);
  return p;
}

export const encodeKeyShare = (s: RsaKeyShare): RsaKeyShareJson => ({ id: s.id, s: intHex(s.s) });

/**
 * Parses a share and checks it against its public verification key (v^{s_i} = v_i): one
 * exponentiation, so a signer never starts with a share that would produce bad partials.
 * `verify` false skips that check for a share the caller checked before, byte for byte.
 */
export function parseKeyShare(params: RsaPublicParams, json: unknown, verify = true): RsaKeyShare {
  const r = anyShareSchema.safeParse(json);
  if (!r.success) throw new ProtocolError('malformed', `RSA key share: ${r.error.issues[0]?.path.join('.')} ${r.error.issues[0]?.message}`);
  // modPow needs a bigint: it lives as long as the operation holding this share.
  const share: RsaKeyShare = { id: r.data.id, s: typeof r.data.s === 'string' ? hexInt(r.data.s) : bytesToBigInt(r.data.s) };
  const vi = params.verificationKeys.get(share.id);
  if (vi === undefined) throw new ProtocolError('bad-parameters', `party ${share.id} is not a participant`);
  if (bitLength(share.s) > params.shareBits || (verify && modPow(params.v, share.s, params.n) !== vi))
    throw new ProtocolError('bad-share', 'share does not match its verification key', share.id);
  return share;
}
