// The threshold ECDSA key share: a Shamir share of the key plus, per other participant, the
// pairwise material DKLs23 signing needs — base-OT keys for both directions of the OT extension
// and a seed for zero-sharing. Discarding a pair (after an abort attributed to that party) wipes
// its material, so that pair can never be used again.

import { z } from 'zod';
import { ProtocolError, checkParticipants, decodeState, encodeState, messageSchema, secretBytesSchema } from '../common.js';
import { memoized } from '../../../contract/memo.js';
import { hexSchema, partyIdSchema, type PartyId } from '../../../contract/bytes.js';
import { interpolateAt, lagrangeAt } from '../shamir.js';
import { KAPPA, SEED_BYTES } from './baseot.js';
import { decodePoint, ecdsaCurveNames, getCurve, mulBase, type EcPoint, type EcdsaCurve } from './curves.js';
import { bytesToBigInt } from '../integers.js';


const livePairSchema = z.strictObject({
  discarded: z.literal(false),
  /** Shared with the peer only: seeds the zero-sharing that re-randomises additive key shares. */
  zeroSeed: secretBytesSchema(32),
  /** We are the extension receiver ("Bob") towards the peer: both keys of each base OT. */
  bob: z.strictObject({ keys0: secretBytesSchema(KAPPA * SEED_BYTES), keys1: secretBytesSchema(KAPPA * SEED_BYTES) }),
  /** We are the extension sender ("Alice"): the correlation Δ and the keys it selected. */
  alice: z.strictObject({ delta: secretBytesSchema(KAPPA / 8), keys: secretBytesSchema(KAPPA * SEED_BYTES) }),
});
export type EcdsaPair = z.infer<typeof livePairSchema>;

export const ecdsaPairSchema = z.discriminatedUnion('discarded', [livePairSchema, z.strictObject({ discarded: z.literal(true) })]);

export const ecdsaPublicSchema = z.strictObject({
  protocol: z.literal('dkls23'),
  curve: z.enum(ecdsaCurveNames),
  threshold: z.number().int().min(1),
  participants: z.array(partyIdSchema).min(1),
  /** SEC1 compressed group public key. */
  publicKey: hexSchema,
  /** s_k·G of every participant, keyed by party id. */
  verifyingShares: z.record(z.string(), hexSchema),
});
export type EcdsaPublicPackage = z.infer<typeof ecdsaPublicSchema>;

export const ecdsaKeyShareSchema = ecdsaPublicSchema.extend({
  /** The key-generation session that produced this key (binds every later signing context). */
  session: messageSchema.shape.session,
  self: partyIdSchema,
  /** Shamir share s_self, big-endian bytes. Secret: store sealed, never log, wipe after use. */
  secretShare: secretBytesSchema(),
  /** Pairwise setup with every other participant, keyed by party id. Secret. */
  pairs: z.record(z.string(), ecdsaPairSchema),
});
export type EcdsaKeyShare = z.infer<typeof ecdsaKeyShareSchema>;

export const ecdsaPublicPackage = (k: EcdsaKeyShare): EcdsaPublicPackage => ({
  protocol: k.protocol,
  curve: k.curve,
  threshold: k.threshold,
  participants: [...k.participants],
  publicKey: k.publicKey,
  verifyingShares: { ...k.verifyingShares },
});

const parse = <T>(schema: z.ZodType<T>, raw: unknown, what: string): T => {
  const r = schema.safeParse(raw);
  if (!r.success) throw new ProtocolError('malformed', `${what}: ${r.error.issues[0]?.path.join('.')} ${r.error.issues[0]?.message}`);
  return r.data;
};

/** Lagrange coefficient of `i` within `ids` at 0. */
export const lagrange = (c: EcdsaCurve, ids: readonly PartyId[], i: PartyId): bigint => lagrangeAt(c.Fn, ids, i);

/**
 * Parses a public package and checks it is coherent: valid points, one verifying share per
 * participant, all on one polynomial of degree t−1 whose value at 0 is the public key. Checked
 * once per process per package (memoized).
 */
export const checkEcdsaPublicPackage = memoized(function checkEcdsaPublicPackage(raw: unknown): {
  pub: EcdsaPublicPackage;
  curve: EcdsaCurve;
  pk: EcPoint;
  shares: Map<PartyId, EcPoint>;
} {
  const pub = parse(ecdsaPublicSchema, raw, 'public package');
  checkParticipants(pub.participants, pub.threshold);
  const c = getCurve(pub.curve);
  if (Object.keys(pub.verifyingShares).length !== pub.participants.length || pub.participants.some((id) => !(String(id) in pub.verifyingShares)))
    throw new ProtocolError('malformed', 'verifying shares do not match the participants');
  const ids = [...pub.participants].sort((a, b) => a - b);
  const shares = new Map<PartyId, EcPoint>(ids.map((id) => [id, decodePoint(c, pub.verifyingShares[String(id)]!, id)]));
  const pk = decodePoint(c, pub.publicKey);
  // Interpolate in the exponent from the first t shares; every other share and the key must agree.
  const base = new Map([...shares].slice(0, pub.threshold));
  const at = (x: bigint) => interpolateAt(c.Fn, base, c.Point.ZERO, x);
  if (!at(0n).equals(pk)) throw new ProtocolError('malformed', 'verifying shares do not interpolate to the public key');
  for (const [id, Y] of shares) if (!at(BigInt(id)).equals(Y)) throw new ProtocolError('malformed', 'verifying shares are not of degree t−1', id);
  return { pub, curve: c, pk, shares };
});

/**
 * Parses a key share structurally, without curve arithmetic: schema, parameters, and a pair
 * entry for every other participant. Enough for signing, where a wrong share only makes the
 * signers' Σ pk_j = PK check fail.
 */
export function parseEcdsaKeyShare(raw: unknown): { key: EcdsaKeyShare; curve: EcdsaCurve; secret: bigint } {
  const key = parse(ecdsaKeyShareSchema, raw, 'key share');
  checkParticipants(key.participants, key.threshold, key.self);
  const c = getCurve(key.curve);
  const peers = key.participants.filter((id) => id !== key.self);
  if (Object.keys(key.pairs).length !== peers.length || peers.some((id) => !(String(id) in key.pairs)))
    throw new ProtocolError('malformed', 'pairwise setups do not match the participants');
  if (key.verifyingShares[String(key.self)] === undefined) throw new ProtocolError('malformed', 'no verifying share for self');
  // noble's arithmetic needs a bigint: made here, for the operation that opened the share.
  const secret = bytesToBigInt(key.secretShare);
  if (secret === 0n || secret >= c.n) throw new ProtocolError('scalar-range', 'secret share is not a non-zero scalar');
  return { key, curve: c, secret };
}

/** parseEcdsaKeyShare, plus the secret share matching the party's own verifying share. */
export function openEcdsaKeyShare(raw: unknown): { key: EcdsaKeyShare; curve: EcdsaCurve; secret: bigint; pk: EcPoint } {
  const { key, curve: c, secret } = parseEcdsaKeyShare(raw);
  if (!mulBase(c, secret).equals(decodePoint(c, key.verifyingShares[String(key.self)]!))) throw new ProtocolError('malformed', 'secret share does not match its verifying share');
  return { key, curve: c, secret, pk: decodePoint(c, key.publicKey) };
}

/** Full check: openEcdsaKeyShare plus the coherence of the public package. */
export function checkEcdsaKeyShare(raw: unknown): EcdsaKeyShare {
  const { key } = openEcdsaKeyShare(raw);
  checkEcdsaPublicPackage(ecdsaPublicPackage(key));
  return key;
}

export const encodeEcdsaKeyShare = (k: EcdsaKeyShare): Uint8Array => encodeState(k);
export const decodeEcdsaKeyShare = (b: Uint8Array): EcdsaKeyShare => checkEcdsaKeyShare(decodeState(b, ecdsaKeyShareSchema));

/**
 * Returns a copy of the key share whose pairwise setup with `peer` is discarded: its OT keys and
 * zero-sharing seed are dropped and signing with `peer` is refused from then on. Persist it.
 */
export function ecdsaDiscardPair(keyShare: EcdsaKeyShare, peer: PartyId): EcdsaKeyShare {
  if (!(String(peer) in keyShare.pairs)) throw new ProtocolError('bad-parameters', `party ${peer} is not a peer of this key`);
  return { ...keyShare, pairs: { ...keyShare.pairs, [String(peer)]: { discarded: true } } };
}

/**
 * Error codes for which a signing abort is attributed to a party's own (authenticated) message
 * content — a failed check, a bad commitment opening, an invalid element — as opposed to
 * delivery faults (missing, replayed or misrouted messages) that a relay alone can cause.
 */
const DISCARD_CODES: ReadonlySet<string> = new Set(['malformed', 'invalid-point', 'scalar-range', 'bad-proof', 'bad-share']);

/**
 * What a signer does with a signing abort: when the error names a party and is a fault in that
 * party's message content, the pairwise setup with it is discarded (the selective-abort attack
 * on OT extension learns bits of Δ from each abort, so a setup that saw one must not be reused).
 * Returns the key share to persist (unchanged otherwise).
 */
export function ecdsaAfterAbort(keyShare: EcdsaKeyShare, error: unknown): EcdsaKeyShare {
  if (!(error instanceof ProtocolError) || error.sender === undefined || !DISCARD_CODES.has(error.code)) return keyShare;
  if (error.sender === keyShare.self || !(String(error.sender) in keyShare.pairs)) return keyShare;
  return ecdsaDiscardPair(keyShare, error.sender);
}
