// Verify-before-release: every combined signature is checked against the key's public key
// (its SPKI, as GetPublicKey returns it) before the gateway lets it out. The same checks serve
// KMS Verify and PKCS#11 C_Verify, so they accept exactly what AWS KMS accepts:
// - ECDSA: strict DER (KMS) or raw r‖s (PKCS#11); high-s is valid, as KMS does not normalise s.
// - RSA: PKCS#1 v1.5 by re-encoding and comparing (RFC 8017 §8.2.2, so no ASN.1 parsing of the
//   padding), PSS with MGF1 over the same hash and salt length = digest length.
// - Ed25519 (pure, RAW only) and Ed25519ph (SHA-512 DIGEST only), RFC 8032 strict decoding.
// Caller bugs (spec/algorithm/message type/digest length) throw VerifyError; bad keys and bad
// signatures return false.

import { constants, publicDecrypt, timingSafeEqual } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { eddsa } from '@noble/curves/abstract/edwards.js';
import { sha512 } from '@noble/hashes/sha2.js';
import {
  ALGORITHM_INFO,
  EC_CURVES,
  HASHES,
  HASH_LENGTH,
  SIGNING_ALGORITHMS_BY_SPEC,
  VerifyError,
  isKeySpec,
  isSigningAlgorithm,
  parseSpki,
  type AlgorithmInfo,
  type EcKeySpec,
  type HashName,
  type KeySpec,
  type MessageType,
  type ParsedPublicKey,
  type SigningAlgorithm,
} from '../contract/keys/specs.js';

export { VerifyError } from '../contract/keys/specs.js';

export interface VerifyParams {
  keySpec: KeySpec;
  /** DER SubjectPublicKeyInfo of the key. */
  spki: Uint8Array;
  algorithm: SigningAlgorithm;
  /** RAW: `message` is the message; DIGEST: it is the algorithm's hash of the message. */
  messageType: MessageType;
  message: Uint8Array;
  signature: Uint8Array;
  /** ECDSA only (the other schemes have one encoding): 'der' (KMS, default) or 'raw' r‖s (PKCS#11). */
  signatureFormat?: 'der' | 'raw';
}

/**
 * The checks KMS makes on a Sign/Verify request before any cryptography: known key spec and
 * algorithm, algorithm allowed for the spec, message type allowed for the algorithm, and a
 * DIGEST of the algorithm's digest length. Throws VerifyError; returns the algorithm's info.
 */
export function checkSigningRequest(
  keySpec: KeySpec,
  algorithm: SigningAlgorithm,
  messageType: MessageType,
  message: Uint8Array,
): AlgorithmInfo {
  if (!isKeySpec(keySpec)) throw new VerifyError('unknown-key-spec', `unknown key spec ${String(keySpec)}`);
  if (!isSigningAlgorithm(algorithm)) {
    throw new VerifyError('unknown-algorithm', `unknown signing algorithm ${String(algorithm)}`);
  }
  if (!SIGNING_ALGORITHMS_BY_SPEC[keySpec].includes(algorithm)) {
    throw new VerifyError('algorithm-not-for-key-spec', `${algorithm} is not valid for ${keySpec}`);
  }
  const info = ALGORITHM_INFO[algorithm];
  if (!info.messageTypes.includes(messageType)) {
    throw new VerifyError('message-type-not-allowed', `${algorithm} does not take message type ${String(messageType)}`);
  }
  if (!(message instanceof Uint8Array)) throw new VerifyError('bad-parameter', 'message must be bytes');
  if (messageType === 'DIGEST' && message.length !== info.digestLength) {
    throw new VerifyError('bad-digest-length', `${algorithm} needs a ${info.digestLength}-byte digest, got ${message.length}`);
  }
  return info;
}

/** True iff `signature` is a valid signature by the key in `spki`. See the module comment. */
export function verifySignature(p: VerifyParams): boolean {
  const info = checkSigningRequest(p.keySpec, p.algorithm, p.messageType, p.message);
  if (!(p.signature instanceof Uint8Array) || !(p.spki instanceof Uint8Array)) {
    throw new VerifyError('bad-parameter', 'signature and spki must be bytes');
  }
  const format = p.signatureFormat ?? 'der';
  if (format !== 'der' && format !== 'raw') throw new VerifyError('bad-parameter', `unknown signature format ${String(format)}`);

  let key: ParsedPublicKey;
  try {
    key = parseSpki(p.spki);
  } catch {
    return false;
  }
  if (key.keySpec !== p.keySpec) return false;
  try {
    const digest = () => (p.messageType === 'DIGEST' ? p.message : HASHES[info.hash](p.message));
    switch (info.scheme) {
      case 'ECDSA':
        if (key.kind !== 'ec') return false;
        return EC_CURVES[key.keySpec].verify(p.signature, digest(), key.point, {
          prehash: false,
          lowS: false,
          format: format === 'raw' ? 'compact' : 'der',
        });
      case 'ED25519':
        if (key.kind !== 'ed25519') return false;
        return ed25519.verify(p.signature, p.message, key.publicKey, { zip215: false });
      case 'ED25519_PH':
        if (key.kind !== 'ed25519') return false;
        return ed25519phDigest.verify(p.signature, digest(), key.publicKey, { zip215: false });
      case 'RSASSA_PKCS1_V1_5':
      case 'RSASSA_PSS': {
        if (key.kind !== 'rsa') return false;
        const k = Math.ceil(key.modulusBits / 8);
        if (p.signature.length !== k) return false; // RSASSA-*-VERIFY step 1
        // RSAVP1: s^e mod n. OpenSSL rejects s >= n (which the catch below turns into false).
        const em = publicDecrypt({ key: key.key, padding: constants.RSA_NO_PADDING }, p.signature);
        return info.scheme === 'RSASSA_PSS'
          ? emsaPssVerify(em, key.modulusBits - 1, info.hash, digest())
          : emsaPkcs1Matches(em, info.hash, digest());
      }
    }
  } catch {
    return false; // undecodable signature or point
  }
}

// Ed25519ph over a caller-supplied SHA-512 digest: RFC 8032 §5.1 with PH(M) given rather than
// computed, i.e. dom2(phflag=1, empty context) and an identity prehash. noble's ed25519ph
// always hashes its input itself, so it cannot take the digest.
const ed25519phDigest = eddsa(ed25519.Point, sha512, {
  domain: (data: Uint8Array, ctx: Uint8Array, phflag: boolean) => {
    if (!phflag || ctx.length !== 0) throw new Error('Ed25519ph with empty context only');
    return Buffer.concat([Buffer.from('SigEd25519 no Ed25519 collisions', 'latin1'), Uint8Array.of(1, 0), data]);
  },
  prehash: (digest: Uint8Array) => digest,
});

// DER DigestInfo prefixes, RFC 8017 §9.2 note 1 (AlgorithmIdentifier with NULL parameters).
const DIGEST_INFO_PREFIX: Readonly<Record<HashName, Buffer>> = {
  'SHA-256': Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  'SHA-384': Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  'SHA-512': Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/** EMSA-PKCS1-v1_5: build the one valid encoding of the digest and compare (RFC 8017 §8.2.2). */
function emsaPkcs1Matches(em: Uint8Array, hash: HashName, digest: Uint8Array): boolean {
  const t = Buffer.concat([DIGEST_INFO_PREFIX[hash], digest]);
  const psLen = em.length - t.length - 3;
  if (psLen < 8) return false;
  const expected = Buffer.concat([Uint8Array.of(0, 1), Buffer.alloc(psLen, 0xff), Uint8Array.of(0), t]);
  return timingSafeEqual(expected, em);
}

function mgf1(hash: HashName, seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const counter = new Uint8Array(4);
  for (let off = 0, c = 0; off < length; off += HASH_LENGTH[hash], c++) {
    new DataView(counter.buffer).setUint32(0, c);
    const block = HASHES[hash](Buffer.concat([seed, counter]));
    out.set(block.subarray(0, Math.min(block.length, length - off)), off);
  }
  return out;
}

/**
 * EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with MGF1 over `hash` and sLen = hLen, as KMS signs.
 * `rep` is the RSAVP1 output (k bytes); EM is its last ceil(emBits/8) bytes.
 */
function emsaPssVerify(rep: Uint8Array, emBits: number, hash: HashName, mHash: Uint8Array): boolean {
  const hLen = mHash.length;
  const sLen = hLen;
  const emLen = Math.ceil(emBits / 8);
  if (rep.subarray(0, rep.length - emLen).some((b) => b !== 0)) return false;
  const em = rep.subarray(rep.length - emLen);
  if (emLen < hLen + sLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const maskedDb = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = 0xff >> (8 * emLen - emBits); // bits of the first byte that belong to EM
  if ((maskedDb[0]! & ~topMask) !== 0) return false;
  const db = mgf1(hash, h, maskedDb.length).map((m, i) => m ^ maskedDb[i]!);
  db[0]! &= topMask;
  const psLen = emLen - hLen - sLen - 2;
  if (db.subarray(0, psLen).some((b) => b !== 0) || db[psLen] !== 0x01) return false;
  const salt = db.subarray(db.length - sLen);
  const h2 = HASHES[hash](Buffer.concat([new Uint8Array(8), mHash, salt]));
  return timingSafeEqual(h, h2);
}

/** ECDSA signature DER → raw r‖s (fixed width). Throws VerifyError on non-DER or r, s ∉ [1, n). */
export function ecdsaDerToRaw(keySpec: EcKeySpec, der: Uint8Array): Uint8Array {
  return convertEcdsa(keySpec, der, 'der', 'compact');
}

/** ECDSA signature raw r‖s → DER. Throws VerifyError on a wrong length or r, s ∉ [1, n). */
export function ecdsaRawToDer(keySpec: EcKeySpec, raw: Uint8Array): Uint8Array {
  return convertEcdsa(keySpec, raw, 'compact', 'der');
}

function convertEcdsa(keySpec: EcKeySpec, sig: Uint8Array, from: 'der' | 'compact', to: 'der' | 'compact') {
  const curve = EC_CURVES[keySpec];
  if (!curve) throw new VerifyError('unknown-key-spec', `${String(keySpec)} is not an ECDSA key spec`);
  try {
    return curve.Signature.fromBytes(sig, from).toBytes(to);
  } catch {
    throw new VerifyError('malformed-signature', `not a ${from === 'der' ? 'DER' : 'raw'} ${keySpec} ECDSA signature`);
  }
}
