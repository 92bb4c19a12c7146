// Attestation by TPM quote, the first attestation provider: at init the signer has its TPM make
// an attestation key (AK: restricted ECDSA P-256 signing key, fixedTPM) under the endorsement key
// (EK, the TCG template), and quote PCRs with the identity's fingerprint (SHA-256 over its name
// and keys) as qualifying data. Its public file carries the quote, its signature, both public
// areas and the EK certificate; anyone verifies it with `verifyTpmQuote`.
//
// What the verifier checks: the quote is TPM-generated (magic, type), names this identity
// (extraData), is signed by the AK (noble's P-256 ECDSA over the TPMS_ATTEST), the AK is a
// restricted fixedTPM signing key (so it signs only what the TPM made), the quote's signer is
// the AK's qualified name under this EK, and the EK is the certified one (its public key is the
// certificate's). The EK certificate is classified as hardware or software (ek.ts).
// What the quote alone cannot show: that the AK lives in the same TPM as the EK (whoever has a
// genuine EK certificate, public, could pair it with a software AK and compute the qualified name
// themselves). Admission shows it by credential activation with the newcomer's TPM (activation.ts).
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { p256 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { equalBytes } from '@noble/curves/utils.js';
import { z } from 'zod';
import { fromHex, toHex, tpmBlobSchema } from '../../../contract/bytes.js';
import { saveAttestationKey } from './activation.js';
import { classifyTpm, readEkCertificate, type TpmClass } from './ek.js';
import { ATTR, parseQuote, parseTpm2bPublic, qualifiedNameUnderEk, TPM_ECC_NIST_P256 } from './structures.js';
import { withTpm } from './tools.js';

/** PCRs quoted by default: firmware, its configuration, boot loader and its configuration (PC Client profile). */
export const DEFAULT_QUOTE_PCRS = 'sha256:0,1,2,3,4,5,6,7';

export const tpmQuoteSchema = z.strictObject({
  kind: z.literal('tpm2-quote'),
  /** The EK certificate, DER in base64. */
  ekCertificate: z.string().max(8192),
  ekPublic: tpmBlobSchema,
  akPublic: tpmBlobSchema,
  quote: tpmBlobSchema,
  /** DER ECDSA signature by the AK over `quote`. */
  signature: tpmBlobSchema,
  pcrs: z.string().max(200),
});
export type TpmQuote = z.infer<typeof tpmQuoteSchema>;

export class AttestationError extends Error {
  override name = 'AttestationError';
}

/**
 * Has the TPM at `tcti` quote `pcrs` for the identity whose fingerprint (hex) is given; with
 * `keyFile`, keeps the AK there for credential activation at admission (activation.ts).
 */
export async function makeTpmQuote(tcti: string, fingerprint: string, keyFile?: string, pcrs = DEFAULT_QUOTE_PCRS): Promise<TpmQuote> {
  return withTpm(tcti, async (tpm) => {
    const ekCert = await readEkCertificate(tpm);
    if (!ekCert) throw new AttestationError(`the TPM at ${tcti} holds no EK certificate: it cannot attest`);
    const ekType = new X509Certificate(ekCert).publicKey.asymmetricKeyType === 'rsa' ? 'rsa' : 'ecc';
    await tpm.run('createek', ['-c', tpm.file('ek.ctx'), '-G', ekType, '-u', tpm.file('ek.pub')]);
    await tpm.run('createak', ['-C', tpm.file('ek.ctx'), '-c', tpm.file('ak.ctx'), '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', tpm.file('ak.pub'), '-r', tpm.file('ak.priv'), '-n', tpm.file('ak.name')]);
    await tpm.run('flushcontext', ['-s']);
    await tpm.run('quote', ['-c', tpm.file('ak.ctx'), '-l', pcrs, '-q', fingerprint, '-m', tpm.file('quote.msg'), '-s', tpm.file('quote.sig'), '-f', 'plain', '-g', 'sha256']);
    const read = async (f: string) => toHex(await readFile(tpm.file(f)));
    if (keyFile !== undefined) await saveAttestationKey(keyFile, { ekType, akPublic: await read('ak.pub'), akPrivate: await read('ak.priv') });
    return { kind: 'tpm2-quote', ekCertificate: Buffer.from(ekCert).toString('base64'), ekPublic: await read('ek.pub'), akPublic: await read('ak.pub'), quote: await read('quote.msg'), signature: await read('quote.sig'), pcrs };
  });
}

/**
 * The PCR digest a quote of `pcrs` would carry now (SHA-256 over the registers' current values, in
 * the selection's order: tpm2_pcrread), for comparing with the one quoted at init (`mpchsm doctor`).
 */
export async function readPcrDigest(tcti: string, pcrs = DEFAULT_QUOTE_PCRS): Promise<string> {
  return withTpm(tcti, async (tpm) => {
    await tpm.run('pcrread', [pcrs, '-o', tpm.file('pcrs.bin')]);
    return toHex(sha256(await readFile(tpm.file('pcrs.bin'))));
  });
}

const unpad = (b: Uint8Array) => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

/**
 * Verifies `raw` (a signer file's Attestation) for the identity with fingerprint `fingerprint`
 * (hex); returns what the EK certificate shows the TPM to be. Throws AttestationError naming the
 * first check that failed.
 */
export async function verifyTpmQuote(raw: unknown, fingerprint: string): Promise<TpmClass & { pcrs: string; pcrDigest: string }> {
  const parsed = tpmQuoteSchema.safeParse(raw);
  if (!parsed.success) throw new AttestationError(`not a TPM quote attestation: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  const a = parsed.data;
  const fail = (why: string): never => {
    throw new AttestationError(`the TPM quote does not verify: ${why}`);
  };
  try {
    const ak = parseTpm2bPublic(fromHex(a.akPublic));
    const ek = parseTpm2bPublic(fromHex(a.ekPublic));
    const q = parseQuote(fromHex(a.quote));
    if (!equalBytes(q.extraData, fromHex(fingerprint))) fail('it was made for another identity (qualifying data)');
    if (q.pcrSelection !== a.pcrs) fail(`it quotes ${q.pcrSelection}, not the ${a.pcrs} it names`);
    const needed = ATTR.fixedTPM | ATTR.fixedParent | ATTR.sensitiveDataOrigin | ATTR.restricted | ATTR.sign;
    if (ak.type !== 'ecc' || ak.curve !== TPM_ECC_NIST_P256 || (ak.attributes & needed) !== needed || ak.attributes & ATTR.decrypt)
      fail('the attestation key is not a restricted, fixedTPM P-256 signing key');
    const point = new Uint8Array([0x04, ...new Uint8Array(32 - ak.x!.length), ...ak.x!, ...new Uint8Array(32 - ak.y!.length), ...ak.y!]);
    // A TPM's ECDSA signatures are not normalised to low S (that is a Bitcoin rule, not FIPS 186's).
    if (!p256.verify(fromHex(a.signature), fromHex(a.quote), point, { format: 'der', lowS: false })) fail('the attestation key did not sign it');
    if (!equalBytes(q.qualifiedSigner, qualifiedNameUnderEk(ek, ak))) fail('its signer is not this attestation key under this endorsement key');
    const cert = new X509Certificate(Buffer.from(a.ekCertificate, 'base64'));
    const jwk = cert.publicKey.export({ format: 'jwk' });
    const certified =
      ek.type === 'rsa'
        ? jwk.n !== undefined && equalBytes(unpad(Buffer.from(jwk.n, 'base64url')), unpad(ek.modulus!))
        : jwk.x !== undefined && jwk.y !== undefined && equalBytes(unpad(Buffer.from(jwk.x, 'base64url')), unpad(ek.x!)) && equalBytes(unpad(Buffer.from(jwk.y, 'base64url')), unpad(ek.y!));
    if (!certified) fail('the endorsement key is not the one its certificate certifies');
    const kind = await classifyTpm(new Uint8Array(cert.raw));
    return { ...kind, pcrs: q.pcrSelection, pcrDigest: toHex(q.pcrDigest) };
  } catch (e) {
    if (e instanceof AttestationError) throw e;
    throw new AttestationError(`the TPM quote does not verify: ${(e as Error).message}`);
  }
}
