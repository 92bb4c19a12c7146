// What the coordinator asks the signers to compute, and the input x it implies. Both sides call
// requestInput: the coordinator after encoding, each signer before computing its partial, so a
// signer checks for itself that the representative it raises to its share encodes the digest it
// was told about (PKCS#1 v1.5 by recomputing it, PSS by EMSA-PSS-VERIFY), and a later policy can
// judge the digest rather than an opaque number. Hash `none` (PKCS#1 v1.5 only) is PKCS#11's
// raw CKM_RSA_PKCS: the "digest" is the whole T the type-1 block carries.

import { z } from 'zod';
import { ProtocolError } from '../common.js';
import { fromHex, hexSchema, type Rng } from '../../../contract/bytes.js';
import { bitLength, gcd } from './arith.js';
import { bytesToBigInt } from '../integers.js';
import { modulusBytes, type RsaPublicParams } from './key.js';
import { EncodingError, emsaPkcs1v15Encode, emsaPssEncode, emsaPssVerify, hashLength, pkcs1v15Block } from './padding.js';

export type SignScheme = 'pkcs1v15' | 'pss';
export type DecryptPadding = 'oaep-sha1' | 'oaep-sha256' | 'pkcs1v15';

const sessionSchema = z.string().min(1).max(128);
const bytesHex = hexSchema.max(2 * 1024);

export const rsaRequestSchema = z.discriminatedUnion('op', [
  z.object({
    session: sessionSchema,
    op: z.literal('sign'),
    scheme: z.enum(['pkcs1v15', 'pss']),
    hash: z.enum(['sha256', 'sha384', 'sha512', 'none']),
    digest: hexSchema.min(2).max(2 * 512),
    representative: bytesHex,
  }),
  z.object({
    session: sessionSchema,
    op: z.literal('decrypt'),
    padding: z.enum(['oaep-sha1', 'oaep-sha256', 'pkcs1v15']),
    label: hexSchema.max(2 * 4096).optional(),
    ciphertext: bytesHex,
  }),
]);
export type RsaRequest = z.infer<typeof rsaRequestSchema>;
export type RsaSignRequest = Extract<RsaRequest, { op: 'sign' }>;
export type RsaDecryptRequest = Extract<RsaRequest, { op: 'decrypt' }>;

/** PSS's emBits = modBits − 1 (RFC 8017 §8.1.1). */
const pssEmBits = (p: RsaPublicParams): number => bitLength(p.n) - 1;

/** The encoded message representative EM for a digest; PSS takes its salt from the Rng. */
export function encodeRepresentative(
  params: RsaPublicParams,
  scheme: SignScheme,
  hash: RsaSignRequest['hash'],
  digest: Uint8Array,
  rng: Rng,
): Uint8Array {
  if (hash === 'none') {
    if (scheme !== 'pkcs1v15') throw new EncodingError('only PKCS#1 v1.5 signs a block as given');
    return pkcs1v15Block(digest, modulusBytes(params));
  }
  if (scheme === 'pkcs1v15') return emsaPkcs1v15Encode(digest, hash, modulusBytes(params));
  return emsaPssEncode(digest, hash, pssEmBits(params), rng(hashLength(hash)));
}

/** Parses a request (boundary) and returns it typed; throws ProtocolError('malformed'). */
export function parseRequest(json: unknown): RsaRequest {
  const r = rsaRequestSchema.safeParse(json);
  if (!r.success) throw new ProtocolError('malformed', `RSA request: ${r.error.issues[0]?.path.join('.')} ${r.error.issues[0]?.message}`);
  return r.data;
}

/**
 * The integer x the partials are computed on: the signature representative after checking that
 * it encodes the digest, or the ciphertext after checking its length (exactly k bytes) and range.
 * x must be a unit mod n (anything else would factor n; 0 is the only practical case).
 */
export function requestInput(params: RsaPublicParams, req: RsaRequest): bigint {
  const bad = (msg: string): never => {
    throw new ProtocolError('bad-parameters', msg);
  };
  const k = modulusBytes(params);
  let em: Uint8Array;
  if (req.op === 'sign') {
    const digest = fromHex(req.digest);
    em = fromHex(req.representative);
    let ok: boolean;
    if (req.hash === 'none') {
      if (req.scheme !== 'pkcs1v15' || digest.length > k - 11) bad('a block as given is signed with PKCS#1 v1.5 only, up to k − 11 bytes');
      ok = Buffer.from(pkcs1v15Block(digest, k)).equals(Buffer.from(em));
    } else {
      if (digest.length !== hashLength(req.hash)) bad(`${req.hash} digest must be ${hashLength(req.hash)} bytes`);
      ok = req.scheme === 'pkcs1v15' ? Buffer.from(emsaPkcs1v15Encode(digest, req.hash, k)).equals(Buffer.from(em)) : emsaPssVerify(digest, req.hash, pssEmBits(params), em);
    }
    if (!ok) bad(`representative is not the ${req.scheme} encoding of the digest`);
  } else {
    em = fromHex(req.ciphertext);
    if (em.length !== k) bad(`ciphertext must be ${k} bytes`);
  }
  const x = bytesToBigInt(em);
  if (x >= params.n) bad('input is not reduced mod n');
  if (x === 0n || gcd(x, params.n) !== 1n) bad('input is not a unit mod n');
  return x;
}

