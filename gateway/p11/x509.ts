// The parts of an X.509 certificate PKCS#11 exposes as attributes, as their DER encodings:
// CKA_ISSUER, CKA_SUBJECT (Names), CKA_SERIAL_NUMBER (the INTEGER), CKA_PUBLIC_KEY_INFO (the
// SubjectPublicKeyInfo), CKA_START_DATE/CKA_END_DATE (CK_DATE "YYYYMMDD" from the validity).
// Node's X509Certificate validates the whole certificate; this walks the TBSCertificate
// (RFC 5280 §4.1) only to slice out the exact bytes.
import { X509Certificate } from 'node:crypto';

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
}

interface Tlv {
  tag: number;
  /** the whole TLV */
  der: Buffer;
  value: Buffer;
  end: number;
}

function tlv(buf: Buffer, pos: number): Tlv {
  const bad = (why: string) => new CertificateError(`certificate DER: ${why}`);
  if (pos + 2 > buf.length) throw bad('truncated');
  const tag = buf[pos]!;
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > buf.length) throw bad('unsupported length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
  }
  if (p + len > buf.length) throw bad('truncated');
  return { tag, der: buf.subarray(pos, p + len), value: buf.subarray(p, p + len), end: p + len };
}

export interface CertificateParts {
  serialNumber: Buffer;
  issuer: Buffer;
  subject: Buffer;
  spki: Buffer;
  /** CK_DATE strings, "YYYYMMDD" */
  notBefore: string;
  notAfter: string;
}

function ckDate(t: Tlv): string {
  const s = t.value.toString('latin1');
  // UTCTime YYMMDDhhmmssZ (RFC 5280: YY < 50 is 20YY) or GeneralizedTime YYYYMMDDhhmmssZ
  if (t.tag === 0x17 && /^\d{12}/.test(s)) return (Number(s.slice(0, 2)) < 50 ? '20' : '19') + s.slice(0, 6);
  if (t.tag === 0x18 && /^\d{14}/.test(s)) return s.slice(0, 8);
  throw new CertificateError('certificate DER: bad validity time');
}

export function parseCertificate(der: Buffer): CertificateParts {
  try {
    new X509Certificate(der);
  } catch (e) {
    throw new CertificateError(`not an X.509 certificate: ${(e as Error).message}`);
  }
  const cert = tlv(der, 0);
  if (cert.end !== der.length) throw new CertificateError('trailing bytes after the certificate');
  const tbs = tlv(cert.value, 0);
  let t = tlv(tbs.value, 0);
  if (t.tag === 0xa0) t = tlv(tbs.value, t.end); // explicit version
  const serial = t;
  const sigAlg = tlv(tbs.value, serial.end);
  const issuer = tlv(tbs.value, sigAlg.end);
  const validity = tlv(tbs.value, issuer.end);
  const subject = tlv(tbs.value, validity.end);
  const spki = tlv(tbs.value, subject.end);
  if (serial.tag !== 0x02 || issuer.tag !== 0x30 || validity.tag !== 0x30 || subject.tag !== 0x30 || spki.tag !== 0x30) {
    throw new CertificateError('certificate DER: unexpected TBSCertificate layout');
  }
  const nb = tlv(validity.value, 0);
  const na = tlv(validity.value, nb.end);
  return {
    serialNumber: Buffer.from(serial.der),
    issuer: Buffer.from(issuer.der),
    subject: Buffer.from(subject.der),
    spki: Buffer.from(spki.der),
    notBefore: ckDate(nb),
    notAfter: ckDate(na),
  };
}
