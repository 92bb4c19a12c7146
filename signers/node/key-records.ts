// How a signer stores a key share: the record `key.<id>` (and a reshared share pending adoption)
// is {scheme, share[, session]}, the share in its scheme's own encoding; an RSA record also holds
// the key's public parameters, which change with its shares. One place writes and reads them:
// key generation or installation, signing, resharing and the inventory; and the public package
// a stored share stands for, which new holders and the inventory compare.
import { z } from 'zod';
import { fromHex } from '../../contract/bytes.js';
import { decodeSecretful, encodeSecretful, isSecretful, wipeSecrets } from '../protocols/common.js';
import { openKeyShare, type DkgKeyShare } from '../protocols/dkg.js';
import { checkEcdsaKeyShare, type EcdsaKeyShare } from '../protocols/ecdsa/index.js';
import { keyPackageSchema, packageDigest } from '../protocols/key-package.js';
import { resharePublicPackage, type ReshareKeyShare } from '../protocols/reshare.js';
import { bigIntToMinBytes } from '../protocols/rsa/arith.js';
import { encodePublicParams, parseKeyShare, parsePublicParams, rsaPublicParamsSchema, type RsaKeyShare, type RsaPublicParams } from '../protocols/rsa/key.js';
import { sessionIdSchema } from '../../contract/signer-rpc/relayed.js';
import { RpcError } from './rpc.js';

export type ShareScheme = 'frost' | 'ecdsa';
type ShareOf<S extends ShareScheme> = S extends 'frost' ? DkgKeyShare : EcdsaKeyShare;

const recordSchema = z.object({ scheme: z.string(), share: z.unknown(), session: sessionIdSchema.optional() });

// A record is encodeSecretful's (common.ts): its public part JSON, every secret raw bytes, so that
// neither writing nor reading it makes a string of a share. Records written before that are
// JSON with hex secrets; they still open (their hex taken to bytes at once), and take the new
// form whenever the record is written again (a refresh, a resharing, a discarded pair).

/** Whether a record is in the JSON form of earlier versions. */
export const isLegacyRecord = (raw: Uint8Array): boolean => !isSecretful(raw);

/** The hex secrets of a JSON record, as bytes (RSA's share is parsed from either form by rsa/key.ts). */
function legacySecrets(rec: { scheme: string; share: unknown }): void {
  const hex = (o: Record<string, unknown>, k: string) => {
    if (typeof o[k] === 'string') o[k] = fromHex(o[k]);
  };
  const share = rec.share as Record<string, unknown> | null;
  if (!share || typeof share !== 'object' || rec.scheme === 'rsa') return;
  hex(share, 'secretShare');
  if (rec.scheme !== 'ecdsa' || !share.pairs || typeof share.pairs !== 'object') return;
  for (const pair of Object.values(share.pairs as Record<string, Record<string, Record<string, unknown>> | null>)) {
    if (!pair || typeof pair !== 'object') continue;
    hex(pair as Record<string, unknown>, 'zeroSeed');
    if (pair.bob) for (const k of ['keys0', 'keys1']) hex(pair.bob, k);
    if (pair.alice) for (const k of ['delta', 'keys']) hex(pair.alice, k);
  }
}

/** A record's fields, secrets as bytes, from either form. */
function parseRecord(raw: Uint8Array): unknown {
  if (isSecretful(raw)) return decodeSecretful(raw);
  const rec = JSON.parse(Buffer.from(raw).toString('utf8')) as { scheme: string; share: unknown };
  if (rec && typeof rec === 'object') legacySecrets(rec);
  return rec;
}

/** A key share's record; `session` marks a reshared share not yet adopted. */
export function encodeShareRecord(share: DkgKeyShare | EcdsaKeyShare, session?: string): Buffer {
  const scheme = 'protocol' in share ? 'ecdsa' : 'frost';
  return Buffer.from(encodeSecretful({ scheme, share, ...(session ? { session } : {}) }));
}

/**
 * Decodes a record read for this use alone, then wipes its plaintext bytes: the share's secrets
 * are left only in the decoded object's buffers, which the operation wipes when it ends
 * (docs/threat-model.md, "Shares in memory").
 */
export function decodeOnce<T>(raw: Uint8Array, decode: (raw: Uint8Array) => T): T {
  try {
    return decode(raw);
  } finally {
    raw.fill(0);
  }
}

/** The scheme a stored key record names (RSA's included). */
export const recordScheme = (raw: Uint8Array): string => recordSchema.parse(parseRecord(raw)).scheme;

/** A stored record's share, which must be of `scheme`. */
export function decodeShareRecord<S extends ShareScheme>(raw: Uint8Array, scheme: S): { share: ShareOf<S>; session?: string | undefined } {
  const rec = recordSchema.parse(parseRecord(raw));
  if (rec.scheme !== scheme) throw new RpcError(409, 'wrong-scheme', `this signer holds a ${rec.scheme} share of the key, not a ${scheme} one`);
  return { share: (scheme === 'frost' ? openKeyShare(rec.share).key : checkEcdsaKeyShare(rec.share)) as ShareOf<S>, session: rec.session };
}

const rsaRecordSchema = z.object({ scheme: z.literal('rsa'), params: rsaPublicParamsSchema, share: z.unknown(), session: sessionIdSchema.optional() });

export interface RsaHeld {
  params: RsaPublicParams;
  share: RsaKeyShare;
}

/** An RSA record: its share's integer as big-endian bytes. */
export function encodeRsaRecord(k: RsaHeld, session?: string): Buffer {
  const s = bigIntToMinBytes(k.share.s);
  try {
    return Buffer.from(encodeSecretful({ scheme: 'rsa', params: encodePublicParams(k.params), share: { id: k.share.id, s }, ...(session ? { session } : {}) }));
  } finally {
    s.fill(0);
  }
}

/**
 * A stored RSA record, its parameters checked (gcds over the modulus) and its share checked
 * against them (an exponentiation) unless `verify` is false: the same record was checked before.
 */
export function decodeRsaRecord(raw: Uint8Array, verify = true): RsaHeld & { session?: string | undefined } {
  const rec = rsaRecordSchema.parse(parseRecord(raw));
  const params = parsePublicParams(rec.params, verify);
  return { params, share: parseKeyShare(params, rec.share, verify), session: rec.session };
}

/** A stored key record (the key's, or a pending one): an EC key share, or an RSA share with its parameters. */
export type Held = ({ ec: ReshareKeyShare } | { rsa: RsaHeld }) & { session?: string | undefined };

export function decodeRecord(raw: Uint8Array): Held {
  const scheme = recordScheme(raw);
  if (scheme === 'rsa') {
    const { session, ...rsa } = decodeRsaRecord(raw);
    return { rsa, session };
  }
  if (scheme !== 'frost' && scheme !== 'ecdsa') throw new RpcError(403, 'not-reshareable', `a ${scheme} key share cannot be reshared`);
  const { share, session } = decodeShareRecord(raw, scheme);
  return { ec: share, session };
}

export const encodeRecord = (h: Held, session?: string): Buffer => ('rsa' in h ? encodeRsaRecord(h.rsa, session) : encodeShareRecord(h.ec, session));

/** The public package of a held share: what new holders compare, the next resharing's `old`, what the inventory reports. */
export const packageOf = (h: Held): unknown => ('rsa' in h ? encodePublicParams(h.rsa.params) : resharePublicPackage(h.ec));

/** The public package of a stored record, read for that alone: the record's plaintext and its decoded secrets are wiped. */
export function recordPackage(raw: Uint8Array): unknown {
  const held = decodeOnce(raw, decodeRecord);
  try {
    return packageOf(held);
  } finally {
    wipeSecrets(held);
  }
}

/** The SHA-256 of a held share's public package (key-package.ts packageDigest): what backups, restorations and revivals name it by. */
export const heldPackageDigest = (h: Held): string => packageDigest(keyPackageSchema.parse(packageOf(h)));

/** heldPackageDigest of a stored record, read for that alone (recordPackage). */
export const recordPackageDigest = (raw: Uint8Array): string => packageDigest(keyPackageSchema.parse(recordPackage(raw)));
