// Sealing: authenticated encryption of data at rest under a key only this signer can obtain.
//
// `Sealer` is the seam for key custody. The software provider here derives its key from the
// operator's secret; a TPM or enclave provider can later implement the same interface (it is
// async so that such a provider may call out to a device or daemon) and record its own `kind`
// in the header file, so stores stay readable by the provider that made them.
//
// Software provider:
//  - KDF: scrypt (memory-hard, in node:crypto). Default N=2^17, r=8, p=1: 128 MiB and about
//    0.4 s on a 2-core VM, paid once at start-up; a guess at the secret costs the same. A
//    secret a program drew rather than a person chose (`mpchsm up`'s) gets scrypt's least cost:
//    stretching adds nothing to 256 random bits. The header records the cost, so opening
//    follows whichever the store was made with.
//  - AEAD: XChaCha20-Poly1305 (@noble/ciphers). The store key is long-lived and re-seals
//    protocol state after every round, so nonces are random; 192-bit nonces make random
//    nonces safe without any counter to persist (AES-GCM's 96-bit random nonces carry a
//    birthday bound), and noble's ARX code is constant-time without relying on AES-NI.
//  - A sealed check value in the header tells a wrong operator secret apart from a damaged
//    record: a wrong secret is reported as such, never as garbage plaintext.

import { randomBytes, scrypt } from 'node:crypto';
import { join } from 'node:path';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { z } from 'zod';
import { writeFileAtomic } from './atomic.js';
import { JsonFileError, readJsonFileAsync } from './json-file.js';

export interface Sealer {
  /** Provider name, recorded in the header so the store is reopened by the same provider. */
  readonly kind: string;
  /** Encrypts and authenticates `plaintext`, binding `aad` (which is not stored). */
  seal(plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  /** Inverse of `seal`; throws `SealerError('tampered')` unless both bytes and `aad` match. */
  open(sealed: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  /** Wipes key material; later calls throw. */
  close(): void;
}

export type SealerErrorCode = 'wrong-secret' | 'tampered' | 'bad-header' | 'weak-secret' | 'closed';

export class SealerError extends Error {
  override name = 'SealerError';
  constructor(
    readonly code: SealerErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export class WrongOperatorSecretError extends SealerError {
  override name = 'WrongOperatorSecretError';
  constructor() {
    super('wrong-secret', 'the operator secret (passphrase) given does not unlock this store: it was sealed with another');
  }
}

/** Name of the sealer header inside a store directory. */
export const SEALER_HEADER_FILE = 'sealer.json';

export const SOFTWARE_SEALER_KIND = 'software/scrypt+xchacha20poly1305';

/** A store key sealed to a TPM 2.0 (signers/node/tpm/), records under the same AEAD as software. */
export const TPM_SEALER_KIND = 'tpm2/sealed-key+xchacha20poly1305';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** The cost for a passphrase a person chose (see the top comment). */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };

/**
 * The cost for a secret drawn at random, at least 256 bits (`mpchsm up` draws each party's):
 * the least the header accepts. Guessing it is hopeless however cheap each guess.
 */
export const DRAWN_SECRET_SCRYPT: ScryptParams = { N: 2 ** 10, r: 8, p: 1 };

/** Shortest operator secret accepted when a store is created (bytes of UTF-8). */
export const MIN_SECRET_BYTES = 12;

// Bounds also protect start-up from a header edited to demand absurd memory or time.
const scryptSchema = z.object({
  name: z.literal('scrypt'),
  N: z
    .number()
    .int()
    .min(2 ** 10)
    .max(2 ** 22)
    .refine((n) => (n & (n - 1)) === 0, 'N must be a power of two'),
  r: z.number().int().min(1).max(32),
  p: z.number().int().min(1).max(16),
  salt: z.string().regex(/^[0-9a-f]{64}$/),
});

const headerSchema = z.strictObject({
  format: z.literal('mpchsm-sealer'),
  version: z.literal(1),
  kind: z.literal(SOFTWARE_SEALER_KIND),
  kdf: scryptSchema.strict(),
  check: z.string().regex(/^(?:[0-9a-f]{2})+$/),
});
type Header = z.infer<typeof headerSchema>;

const FORMAT = 0x01; // first byte of every sealed blob
const NONCE = 24;
const TAG = 16;
const DOMAIN_CHECK = 0x00; // check value vs caller data: a caller's AAD can never equal the check's
const DOMAIN_DATA = 0x01;
const CHECK_PLAINTEXT = new TextEncoder().encode('mpchsm sealer check v1');

function secretBytes(secret: string | Uint8Array): Uint8Array {
  // NFC so the same passphrase typed on different systems derives the same key.
  return typeof secret === 'string' ? new TextEncoder().encode(secret.normalize('NFC')) : Uint8Array.from(secret);
}

function deriveKey(secret: Uint8Array, salt: Uint8Array, { N, r, p }: ScryptParams): Promise<Uint8Array> {
  const maxmem = 128 * N * r * (p + 1) + 2 ** 20;
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, 32, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

const checkAad = (h: Pick<Header, 'kind' | 'kdf'>): Uint8Array =>
  new TextEncoder().encode(JSON.stringify([h.kind, h.kdf.N, h.kdf.r, h.kdf.p, h.kdf.salt]));

class SoftwareSealer implements Sealer {
  #key: Uint8Array | undefined;

  constructor(
    key: Uint8Array,
    readonly kind: string = SOFTWARE_SEALER_KIND,
  ) {
    this.#key = key;
  }

  #live(): Uint8Array {
    if (!this.#key) throw new SealerError('closed', 'sealer is closed');
    return this.#key;
  }

  sealSync(domain: number, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE);
    const ct = xchacha20poly1305(this.#live(), nonce, fullAad(domain, aad)).encrypt(plaintext);
    const out = new Uint8Array(1 + NONCE + ct.length);
    out[0] = FORMAT;
    out.set(nonce, 1);
    out.set(ct, 1 + NONCE);
    return out;
  }

  openSync(domain: number, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
    const key = this.#live();
    if (sealed.length < 1 + NONCE + TAG || sealed[0] !== FORMAT)
      throw new SealerError('tampered', 'sealed data is truncated or of an unknown format');
    try {
      return xchacha20poly1305(key, sealed.subarray(1, 1 + NONCE), fullAad(domain, aad)).decrypt(sealed.subarray(1 + NONCE));
    } catch {
      throw new SealerError('tampered', 'sealed data failed authentication');
    }
  }

  async seal(plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    return this.sealSync(DOMAIN_DATA, plaintext, aad);
  }

  async open(sealed: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    return this.openSync(DOMAIN_DATA, sealed, aad);
  }

  close(): void {
    this.#key?.fill(0);
    this.#key = undefined;
  }
}

function fullAad(domain: number, aad: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + aad.length);
  out[0] = FORMAT;
  out[1] = domain;
  out.set(aad, 2);
  return out;
}

/**
 * The record AEAD over a 32-byte store key that another provider unwrapped (a TPM's unsealed
 * key), recorded as `kind`. Takes ownership of `key`: `close()` wipes it.
 */
export function keySealer(kind: string, key: Uint8Array): Sealer {
  if (key.length !== 32) throw new SealerError('bad-header', `a store key is 32 bytes, not ${key.length}`);
  return new SoftwareSealer(key, kind);
}

/**
 * Creates the software sealer for a new store: fresh salt, key derived from `secret`, header
 * (salt, parameters, check value) written to `dir/sealer.json`. `dir` must exist.
 */
export async function createSoftwareSealer(
  dir: string,
  secret: string | Uint8Array,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<Sealer> {
  const bytes = secretBytes(secret);
  try {
    if (bytes.length < MIN_SECRET_BYTES)
      throw new SealerError('weak-secret', `operator secret must be at least ${MIN_SECRET_BYTES} bytes`);
    const kdf = scryptSchema.strict().parse({ name: 'scrypt', ...params, salt: randomBytes(32).toString('hex') });
    const sealer = new SoftwareSealer(await deriveKey(bytes, Buffer.from(kdf.salt, 'hex'), kdf));
    const partial = { kind: SOFTWARE_SEALER_KIND, kdf } as const;
    const check = sealer.sealSync(DOMAIN_CHECK, CHECK_PLAINTEXT, checkAad(partial));
    const header: Header = { format: 'mpchsm-sealer', version: 1, ...partial, check: Buffer.from(check).toString('hex') };
    await writeFileAtomic(join(dir, SEALER_HEADER_FILE), new TextEncoder().encode(JSON.stringify(header, null, 2) + '\n'));
    return sealer;
  } finally {
    bytes.fill(0);
  }
}

/** Reopens the software sealer of an existing store; a wrong secret throws `WrongOperatorSecretError`. */
export async function openSoftwareSealer(dir: string, secret: string | Uint8Array): Promise<Sealer> {
  const path = join(dir, SEALER_HEADER_FILE);
  let header: Header;
  try {
    header = await readJsonFileAsync(path, headerSchema);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : `is not a valid sealer header (${e instanceof JsonFileError ? e.problem : (e as Error).message})`;
    throw new SealerError('bad-header', `${path} ${why}`);
  }
  const bytes = secretBytes(secret);
  let sealer: SoftwareSealer;
  try {
    sealer = new SoftwareSealer(await deriveKey(bytes, Buffer.from(header.kdf.salt, 'hex'), header.kdf));
  } finally {
    bytes.fill(0);
  }
  try {
    sealer.openSync(DOMAIN_CHECK, Buffer.from(header.check, 'hex'), checkAad(header)).fill(0);
  } catch {
    // Also the outcome if salt or parameters were edited: they are bound into the check's AAD.
    sealer.close();
    throw new WrongOperatorSecretError();
  }
  return sealer;
}
