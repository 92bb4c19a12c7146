// How a signer stores a key share: the record `key.<id>` (and a reshared share pending adoption)
// is {scheme, share[, session]}, the share in its scheme's own encoding; an RSA record also holds
// the key's public parameters, which change with its shares. One place writes and reads them:
// key generation or installation, signing, resharing and the inventory; and the public package
// a stored share stands for, which new holders and the inventory compare.
import { z } from 'zod';
import { decodeKeyShare, encodeKeyShare, type DkgKeyShare } from '../protocols/dkg.js';
import { decodeEcdsaKeyShare, encodeEcdsaKeyShare, type EcdsaKeyShare } from '../protocols/ecdsa/index.js';
import { keyPackageSchema, packageDigest } from '../protocols/key-package.js';
import { resharePublicPackage, type ReshareKeyShare } from '../protocols/reshare.js';
import { encodeKeyShare as encodeRsaShare, encodePublicParams, parseKeyShare, parsePublicParams, rsaPublicParamsSchema, type RsaKeyShare, type RsaPublicParams } from '../protocols/rsa/key.js';
import { sessionIdSchema } from '../../contract/signer-rpc/relayed.js';
import { RpcError } from './rpc.js';

export type ShareScheme = 'frost' | 'ecdsa';
type ShareOf<S extends ShareScheme> = S extends 'frost' ? DkgKeyShare : EcdsaKeyShare;

const recordSchema = z.object({ scheme: z.string(), share: z.unknown(), session: sessionIdSchema.optional() });

/** A key share's record; `session` marks a reshared share not yet adopted. */
export function encodeShareRecord(share: DkgKeyShare | EcdsaKeyShare, session?: string): Buffer {
  const [scheme, bytes] = 'protocol' in share ? ['ecdsa', encodeEcdsaKeyShare(share)] : ['frost', encodeKeyShare(share)];
  return Buffer.from(JSON.stringify({ scheme, share: JSON.parse(Buffer.from(bytes).toString('utf8')), ...(session ? { session } : {}) }));
}

/**
 * Decodes a record read for this use alone, then wipes its plaintext bytes: the share is left
 * only in the decoded object (whose strings and bigints JavaScript cannot wipe; see
 * docs/threat-model.md, "Shares in memory").
 */
export function decodeOnce<T>(raw: Uint8Array, decode: (raw: Uint8Array) => T): T {
  try {
    return decode(raw);
  } finally {
    raw.fill(0);
  }
}

/** The scheme a stored key record names (RSA's included). */
export const recordScheme = (raw: Uint8Array): string => recordSchema.parse(JSON.parse(Buffer.from(raw).toString('utf8'))).scheme;

/** A stored record's share, which must be of `scheme`. */
export function decodeShareRecord<S extends ShareScheme>(raw: Uint8Array, scheme: S): { share: ShareOf<S>; session?: string | undefined } {
  const rec = recordSchema.parse(JSON.parse(Buffer.from(raw).toString('utf8')));
  if (rec.scheme !== scheme) throw new RpcError(409, 'wrong-scheme', `this signer holds a ${rec.scheme} share of the key, not a ${scheme} one`);
  const bytes = Buffer.from(JSON.stringify(rec.share));
  return { share: (scheme === 'frost' ? decodeKeyShare(bytes) : decodeEcdsaKeyShare(bytes)) as ShareOf<S>, session: rec.session };
}


const rsaRecordSchema = z.object({ scheme: z.literal('rsa'), params: rsaPublicParamsSchema, share: z.unknown(), session: sessionIdSchema.optional() });

export interface RsaHeld {
  params: RsaPublicParams;
  share: RsaKeyShare;
}

export const encodeRsaRecord = (k: RsaHeld, session?: string): Buffer =>
  Buffer.from(JSON.stringify({ scheme: 'rsa', params: encodePublicParams(k.params), share: encodeRsaShare(k.share), ...(session ? { session } : {}) }));

/** A stored RSA record, its share checked against the parameters (an exponentiation). */
export function decodeRsaRecord(raw: Uint8Array): RsaHeld & { session?: string | undefined } {
  const rec = rsaRecordSchema.parse(JSON.parse(Buffer.from(raw).toString('utf8')));
  const params = parsePublicParams(rec.params);
  return { params, share: parseKeyShare(params, rec.share), session: rec.session };
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

/** The SHA-256 of a held share's public package (key-package.ts packageDigest): what backups, restorations and revivals name it by. */
export const heldPackageDigest = (h: Held): string => packageDigest(keyPackageSchema.parse(packageOf(h)));
