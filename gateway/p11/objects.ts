// The token's objects as the module sees them: every asymmetric key as a private-key and a
// public-key object, and every stored certificate, each with all its attributes encoded for
// the module's platform (CK_ULONG size and byte order). The module caches these and answers
// C_GetAttributeValue itself; it gets them again at each C_FindObjectsInit.
import { createHash } from 'node:crypto';
import type { KeyRecord } from '../keys.js';
import { EC_FIELD_BYTES, type KeySpec } from '../../contract/keys/specs.js';
import { parseSpki, spkiFromRawPublicKey, spkiFromRsaPublicKey } from '../../contract/keys/spki.js';
import { CK_UNAVAILABLE_INFORMATION, CKA, CKC_X_509, CKK, CKM, CKO, CKR, P11Error, SENSITIVE_PRIVATE } from '../../contract/pkcs11/ck.js';
import { EC_PARAMS, keySpecOfEcParams } from '../../contract/pkcs11/ec-params.js';
import type { StoredCertificate } from './store.js';
import type { Abi, Value } from '../../contract/pkcs11/wire.js';
import { parseCertificate } from './x509.js';

export interface P11Object {
  /** the module's name for the object: k:<keyId>:pub|priv, c:<certificateId> */
  uid: string;
  attrs: Map<number, Buffer>;
  sensitive: readonly number[];
  /** longest output (signature, ciphertext, plaintext) the key produces; 0 for certificates */
  outLen: number;
  /** every name CKA_LABEL matches (a key with several aliases answers to each) */
  labels: readonly Buffer[];
}

/** DER OCTET STRING around `b` (short and long length forms). */
function octetString(b: Uint8Array): Buffer {
  const len = b.length < 0x80 ? Buffer.of(b.length) : b.length < 0x100 ? Buffer.of(0x81, b.length) : Buffer.of(0x82, b.length >> 8, b.length & 0xff);
  return Buffer.concat([Buffer.of(0x04), len, b]);
}

const unsigned = (v: bigint) => {
  const h = v.toString(16);
  return Buffer.from(h.length % 2 ? '0' + h : h, 'hex');
};

const RSA_SIGN_MECHANISMS = [
  CKM.RSA_PKCS, CKM.RSA_PKCS_PSS, CKM.SHA256_RSA_PKCS, CKM.SHA384_RSA_PKCS, CKM.SHA512_RSA_PKCS,
  CKM.SHA256_RSA_PKCS_PSS, CKM.SHA384_RSA_PKCS_PSS, CKM.SHA512_RSA_PKCS_PSS,
];
const RSA_DECRYPT_MECHANISMS = [CKM.RSA_PKCS, CKM.RSA_PKCS_OAEP];
const ECDSA_MECHANISMS = [CKM.ECDSA, CKM.ECDSA_SHA256, CKM.ECDSA_SHA384, CKM.ECDSA_SHA512];

/** The 16 bytes of a key's UUID: its CKA_ID unless C_GenerateKeyPair was given another. */
export const uuidBytes = (keyId: string) => Buffer.from(keyId.replace(/-/g, ''), 'hex');

export interface KeyNames {
  /** CKA_LABEL (first) and the other names it answers to */
  labels: string[];
  ckaId: Buffer;
  /** CKA_SUBJECT: from a stored certificate for the same public key, else empty */
  subject: Buffer;
}

/** [public-key object, private-key object] of a key. */
export function keyObjects(key: KeyRecord, names: KeyNames, abi: Abi): [P11Object, P11Object] {
  const spki = Buffer.from(key.publicKey, 'base64');
  const parsed = parseSpki(spki);
  const bool = (b: boolean) => Buffer.of(b ? 1 : 0);
  const generated = key.origin === 'AWS_KMS';
  const sign = key.keyUsage === 'SIGN_VERIFY';
  // A disabled key does nothing until it is enabled again (the cluster refuses it with
  // CKR_KEY_FUNCTION_NOT_PERMITTED): its objects say so, so that C_*Init refuses at once and
  // consumers that pick keys by CKA_SIGN/CKA_DECRYPT (pkcs11-tool --test) pass it by.
  const usable = key.state === 'Enabled';
  const common = new Map<number, Buffer>([
    [CKA.TOKEN, bool(true)],
    // A key administrator may relabel a key (a KMS alias) and destroy it (ScheduleKeyDeletion).
    [CKA.MODIFIABLE, bool(true)],
    [CKA.COPYABLE, bool(false)],
    [CKA.DESTROYABLE, bool(true)],
    [CKA.LABEL, Buffer.from(names.labels[0] ?? key.keyId, 'utf8')],
    [CKA.ID, names.ckaId],
    [CKA.START_DATE, Buffer.alloc(0)],
    [CKA.END_DATE, Buffer.alloc(0)],
    [CKA.DERIVE, bool(false)],
    [CKA.LOCAL, bool(generated)],
    [CKA.SUBJECT, names.subject],
    [CKA.PUBLIC_KEY_INFO, spki],
    // The pair's protection, answered on both objects: consumers ask either.
    [CKA.SENSITIVE, bool(true)],
    [CKA.EXTRACTABLE, bool(false)],
    [CKA.ALWAYS_SENSITIVE, bool(generated)],
    [CKA.NEVER_EXTRACTABLE, bool(generated)],
    [CKA.ALWAYS_AUTHENTICATE, bool(false)],
    [CKA.WRAP, bool(false)],
    [CKA.UNWRAP, bool(false)],
    [CKA.WRAP_WITH_TRUSTED, bool(false)],
    [CKA.SIGN_RECOVER, bool(false)],
    [CKA.VERIFY_RECOVER, bool(false)],
  ]);
  let outLen: number;
  let gen: number;
  let mechanisms: number[];
  if (parsed.kind === 'rsa') {
    common.set(CKA.KEY_TYPE, abi.ulong(CKK.RSA));
    common.set(CKA.MODULUS, unsigned(parsed.n));
    common.set(CKA.PUBLIC_EXPONENT, unsigned(parsed.e));
    common.set(CKA.MODULUS_BITS, abi.ulong(parsed.modulusBits));
    outLen = Math.ceil(parsed.modulusBits / 8);
    gen = CKM.RSA_PKCS_KEY_PAIR_GEN;
    mechanisms = sign ? RSA_SIGN_MECHANISMS : RSA_DECRYPT_MECHANISMS;
  } else {
    const ed = parsed.kind === 'ed25519';
    common.set(CKA.KEY_TYPE, abi.ulong(ed ? CKK.EC_EDWARDS : CKK.EC));
    common.set(CKA.EC_PARAMS, EC_PARAMS[parsed.keySpec]);
    common.set(CKA.EC_POINT, octetString(ed ? parsed.publicKey : parsed.point));
    outLen = parsed.kind === 'ed25519' ? 64 : 2 * EC_FIELD_BYTES[parsed.keySpec];
    gen = ed ? CKM.EC_EDWARDS_KEY_PAIR_GEN : CKM.EC_KEY_PAIR_GEN;
    mechanisms = ed ? [CKM.EDDSA] : ECDSA_MECHANISMS;
  }
  common.set(CKA.KEY_GEN_MECHANISM, generated ? abi.ulong(gen) : abi.ulong(CK_UNAVAILABLE_INFORMATION));
  common.set(CKA.ALLOWED_MECHANISMS, abi.ulongs(mechanisms));
  const labels = names.labels.map((l) => Buffer.from(l, 'utf8'));

  const pub = new Map(common);
  pub.set(CKA.CLASS, abi.ulong(CKO.PUBLIC_KEY));
  pub.set(CKA.PRIVATE, bool(false));
  pub.set(CKA.UNIQUE_ID, Buffer.from(`k:${key.keyId}:pub`));
  pub.set(CKA.VERIFY, bool(usable && sign));
  pub.set(CKA.ENCRYPT, bool(usable && !sign));
  pub.set(CKA.SIGN, bool(false));
  pub.set(CKA.DECRYPT, bool(false));
  pub.set(CKA.TRUSTED, bool(false));

  const priv = new Map(common);
  priv.set(CKA.CLASS, abi.ulong(CKO.PRIVATE_KEY));
  priv.set(CKA.PRIVATE, bool(true));
  priv.set(CKA.UNIQUE_ID, Buffer.from(`k:${key.keyId}:priv`));
  priv.set(CKA.SIGN, bool(usable && sign));
  priv.set(CKA.DECRYPT, bool(usable && !sign));
  priv.set(CKA.VERIFY, bool(false));
  priv.set(CKA.ENCRYPT, bool(false));

  return [
    { uid: `k:${key.keyId}:pub`, attrs: pub, sensitive: [], outLen, labels },
    { uid: `k:${key.keyId}:priv`, attrs: priv, sensitive: SENSITIVE_PRIVATE, outLen, labels },
  ];
}

export function certificateObject(c: StoredCertificate, abi: Abi): P11Object {
  const value = Buffer.from(c.value, 'base64');
  const parts = parseCertificate(value);
  const bool = (b: boolean) => Buffer.of(b ? 1 : 0);
  const label = Buffer.from(c.label, 'utf8');
  const attrs = new Map<number, Buffer>([
    [CKA.CLASS, abi.ulong(CKO.CERTIFICATE)],
    [CKA.TOKEN, bool(true)],
    [CKA.PRIVATE, bool(c.private)],
    [CKA.MODIFIABLE, bool(false)],
    [CKA.COPYABLE, bool(false)],
    [CKA.DESTROYABLE, bool(true)],
    [CKA.LABEL, label],
    [CKA.UNIQUE_ID, Buffer.from(`c:${c.id}`)],
    [CKA.CERTIFICATE_TYPE, abi.ulong(CKC_X_509)],
    [CKA.TRUSTED, bool(c.trusted)],
    [CKA.CERTIFICATE_CATEGORY, abi.ulong(c.category)],
    [CKA.CHECK_VALUE, createHash('sha1').update(value).digest().subarray(0, 3)],
    [CKA.START_DATE, Buffer.from(parts.notBefore, 'latin1')],
    [CKA.END_DATE, Buffer.from(parts.notAfter, 'latin1')],
    [CKA.PUBLIC_KEY_INFO, parts.spki],
    [CKA.SUBJECT, parts.subject],
    [CKA.ID, Buffer.from(c.ckaId, 'hex')],
    [CKA.ISSUER, parts.issuer],
    [CKA.SERIAL_NUMBER, parts.serialNumber],
    [CKA.VALUE, value],
    [CKA.URL, Buffer.alloc(0)],
    [CKA.HASH_OF_SUBJECT_PUBLIC_KEY, Buffer.alloc(0)],
    [CKA.HASH_OF_ISSUER_PUBLIC_KEY, Buffer.alloc(0)],
    [CKA.JAVA_MIDP_SECURITY_DOMAIN, abi.ulong(0)],
  ]);
  return { uid: `c:${c.id}`, attrs, sensitive: [], outLen: 0, labels: [label] };
}

/** CKA_PRIVATE false: what a public session (no login) may see. */
export const isPublic = (o: P11Object): boolean => o.attrs.get(CKA.PRIVATE)?.equals(Buffer.of(0)) === true;

export type Template = readonly (readonly [number, Buffer])[];

/** Exact byte comparison per attribute (PKCS#11 §5.7 C_FindObjectsInit); sensitive never match. */
export function matches(o: P11Object, template: Template): boolean {
  return template.every(([type, want]) => {
    if (o.sensitive.includes(type)) return false;
    if (type === CKA.LABEL) return o.labels.some((l) => l.equals(want));
    return o.attrs.get(type)?.equals(want) ?? false;
  });
}

export function encodeObject(o: P11Object): Value {
  return [Buffer.from(o.uid), [...o.attrs].map(([t, v]): Value => [t, v]), [...o.sensitive], o.outLen];
}

/**
 * A session public key (one the application created in its session) as SPKI, from the
 * attributes the module forwards: RSA modulus/exponent, or EC/Edwards params and point.
 */
export function sessionKeySpki(attrs: Map<number, Buffer>, abi: Abi): { keySpec: KeySpec; spki: Buffer } {
  const type = attrs.has(CKA.KEY_TYPE) ? abi.readUlong(attrs.get(CKA.KEY_TYPE)!) : undefined;
  const bad = (rv: number, why: string) => new P11Error(rv, `session public key: ${why}`);
  if (type === BigInt(CKK.RSA)) {
    const n = attrs.get(CKA.MODULUS);
    const e = attrs.get(CKA.PUBLIC_EXPONENT);
    if (!n?.length || !e?.length) throw bad(CKR.TEMPLATE_INCOMPLETE, 'CKA_MODULUS and CKA_PUBLIC_EXPONENT needed');
    try {
      const spki = Buffer.from(spkiFromRsaPublicKey(BigInt('0x' + n.toString('hex')), BigInt('0x' + e.toString('hex'))));
      return { keySpec: parseSpki(spki).keySpec, spki };
    } catch (err) {
      throw bad(CKR.KEY_SIZE_RANGE, `${(err as Error).message} (RSA keys of 2048, 3072 or 4096 bits)`);
    }
  }
  if (type === BigInt(CKK.EC) || type === BigInt(CKK.EC_EDWARDS)) {
    const spec = keySpecOfEcParams(attrs.get(CKA.EC_PARAMS) ?? Buffer.alloc(0));
    if (!spec) throw bad(CKR.DOMAIN_PARAMS_INVALID, 'unknown CKA_EC_PARAMS');
    let point = attrs.get(CKA.EC_POINT) ?? Buffer.alloc(0);
    // DER OCTET STRING around the point (the standard form) or the bare point (seen in the wild).
    const raw = spec === 'ECC_NIST_EDWARDS25519' ? 32 : 1 + 2 * EC_FIELD_BYTES[spec];
    if (point.length !== raw && point[0] === 0x04) point = point.subarray(point[1]! < 0x80 ? 2 : 3);
    try {
      return { keySpec: spec, spki: Buffer.from(spkiFromRawPublicKey(spec, point)) };
    } catch (err) {
      throw bad(CKR.ATTRIBUTE_VALUE_INVALID, (err as Error).message);
    }
  }
  throw bad(CKR.KEY_TYPE_INCONSISTENT, 'not an RSA, EC or Edwards key');
}
