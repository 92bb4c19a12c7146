// What a newcomer without that TPM can make: a quote that verifies (signers/node/tpm/attestation.ts)
// over a genuine EK certificate and EK public taken from another TPM's public attestation, signed
// by an attestation key made in software with the attributes a TPM's AK has. Only credential
// activation (signers/node/tpm/activation.ts) tells it from a real one.
import { p256 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromHex, toHex } from '../../contract/bytes.js';
import type { TpmQuote } from '../../signers/node/tpm/attestation.js';
import { ATTR, parseTpm2bPublic, qualifiedNameUnderEk, TPM_ECC_NIST_P256, TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE } from '../../signers/node/tpm/structures.js';

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u32 = (n: number) => [...u16(n >>> 16), ...u16(n & 0xffff)];
const sized = (b: Uint8Array) => [...u16(b.length), ...b];

/** A quote for `fingerprint` by a software AK, paired with the EK (and certificate) of `genuine`. */
export function forgeQuote(genuine: TpmQuote, fingerprint: string): TpmQuote {
  const sk = p256.utils.randomSecretKey();
  const point = p256.getPublicKey(sk, false);
  const attributes = ATTR.fixedTPM | ATTR.fixedParent | ATTR.sensitiveDataOrigin | ATTR.restricted | ATTR.sign | (1 << 6); // userWithAuth
  // TPMT_PUBLIC: ECC, SHA-256 name, no policy, no symmetric, ECDSA-SHA256, P-256, no KDF, the point.
  const area = new Uint8Array([...u16(0x0023), ...u16(0x000b), ...u32(attributes), ...u16(0), ...u16(0x0010), ...u16(0x0018), ...u16(0x000b), ...u16(TPM_ECC_NIST_P256), ...u16(0x0010), ...sized(point.subarray(1, 33)), ...sized(point.subarray(33))]);
  const akPublic = new Uint8Array(sized(area));
  const signer = qualifiedNameUnderEk(parseTpm2bPublic(fromHex(genuine.ekPublic)), parseTpm2bPublic(akPublic));
  const quote = new Uint8Array([
    ...u32(TPM_GENERATED_VALUE),
    ...u16(TPM_ST_ATTEST_QUOTE),
    ...sized(signer),
    ...sized(fromHex(fingerprint)),
    ...new Uint8Array(17), // clockInfo
    ...new Uint8Array(8), // firmwareVersion
    ...u32(1),
    ...u16(0x000b),
    3,
    0xff,
    0,
    0, // sha256:0-7
    ...sized(sha256(new Uint8Array(8 * 32))),
  ]);
  const signature = p256.sign(quote, sk, { format: 'der', lowS: false });
  return { ...genuine, akPublic: toHex(akPublic), quote: toHex(quote), signature: toHex(signature), pcrs: 'sha256:0,1,2,3,4,5,6,7' };
}
