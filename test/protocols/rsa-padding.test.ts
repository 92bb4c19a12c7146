import { constants, createHash, generateKeyPairSync, privateDecrypt, publicEncrypt, sign as nodeSign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bigIntToBytes, bytesToBigInt } from '../../signers/protocols/integers.js';
import { modPow } from '../../signers/protocols/rsa/modpow.js';
import {
  DecodeError,
  emsaPkcs1v15Encode,
  emsaPssEncode,
  emsaPssVerify,
  oaepDecode,
  pkcs1v15Decode,
  type SignHash,
} from '../../signers/protocols/rsa/padding.js';
import { seededRng } from '../helpers/rng.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const k = 256;

/** The raw RSA private operation through node, so padding is checked against OpenSSL's. */
const rawPrivate = (key: KeyObject, c: Uint8Array) => new Uint8Array(privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, c));
const rawPublic = (key: KeyObject, s: Uint8Array) => new Uint8Array(publicEncrypt({ key, padding: constants.RSA_NO_PADDING }, s));

function expectDecodeError(f: () => unknown) {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    expect((e as Error).message).toBe('decryption error');
    return;
  }
  expect.unreachable('decoding succeeded');
}

describe('signature encodings', () => {
  it('EMSA-PKCS1-v1_5 matches OpenSSL for SHA-256/384/512', () => {
    for (const hash of ['sha256', 'sha384', 'sha512'] as const) {
      const data = Buffer.from(`message for ${hash}`);
      const sig = nodeSign(hash, data, { key: privateKey, padding: constants.RSA_PKCS1_PADDING });
      const em = rawPublic(publicKey, sig); // s^e = EM
      expect(Buffer.from(emsaPkcs1v15Encode(createHash(hash).update(data).digest(), hash, k))).toEqual(Buffer.from(em));
    }
  });

  it('EMSA-PSS: OpenSSL signatures verify with our decoder, ours round-trip, tampering fails', () => {
    const rng = seededRng('pss');
    for (const hash of ['sha256', 'sha384', 'sha512'] as SignHash[]) {
      const data = Buffer.from(`pss ${hash}`);
      const digest = createHash(hash).update(data).digest();
      const hLen = digest.length;
      const sig = nodeSign(hash, data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hLen });
      expect(emsaPssVerify(digest, hash, 2047, rawPublic(publicKey, sig))).toBe(true);

      const em = emsaPssEncode(digest, hash, 2047, rng(hLen));
      expect(em.length).toBe(k);
      expect(em[0]! & 0x80).toBe(0);
      expect(emsaPssVerify(digest, hash, 2047, em)).toBe(true);
      const other = Uint8Array.from(digest);
      other[0]! ^= 1;
      expect(emsaPssVerify(other, hash, 2047, em)).toBe(false);
      for (const i of [0, 5, k - hLen - 2, k - 2, k - 1]) {
        const t = Uint8Array.from(em);
        t[i]! ^= i === 0 ? 0x01 : 0x40;
        expect(emsaPssVerify(digest, hash, 2047, t)).toBe(false);
      }
    }
  });

  it('rejects digests of the wrong length and salts of the wrong length', () => {
    expect(() => emsaPkcs1v15Encode(new Uint8Array(31), 'sha256', k)).toThrow(/32 bytes/);
    expect(() => emsaPssEncode(new Uint8Array(32), 'sha256', 2047, new Uint8Array(20))).toThrow(/salt/);
  });
});

describe('decryption decoders', () => {
  it('OAEP (SHA-1 and SHA-256, with and without label) round-trips with OpenSSL', () => {
    for (const [hash, oaepHash] of [
      ['sha1', 'sha1'],
      ['sha256', 'sha256'],
    ] as const) {
      for (const label of [new Uint8Array(0), Buffer.from('context label')]) {
        for (const msg of [Buffer.alloc(0), Buffer.from('secret'), Buffer.alloc(k - 2 * (hash === 'sha1' ? 20 : 32) - 2, 7)]) {
          const c = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash, oaepLabel: label }, msg);
          expect(Buffer.from(oaepDecode(rawPrivate(privateKey, c), hash, label))).toEqual(msg);
        }
      }
    }
  });

  it('OAEP rejects a wrong label, a wrong hash, and tampered encodings with one error', () => {
    const c = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from('x'));
    const em = rawPrivate(privateKey, c);
    expectDecodeError(() => oaepDecode(em, 'sha256', Buffer.from('label')));
    expectDecodeError(() => oaepDecode(em, 'sha1'));
    for (const i of [0, 1, 40, 100, k - 1]) {
      const t = Uint8Array.from(em);
      t[i]! ^= 1;
      expectDecodeError(() => oaepDecode(t, 'sha256'));
    }
    expectDecodeError(() => oaepDecode(new Uint8Array(k), 'sha256'));
    expectDecodeError(() => oaepDecode(new Uint8Array(40), 'sha256')); // shorter than 2·hLen + 2
  });

  it('PKCS#1 v1.5 type 2 round-trips with OpenSSL and rejects malformed blocks with one error', () => {
    for (const msg of [Buffer.alloc(0), Buffer.from('pre-master secret'), Buffer.alloc(k - 11, 9)]) {
      const c = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, msg);
      expect(Buffer.from(pkcs1v15Decode(rawPrivate(privateKey, c)))).toEqual(msg);
    }
    const block = (ps: number, mark = 2) => {
      const em = new Uint8Array(k).fill(0x55);
      em[0] = 0;
      em[1] = mark;
      em[2 + ps] = 0;
      return em;
    };
    expect(pkcs1v15Decode(block(8)).length).toBe(k - 11);
    expectDecodeError(() => pkcs1v15Decode(block(7))); // padding string too short
    expectDecodeError(() => pkcs1v15Decode(block(8, 1))); // block type 1
    const noSeparator = new Uint8Array(k).fill(0x55);
    noSeparator[0] = 0;
    noSeparator[1] = 2;
    expectDecodeError(() => pkcs1v15Decode(noSeparator));
    const lead = block(8);
    lead[0] = 1;
    expectDecodeError(() => pkcs1v15Decode(lead));
  });
});

interface OaepVector {
  tcId: number;
  comment: string;
  msg: string;
  ct: string;
  label: string;
  result: 'valid' | 'invalid' | 'acceptable';
}

describe('Wycheproof rsa_oaep_2048_sha256_mgf1sha256', () => {
  const file = JSON.parse(readFileSync(resolve(process.cwd(), '../shared/vectors/wycheproof/rsa_oaep_2048_sha256_mgf1sha256_test.json'), 'utf8'));
  const group = file.testGroups[0] as { privateKey: { modulus: string; privateExponent: string }; tests: OaepVector[] };
  const n = BigInt('0x' + group.privateKey.modulus);
  const d = BigInt('0x' + group.privateKey.privateExponent);
  const kk = Math.ceil(n.toString(2).length / 8);

  /** RSADP with the vector's private key (c must be k bytes and < n), then our OAEP decoder. */
  function decrypt(ctHex: string, labelHex: string): Uint8Array {
    const ct = Buffer.from(ctHex, 'hex');
    if (ct.length !== kk) throw new DecodeError();
    const c = bytesToBigInt(ct);
    if (c >= n) throw new DecodeError();
    return oaepDecode(bigIntToBytes(modPow(c, d, n), kk), 'sha256', Buffer.from(labelHex, 'hex'));
  }

  it('has the expected shape', () => {
    expect(group.tests.length).toBe(file.numberOfTests);
    expect(group.tests.filter((t) => t.result === 'invalid').length).toBeGreaterThan(10);
  });

  for (const t of group.tests) {
    it(`tcId ${t.tcId} ${t.result} ${t.comment}`, () => {
      if (t.result === 'valid') expect(Buffer.from(decrypt(t.ct, t.label)).toString('hex')).toBe(t.msg);
      else expectDecodeError(() => decrypt(t.ct, t.label));
    });
  }
});
