// The symmetric keys' ciphertext blob (contract/keys/ciphertext.ts): header round trip, and a
// payload that opens only with its PRF output and its encryption context, untampered.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CiphertextError, encodeHeader, openBlob, parseBlob, prfInput, sealBlob } from '../../contract/keys/ciphertext.js';

const header = { keyId: '1234abcd-12ab-34cd-56ef-1234567890ab', material: 2, nonce: new Uint8Array(32).fill(7) };
const prf = new Uint8Array(randomBytes(64));
const context = { purpose: 'test', tenant: 'a' };
const plaintext = new TextEncoder().encode('attack at dawn');

describe('ciphertext blob', () => {
  it('round-trips the header and the payload', () => {
    const h = encodeHeader(header);
    const blob = sealBlob(prf, h, context, plaintext);
    expect(parseBlob(blob).header).toEqual(header);
    expect(Buffer.from(openBlob(prf, blob, { tenant: 'a', purpose: 'test' })).toString()).toBe('attack at dawn');
  });

  it('another context, PRF output, header or body does not open', () => {
    const h = encodeHeader(header);
    const blob = sealBlob(prf, h, context, plaintext);
    expect(() => openBlob(prf, blob, { purpose: 'test' })).toThrow(CiphertextError);
    expect(() => openBlob(new Uint8Array(randomBytes(64)), blob, context)).toThrow(CiphertextError);
    for (const at of [30, blob.length - 1]) {
      const t = blob.slice();
      t[at]! ^= 1;
      expect(() => openBlob(prf, t, context)).toThrow(CiphertextError);
    }
  });

  it('binds the context into the PRF input, order-independently', () => {
    const h = encodeHeader(header);
    expect(prfInput(h, { a: '1', b: '2' })).toEqual(prfInput(h, { b: '2', a: '1' }));
    expect(prfInput(h, { a: '1' })).not.toEqual(prfInput(h, { a: '2' }));
  });

  it('refuses what is not a blob of this format, and bad header fields', () => {
    expect(() => parseBlob(new Uint8Array(10))).toThrow(/not an mpchsm ciphertext/);
    const other = sealBlob(prf, encodeHeader(header), context, plaintext);
    other[4] = 9;
    expect(() => parseBlob(other)).toThrow(/format 9/);
    expect(() => encodeHeader({ ...header, keyId: 'alias/x' })).toThrow(CiphertextError);
    expect(() => encodeHeader({ ...header, material: 0 })).toThrow(CiphertextError);
    expect(() => encodeHeader({ ...header, nonce: new Uint8Array(8) })).toThrow(CiphertextError);
  });
});
