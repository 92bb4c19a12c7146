// The few TPM 2.0 structures an attestation verifier reads (TPM 2.0 Library, Part 2): TPM2B_PUBLIC
// (RSA and ECC keys: the parameters, attributes and public value) and TPMS_ATTEST of a quote.
// Pure and strict: a structure that does not parse exactly, with no bytes left over, is refused.
import { sha256 } from '@noble/hashes/sha2.js';

export class TpmStructureError extends Error {
  override name = 'TpmStructureError';
}

const TPM_ALG = { rsa: 0x0001, sha256: 0x000b, null: 0x0010, ecc: 0x0023 } as const;
export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;
export const TPM_ECC_NIST_P256 = 0x0003;
const TPM_RH_ENDORSEMENT = 0x4000000b;

/** Object attributes (Part 2, TPMA_OBJECT). */
export const ATTR = { fixedTPM: 1 << 1, fixedParent: 1 << 4, sensitiveDataOrigin: 1 << 5, restricted: 1 << 16, decrypt: 1 << 17, sign: 1 << 18 } as const;

class Reader {
  private at = 0;
  constructor(private readonly b: Uint8Array) {}
  private need(n: number): void {
    if (this.at + n > this.b.length) throw new TpmStructureError('truncated TPM structure');
  }
  u8(): number {
    this.need(1);
    return this.b[this.at++]!;
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  u32(): number {
    return ((this.u16() << 16) | this.u16()) >>> 0;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  sized(): Uint8Array {
    return this.bytes(this.u16());
  }
  end(): void {
    if (this.at !== this.b.length) throw new TpmStructureError(`${this.b.length - this.at} bytes after the TPM structure`);
  }
}

export interface TpmPublic {
  /** The TPMT_PUBLIC bytes: what the object's name hashes. */
  area: Uint8Array;
  type: 'rsa' | 'ecc';
  nameAlg: number;
  attributes: number;
  /** RSA: the modulus. */
  modulus?: Uint8Array;
  /** ECC: the curve and the point. */
  curve?: number;
  x?: Uint8Array;
  y?: Uint8Array;
}

/** Parses a TPM2B_PUBLIC (as tpm2-tools writes `-u key.pub`) of an RSA or ECC key. */
export function parseTpm2bPublic(b: Uint8Array): TpmPublic {
  const outer = new Reader(b);
  const area = outer.sized();
  outer.end();
  const r = new Reader(area);
  const type = r.u16();
  const nameAlg = r.u16();
  const attributes = r.u32();
  r.sized(); // authPolicy
  const symmetric = r.u16();
  if (symmetric !== TPM_ALG.null) r.bytes(4); // keyBits, mode
  const scheme = r.u16();
  if (scheme !== TPM_ALG.null) r.u16(); // the scheme's hash
  if (type === TPM_ALG.rsa) {
    r.u16(); // keyBits
    r.u32(); // exponent (0: 2^16 + 1)
    const modulus = r.sized();
    r.end();
    return { area, type: 'rsa', nameAlg, attributes, modulus };
  }
  if (type === TPM_ALG.ecc) {
    const curve = r.u16();
    const kdf = r.u16();
    if (kdf !== TPM_ALG.null) r.u16();
    const x = r.sized();
    const y = r.sized();
    r.end();
    return { area, type: 'ecc', nameAlg, attributes, curve, x, y };
  }
  throw new TpmStructureError(`a TPM key of type 0x${type.toString(16)}, neither RSA nor ECC`);
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const SHA256_ALG = new Uint8Array([0x00, 0x0b]);

/** An object's name: its name algorithm (SHA-256 only here) and the hash of its public area. */
export function objectName(p: TpmPublic): Uint8Array {
  if (p.nameAlg !== TPM_ALG.sha256) throw new TpmStructureError('only SHA-256 names are accepted');
  return concat(SHA256_ALG, sha256(p.area));
}

/** The qualified name of a key created under a primary of the endorsement hierarchy (an AK under the EK): Part 1, "Qualified Name". */
export function qualifiedNameUnderEk(ek: TpmPublic, key: TpmPublic): Uint8Array {
  const hierarchy = new Uint8Array([(TPM_RH_ENDORSEMENT >>> 24) & 0xff, (TPM_RH_ENDORSEMENT >>> 16) & 0xff, (TPM_RH_ENDORSEMENT >>> 8) & 0xff, TPM_RH_ENDORSEMENT & 0xff]);
  const ekQn = concat(SHA256_ALG, sha256(concat(hierarchy, objectName(ek))));
  return concat(SHA256_ALG, sha256(concat(ekQn, objectName(key))));
}

export interface QuoteInfo {
  qualifiedSigner: Uint8Array;
  extraData: Uint8Array;
  /** `sha256:0,1,…`: the banks and registers quoted. */
  pcrSelection: string;
  pcrDigest: Uint8Array;
}

const BANK: Record<number, string> = { 0x0004: 'sha1', 0x000b: 'sha256', 0x000c: 'sha384', 0x000d: 'sha512' };

/** Parses a TPMS_ATTEST and requires it to be a TPM-generated quote. */
export function parseQuote(b: Uint8Array): QuoteInfo {
  const r = new Reader(b);
  if (r.u32() !== TPM_GENERATED_VALUE) throw new TpmStructureError('not a TPM-generated attestation (magic)');
  if (r.u16() !== TPM_ST_ATTEST_QUOTE) throw new TpmStructureError('not a quote (type)');
  const qualifiedSigner = r.sized();
  const extraData = r.sized();
  r.bytes(17); // clockInfo: clock, resetCount, restartCount, safe
  r.bytes(8); // firmwareVersion
  const banks: string[] = [];
  for (let i = r.u32(); i > 0; i--) {
    const hash = r.u16();
    const select = r.bytes(r.u8());
    const regs = [...select].flatMap((byte, k) => Array.from({ length: 8 }, (_, bit) => ((byte >> bit) & 1 ? [k * 8 + bit] : [])).flat());
    banks.push(`${BANK[hash] ?? `0x${hash.toString(16)}`}:${regs.join(',')}`);
  }
  const pcrDigest = r.sized();
  r.end();
  return { qualifiedSigner, extraData, pcrSelection: banks.join('+'), pcrDigest };
}
