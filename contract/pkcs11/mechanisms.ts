// PKCS#11 mechanisms → the cluster's (AWS-named) algorithms.
//
// Signing (the module hashes for the CKM_SHA*_ mechanisms and Ed25519ph and says so; the same
// mechanisms also take the raw data):
//   CKM_SHA{256,384,512}_RSA_PKCS      → RSASSA_PKCS1_V1_5_SHA_*
//   CKM_RSA_PKCS                       → a DigestInfo of SHA-256/384/512 (with or without the
//                                        NULL parameters): RSASSA_PKCS1_V1_5_SHA_* over its
//                                        digest; any other input up to k − 11 bytes (SHA-1
//                                        DigestInfo, MD5‖SHA-1): RSASSA_PKCS1_V1_5_RAW, the
//                                        type-1 padding around it, as an HSM signs it
//   CKM_RSA_PKCS_PSS                   → input is the digest; params must be MGF1 over the same
//                                        hash with sLen = hLen: RSASSA_PSS_SHA_*
//   CKM_SHA{256,384,512}_RSA_PKCS_PSS  → RSASSA_PSS_SHA_*
//   CKM_ECDSA                          → input is a SHA-2 digest; ECDSA uses its leftmost
//                                        bits up to the order's length (bits2int), so any SHA-2
//                                        digest maps onto the curve's algorithm (ECDSA_SHA_256
//                                        on P-256/secp256k1, ECDSA_SHA_384 on P-384,
//                                        ECDSA_SHA_512 on P-521) as its leftmost digest-length
//                                        bytes, zero-padded on the left if shorter (P-521: a
//                                        64-byte digest, never 66 bytes, whose extra 7 bits
//                                        bits2int would shift away)
//   CKM_ECDSA_SHA{256,384,512}         → the same over the module's digest
//   CKM_EDDSA                          → ED25519_SHA_512 (RAW); with CK_EDDSA_PARAMS.phFlag:
//                                        ED25519_PH_SHA_512 over SHA-512(data)
// ECDSA signatures leave as raw r‖s (PKCS#11), not DER (KMS).
// Decryption: CKM_RSA_PKCS → RSAES_PKCS1_V1_5; CKM_RSA_PKCS_OAEP (SHA-1 or SHA-256, MGF1 over
// the same hash, empty label) → RSAES_OAEP_SHA_1 / RSAES_OAEP_SHA_256. Encryption and
// verification need only the public key and run in the gateway.
import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import { z } from 'zod';
import { ALGORITHM_INFO, DIGEST_INFO_PREFIX, HASHES, HASH_LENGTH, RSA_MODULUS_BITS, RSA_PKCS1_RAW, type ClusterSigningAlgorithm, type EcKeySpec, type HashName, type KeySpec, type MessageType, type RsaKeySpec, type SigningAlgorithm } from '../keys/specs.js';
import type { EncryptionAlgorithm } from '../keys/specs.js';
import { CKG, CKM, CKR, P11Error } from './ck.js';
import type { Value } from './wire.js';

const HASH_OF_CKM: Readonly<Record<number, HashName>> = { [CKM.SHA256]: 'SHA-256', [CKM.SHA384]: 'SHA-384', [CKM.SHA512]: 'SHA-512' };
const MGF_OF: Readonly<Record<HashName, number>> = { 'SHA-256': CKG.MGF1_SHA256, 'SHA-384': CKG.MGF1_SHA384, 'SHA-512': CKG.MGF1_SHA512 };
const SUFFIX = { 'SHA-256': '256', 'SHA-384': '384', 'SHA-512': '512' } as const;

// DER DigestInfo prefixes: RFC 8017's (NULL parameters) and, as some callers build them, without the NULL.
const DIGEST_INFO: readonly [HashName, Buffer][] = [
  ...(['SHA-256', 'SHA-384', 'SHA-512'] as const).map((h): [HashName, Buffer] => [h, Buffer.from(DIGEST_INFO_PREFIX[h])]),
  ...(
    [
      ['SHA-256', '302f300b06096086480165030402010420'],
      ['SHA-384', '303f300b06096086480165030402020430'],
      ['SHA-512', '304f300b06096086480165030402030440'],
    ] as const
  ).map(([h, p]): [HashName, Buffer] => [h, Buffer.from(p, 'hex')]),
];

const EC_ALGORITHM: Readonly<Record<EcKeySpec, SigningAlgorithm>> = {
  ECC_NIST_P256: 'ECDSA_SHA_256',
  ECC_SECG_P256K1: 'ECDSA_SHA_256',
  ECC_NIST_P384: 'ECDSA_SHA_384',
  ECC_NIST_P521: 'ECDSA_SHA_512',
};

const pssParams = z.tuple([z.number(), z.number(), z.number()]);
const oaepParams = z.tuple([z.number(), z.number()]);
const eddsaParams = z.tuple([z.union([z.literal(0), z.literal(1)])]);
const noParams = z.tuple([]);

function params<T>(schema: z.ZodType<T>, v: Value[], mech: number): T {
  const p = schema.safeParse(v);
  if (!p.success) throw new P11Error(CKR.MECHANISM_PARAM_INVALID, `mechanism 0x${mech.toString(16)}: malformed parameters`);
  return p.data;
}

export interface SignPlan {
  algorithm: ClusterSigningAlgorithm;
  messageType: MessageType;
  message: Buffer;
  /** ECDSA: the signature travels as raw r‖s */
  ecdsa: EcKeySpec | undefined;
}

const keyKind = (spec: KeySpec) => (spec.startsWith('RSA_') ? 'rsa' : spec === 'ECC_NIST_EDWARDS25519' ? 'ed25519' : 'ec');

function requireKind(spec: KeySpec, kind: 'rsa' | 'ec' | 'ed25519', mech: number): void {
  if (keyKind(spec) !== kind) throw new P11Error(CKR.KEY_TYPE_INCONSISTENT, `mechanism 0x${mech.toString(16)} does not take a ${spec} key`);
}

/** The digest the module sent, or the digest of the raw data it sent. */
function digestOf(hash: HashName, input: Buffer, isDigest: boolean): Buffer {
  if (!isDigest) return Buffer.from(HASHES[hash](input));
  if (input.length !== HASH_LENGTH[hash]) throw new P11Error(CKR.DATA_LEN_RANGE, `expected a ${hash} digest of ${HASH_LENGTH[hash]} bytes, got ${input.length}`);
  return input;
}

function pssHash(v: Value[], mech: number): HashName {
  const [hashAlg, mgf, sLen] = params(pssParams, v, mech);
  const hash = HASH_OF_CKM[hashAlg];
  if (!hash) throw new P11Error(CKR.MECHANISM_PARAM_INVALID, 'PSS hash must be SHA-256, SHA-384 or SHA-512');
  if (mgf !== MGF_OF[hash]) throw new P11Error(CKR.MECHANISM_PARAM_INVALID, 'PSS MGF must be MGF1 over the same hash');
  if (sLen !== HASH_LENGTH[hash]) throw new P11Error(CKR.MECHANISM_PARAM_INVALID, 'PSS salt length must equal the hash length');
  return hash;
}

function ecdsaPlan(spec: KeySpec, digest: Buffer, mech: number): SignPlan {
  requireKind(spec, 'ec', mech);
  const ec = spec as EcKeySpec;
  if (![28, 32, 48, 64].includes(digest.length)) throw new P11Error(CKR.DATA_LEN_RANGE, `CKM_ECDSA takes a SHA-2 digest, not ${digest.length} bytes`);
  // The algorithm's digest length: the order's bytes on P-256/secp256k1/P-384, 64 on P-521.
  const algorithm = EC_ALGORITHM[ec];
  const n = ALGORITHM_INFO[algorithm].digestLength;
  const message = digest.length >= n ? digest.subarray(0, n) : Buffer.concat([Buffer.alloc(n - digest.length), digest]);
  return { algorithm, messageType: 'DIGEST', message: Buffer.from(message), ecdsa: ec };
}

export function planSignature(mech: number, v: Value[], input: Buffer, isDigest: boolean, spec: KeySpec): SignPlan {
  const plain = (algorithm: ClusterSigningAlgorithm, messageType: MessageType, message: Buffer): SignPlan => ({ algorithm, messageType, message, ecdsa: undefined });
  const rawOnly = () => {
    if (isDigest) throw new P11Error(CKR.MECHANISM_PARAM_INVALID, `mechanism 0x${mech.toString(16)} takes its input as it is`);
  };
  switch (mech) {
    case CKM.RSA_PKCS: {
      requireKind(spec, 'rsa', mech);
      params(noParams, v, mech);
      rawOnly();
      const match = DIGEST_INFO.find(([h, prefix]) => input.length === prefix.length + HASH_LENGTH[h] && input.subarray(0, prefix.length).equals(prefix));
      if (match) return plain(`RSASSA_PKCS1_V1_5_SHA_${SUFFIX[match[0]]}`, 'DIGEST', input.subarray(match[1].length));
      const most = RSA_MODULUS_BITS[spec as RsaKeySpec] / 8 - 11;
      if (input.length === 0 || input.length > most) throw new P11Error(CKR.DATA_LEN_RANGE, `CKM_RSA_PKCS signs 1 to ${most} bytes with a ${spec} key, not ${input.length}`);
      return plain(RSA_PKCS1_RAW, 'DIGEST', input);
    }
    case CKM.SHA256_RSA_PKCS:
    case CKM.SHA384_RSA_PKCS:
    case CKM.SHA512_RSA_PKCS: {
      requireKind(spec, 'rsa', mech);
      params(noParams, v, mech);
      const hash = (['SHA-256', 'SHA-384', 'SHA-512'] as const)[mech - CKM.SHA256_RSA_PKCS]!;
      return plain(`RSASSA_PKCS1_V1_5_SHA_${SUFFIX[hash]}`, 'DIGEST', digestOf(hash, input, isDigest));
    }
    case CKM.RSA_PKCS_PSS: {
      requireKind(spec, 'rsa', mech);
      rawOnly();
      const hash = pssHash(v, mech);
      if (input.length !== HASH_LENGTH[hash]) throw new P11Error(CKR.DATA_LEN_RANGE, `CKM_RSA_PKCS_PSS with ${hash} takes a ${HASH_LENGTH[hash]}-byte digest, not ${input.length} bytes`);
      return plain(`RSASSA_PSS_SHA_${SUFFIX[hash]}`, 'DIGEST', input);
    }
    case CKM.SHA256_RSA_PKCS_PSS:
    case CKM.SHA384_RSA_PKCS_PSS:
    case CKM.SHA512_RSA_PKCS_PSS: {
      requireKind(spec, 'rsa', mech);
      const hash = pssHash(v, mech);
      if (hash !== (['SHA-256', 'SHA-384', 'SHA-512'] as const)[mech - CKM.SHA256_RSA_PKCS_PSS]) {
        throw new P11Error(CKR.MECHANISM_PARAM_INVALID, "PSS hashAlg differs from the mechanism's hash");
      }
      return plain(`RSASSA_PSS_SHA_${SUFFIX[hash]}`, 'DIGEST', digestOf(hash, input, isDigest));
    }
    case CKM.ECDSA:
      params(noParams, v, mech);
      rawOnly();
      return ecdsaPlan(spec, input, mech);
    case CKM.ECDSA_SHA256:
    case CKM.ECDSA_SHA384:
    case CKM.ECDSA_SHA512: {
      params(noParams, v, mech);
      const hash = (['SHA-256', 'SHA-384', 'SHA-512'] as const)[mech - CKM.ECDSA_SHA256]!;
      return ecdsaPlan(spec, digestOf(hash, input, isDigest), mech);
    }
    case CKM.EDDSA: {
      requireKind(spec, 'ed25519', mech);
      const [ph] = params(eddsaParams, v, mech);
      if (ph) return plain('ED25519_PH_SHA_512', 'DIGEST', digestOf('SHA-512', input, isDigest));
      rawOnly();
      return plain('ED25519_SHA_512', 'RAW', input);
    }
    default:
      throw new P11Error(CKR.MECHANISM_INVALID, `mechanism 0x${mech.toString(16)} does not sign`);
  }
}

/** OAEP hash from CK_RSA_PKCS_OAEP_PARAMS (already reduced to [hashAlg, mgf] by the module). */
function oaepHash(v: Value[]): 'sha1' | 'sha256' {
  const [hashAlg, mgf] = params(oaepParams, v, CKM.RSA_PKCS_OAEP);
  if (hashAlg === CKM.SHA_1 && mgf === CKG.MGF1_SHA1) return 'sha1';
  if (hashAlg === CKM.SHA256 && mgf === CKG.MGF1_SHA256) return 'sha256';
  throw new P11Error(CKR.MECHANISM_PARAM_INVALID, 'OAEP must be SHA-1 with MGF1-SHA-1 or SHA-256 with MGF1-SHA-256');
}

export function planDecryption(mech: number, v: Value[], spec: KeySpec): EncryptionAlgorithm {
  requireKind(spec, 'rsa', mech);
  if (mech === CKM.RSA_PKCS) {
    params(noParams, v, mech);
    return 'RSAES_PKCS1_V1_5';
  }
  if (mech === CKM.RSA_PKCS_OAEP) return oaepHash(v) === 'sha1' ? 'RSAES_OAEP_SHA_1' : 'RSAES_OAEP_SHA_256';
  throw new P11Error(CKR.MECHANISM_INVALID, `mechanism 0x${mech.toString(16)} does not decrypt`);
}

/** RSA encryption with the public key (RFC 8017 §7.1.1/§7.2.1 length limits first). */
export function encrypt(mech: number, v: Value[], data: Buffer, spki: Buffer, spec: KeySpec): Buffer {
  requireKind(spec, 'rsa', mech);
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const k = Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  if (mech === CKM.RSA_PKCS) {
    params(noParams, v, mech);
    if (data.length > k - 11) throw new P11Error(CKR.DATA_LEN_RANGE, `PKCS#1 v1.5 encrypts at most ${k - 11} bytes with this key`);
    return publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, data);
  }
  if (mech === CKM.RSA_PKCS_OAEP) {
    const hash = oaepHash(v);
    const max = k - 2 * (hash === 'sha1' ? 20 : 32) - 2;
    if (data.length > max) throw new P11Error(CKR.DATA_LEN_RANGE, `OAEP-${hash} encrypts at most ${max} bytes with this key`);
    return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, data);
  }
  throw new P11Error(CKR.MECHANISM_INVALID, `mechanism 0x${mech.toString(16)} does not encrypt`);
}
