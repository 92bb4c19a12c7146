// Verify-before-release: every combined signature is checked against the key's SPKI (as
// GetPublicKey returns it) before the gateway lets it out; the same checks serve KMS Verify and
// PKCS#11 C_Verify, so they accept exactly what AWS KMS accepts:
// - ECDSA over the digest: strict DER (KMS, @noble/curves' parser) or raw r‖s (PKCS#11); high-s
//   valid; the threshold side's verifier (SEC 1 §4.1.4 with a per-key table of multiples).
// - Ed25519 (pure, RAW only; OpenSSL, ~10× faster than JS) and Ed25519ph (SHA-512 DIGEST only,
//   @noble/curves: OpenSSL takes no prehashed input), RFC 8032 strict decoding.
// - RSA (node:crypto), PSS with MGF1 over the same hash and salt length = digest length. A RAW
//   message goes to crypto.verify. A DIGEST (KMS MessageType DIGEST, CKM_RSA_PKCS*) cannot, as
//   crypto.verify hashes its input: PKCS#1 v1.5 takes publicDecrypt and compares the DigestInfo
//   (RFC 8017 §8.2.2); PSS keeps a hand EMSA-PSS-VERIFY (§9.1.2, ~35 lines below) as nothing well
//   kept takes a PSS digest: not node:crypto or WebCrypto, @noble has no RSA, node-forge's pure-JS
//   RSA has had lenient-verification advisories. Wycheproof rsa_pss_2048_sha256_mgf1_32 (DIGEST
//   mode) and a crafted encoding per rule pin it (test/gateway/verify.test.ts).
// - PKCS#11's raw PKCS#1 v1.5 (RSASSA_PKCS1_V1_5_RAW): publicDecrypt must recover exactly the
//   bytes given (any T up to k − 11 bytes).
// Caller bugs (spec/algorithm/message type/digest length) throw VerifyError; bad keys and
// signatures return false.

import { constants, publicDecrypt, timingSafeEqual, verify as nodeVerify } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { eddsa } from '@noble/curves/abstract/edwards.js';
import { sha512 } from '@noble/hashes/sha2.js';
import {
  ALGORITHM_INFO,
  DIGEST_INFO_PREFIX,
  EC_CURVES,
  ECDSA_CURVE_OF_SPEC,
  HASHES,
  HASH_LENGTH,
  SIGNING_ALGORITHMS_BY_SPEC,
  VerifyError,
  isKeySpec,
  isRsaKeySpec,
  isSigningAlgorithm,
  RSA_PKCS1_RAW,
  type AlgorithmInfo,
  type ClusterSigningAlgorithm,
  type EcKeySpec,
  type HashName,
  type KeySpec,
  type MessageType,
  type SigningAlgorithm,
} from '../contract/keys/specs.js';
import { parseSpki, type ParsedPublicKey } from '../contract/keys/spki.js';
import { ed25519Verify } from '../contract/identity/curve25519.js';
import { ecdsaVerify } from '../signers/protocols/ecdsa/signature.js';

export { VerifyError } from '../contract/keys/specs.js';

export interface VerifyParams {
  keySpec: KeySpec;
  /** DER SubjectPublicKeyInfo of the key. */
  spki: Uint8Array;
  algorithm: ClusterSigningAlgorithm;
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
  if (p.algorithm === RSA_PKCS1_RAW) return verifyRsaRaw(p);
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
        return ecdsaVerify(
          ECDSA_CURVE_OF_SPEC[key.keySpec],
          EC_CURVES[key.keySpec].Point.fromBytes(key.point).toBytes(true),
          digest(),
          format === 'raw' ? p.signature : ecdsaDerToRaw(key.keySpec, p.signature),
        );
      case 'ED25519':
        if (key.kind !== 'ed25519') return false;
        return ed25519Verify(p.signature, p.message, key.publicKey);
      case 'ED25519_PH':
        if (key.kind !== 'ed25519') return false;
        return ed25519phDigest.verify(p.signature, digest(), key.publicKey, { zip215: false });
      case 'RSASSA_PKCS1_V1_5':
      case 'RSASSA_PSS':
        if (key.kind !== 'rsa') return false;
        // RSASSA-*-VERIFY step 1: exactly k bytes (OpenSSL would take a shorter s). OpenSSL
        // rejects s >= n, which the catch below turns into false.
        if (p.signature.length !== Math.ceil(key.modulusBits / 8)) return false;
        return p.messageType === 'RAW' ? verifyRsaMessage(key, info, p.message, p.signature) : verifyRsaDigest(key, info, p.message, p.signature);
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

type RsaKey = Extract<ParsedPublicKey, { kind: 'rsa' }>;
const NODE_HASH: Readonly<Record<HashName, string>> = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

/** RSASSA-PSS or -PKCS1-v1_5 over the message itself: node:crypto hashes and checks it all. */
function verifyRsaMessage(key: RsaKey, info: AlgorithmInfo, message: Uint8Array, signature: Uint8Array): boolean {
  const pss = info.scheme === 'RSASSA_PSS';
  return nodeVerify(NODE_HASH[info.hash], message, {
    key: key.key,
    padding: pss ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING,
    ...(pss ? { saltLength: info.digestLength } : {}),
  }, signature);
}

/** RSASSA-PSS or -PKCS1-v1_5 over a given digest (see the module comment for the split). */
function verifyRsaDigest(key: RsaKey, info: AlgorithmInfo, digest: Uint8Array, signature: Uint8Array): boolean {
  if (info.scheme === 'RSASSA_PSS') {
    const rep = publicDecrypt({ key: key.key, padding: constants.RSA_NO_PADDING }, signature); // RSAVP1
    return emsaPssVerify(rep, key.modulusBits - 1, info.hash, digest);
  }
  // T must be the one DER DigestInfo of the digest.
  return recoversT(key, Buffer.concat([DIGEST_INFO_PREFIX[info.hash], digest]), signature);
}

/** RSAVP1 and the 00 01 FF…FF 00 padding (at least 8 FF) by OpenSSL; then T must be `expected`. */
function recoversT(key: RsaKey, expected: Uint8Array, signature: Uint8Array): boolean {
  const t = publicDecrypt({ key: key.key, padding: constants.RSA_PKCS1_PADDING }, signature);
  return t.length === expected.length && timingSafeEqual(t, expected);
}

/** PKCS#11's raw CKM_RSA_PKCS: the signature's type-1 block holds exactly the bytes given. */
function verifyRsaRaw(p: VerifyParams): boolean {
  if (!isRsaKeySpec(p.keySpec)) throw new VerifyError('algorithm-not-for-key-spec', `${p.algorithm} is not valid for ${p.keySpec}`);
  if (p.messageType !== 'DIGEST') throw new VerifyError('message-type-not-allowed', `${p.algorithm} takes its input as it is (DIGEST)`);
  try {
    const key = parseSpki(p.spki);
    return key.kind === 'rsa' && key.keySpec === p.keySpec && p.signature.length === Math.ceil(key.modulusBits / 8) && recoversT(key, p.message, p.signature);
  } catch {
    return false;
  }
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
 * EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with MGF1 over `hash` and sLen = hLen, as KMS signs; for
 * a given digest only (a message goes to node:crypto, see the module comment).
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
