// What a TPM is, from its endorsement key's certificate (TCG EK Credential Profile: the
// certificate sits in NV at a well-known index per key type): hardware only when the certificate
// is issued by a manufacturer CA this host was given (MPCHSM_TPM_CA_DIR, default
// /etc/mpchsm/tpm-ca: PEM files of manufacturer root or intermediate CAs; one level is checked).
// swtpm's EK is issued by swtpm's local CA: a software TPM, and so is any TPM without an EK
// certificate or with one no known CA issued. Never called hardware on the TPM's own say.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { Tpm } from './tools.js';

/** NV indices of EK certificates: RSA 2048, ECC P-256, ECC P-384, RSA 3072 (TCG EK profile 2.3). */
const EK_CERT_INDICES = ['0x01c00002', '0x01c0000a', '0x01c00016', '0x01c0001c'];
export const DEFAULT_TPM_CA_DIR = '/etc/mpchsm/tpm-ca';

export interface TpmClass {
  hardware: boolean;
  /** For people: `software TPM (swtpm, EK issued by CN=swtpm-localca)`, `hardware TPM (EK issued by …)`. */
  label: string;
}

/** The first EK certificate the TPM holds (DER), or undefined. */
export async function readEkCertificate(tpm: Tpm): Promise<Uint8Array | undefined> {
  for (const index of EK_CERT_INDICES) {
    const der = await tpm.run('nvread', [index, '-C', 'o']).catch(() => undefined);
    // Some TPMs pad the NV area: the certificate is the DER SEQUENCE at its start.
    if (der && der.length > 4 && der[0] === 0x30) return new Uint8Array(der.subarray(0, derLength(der)));
  }
  return undefined;
}

function derLength(der: Uint8Array): number {
  const first = der[1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!;
  return Math.min(der.length, 2 + n + len);
}

function knownCas(dir: string): X509Certificate[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pem') || f.endsWith('.crt'))
    .flatMap((f) => {
      try {
        return [new X509Certificate(readFileSync(path.join(dir, f)))];
      } catch {
        return [];
      }
    });
}

/** Classifies a TPM by its EK certificate (see the top comment). */
export async function classifyTpm(ekCert: Uint8Array | undefined, caDir = process.env.MPCHSM_TPM_CA_DIR ?? DEFAULT_TPM_CA_DIR): Promise<TpmClass> {
  if (!ekCert) return { hardware: false, label: 'software TPM (no EK certificate: not shown to be hardware)' };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(ekCert));
  } catch {
    return { hardware: false, label: 'software TPM (its EK certificate does not parse)' };
  }
  const issuer = cert.issuer.replaceAll('\n', ', ');
  const swtpm = /swtpm/i.test(issuer) || Buffer.from(ekCert).includes('swtpm');
  if (!swtpm) for (const ca of knownCas(caDir)) if (cert.checkIssued(ca) && cert.verify(ca.publicKey)) return { hardware: true, label: `hardware TPM (EK issued by ${issuer})` };
  return { hardware: false, label: `software TPM (${swtpm ? 'swtpm, ' : ''}EK issued by ${issuer}, not a known manufacturer CA)` };
}

/** Reads and classifies the TPM `tpm` reaches. */
export async function tpmClass(tpm: Tpm): Promise<TpmClass> {
  return classifyTpm(await readEkCertificate(tpm));
}
