// Minimal X.509 v3 certificates for tests (RFC 5280), signed with ECDSA P-256/SHA-256 by a
// node:crypto key, so the tests need no OpenSSL command line. The subject key is any SPKI,
// e.g. a key that lives on the cluster.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.of(0x80 | bytes.length, ...bytes);
}
const tlv = (tag: number, ...content: Buffer[]) => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.of(tag), len(body.length), body]);
};
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const groups: number[] = [];
    for (let v = n; ; v = Math.floor(v / 128)) {
      groups.unshift(v & 0x7f);
      if (v < 128) break;
    }
    out.push(...groups.map((g, i) => (i < groups.length - 1 ? g | 0x80 : g)));
  }
  return tlv(0x06, Buffer.from(out));
}
function integer(v: bigint): Buffer {
  let h = v.toString(16);
  if (h.length % 2) h = '0' + h;
  let b = Buffer.from(h, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.of(0), b]);
  return tlv(0x02, b);
}
const utcTime = (d: Date) => tlv(0x17, Buffer.from(d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z'));
const name = (cn: string) => seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

export interface CertificateRequest {
  subject: string;
  issuer?: string;
  serial: bigint;
  /** the certified key, as SPKI DER */
  spki: Buffer;
  /** signs the certificate (P-256); the subject key itself for a self-signed one */
  issuerKey: KeyObject;
  /** subjectAltName entries: IP addresses or DNS names */
  altNames?: string[];
  ca?: boolean;
}

export function certificate(r: CertificateRequest): Buffer {
  const now = Date.now();
  const extensions: Buffer[] = [];
  if (r.altNames?.length) {
    const names = r.altNames.map((n) => {
      if (!isIP(n)) return tlv(0x82, Buffer.from(n));
      return tlv(0x87, Buffer.from(n.split('.').map(Number)));
    });
    extensions.push(seq(oid('2.5.29.17'), tlv(0x04, seq(...names))));
  }
  if (r.ca) extensions.push(seq(oid('2.5.29.19'), tlv(0x01, Buffer.of(0xff)), tlv(0x04, seq(tlv(0x01, Buffer.of(0xff))))));
  const tbs = seq(
    tlv(0xa0, integer(2n)),
    integer(r.serial),
    ECDSA_SHA256,
    name(r.issuer ?? r.subject),
    seq(utcTime(new Date(now - 3600_000)), utcTime(new Date(now + 2 * 86400_000))),
    name(r.subject),
    r.spki,
    ...(extensions.length ? [tlv(0xa3, seq(...extensions))] : []),
  );
  const signature = sign('sha256', tbs, r.issuerKey);
  return seq(tbs, ECDSA_SHA256, tlv(0x03, Buffer.of(0), signature));
}

/** A self-signed P-256 certificate and its key, as PEM. */
export function selfSigned(subject: string, altNames: string[] = []): { certPem: string; keyPem: string; der: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = certificate({ subject, serial: 1n, spki: publicKey.export({ type: 'spki', format: 'der' }), issuerKey: privateKey, altNames, ca: true });
  const certPem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), der };
}

