// Big-endian bytes ↔ non-negative integers for every protocol (RSA's OS2IP/I2OSP, the ECDSA
// curves' scalars, noble's groups' secret scalars). Word by word through a DataView, never through
// a string: shares and nonces pass through them, and a string cannot be wiped.

export const WORD = 0xffffffffffffffffn;

/** OS2IP: big-endian bytes to a non-negative integer. */
export function bytesToBigInt(b: Uint8Array): bigint {
  const head = b.length % 8;
  let x = 0n;
  for (let i = 0; i < head; i++) x = (x << 8n) | BigInt(b[i]!);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = head; i < b.length; i += 8) x = (x << 64n) | view.getBigUint64(i);
  return x;
}

/** I2OSP: a non-negative integer to exactly `len` big-endian bytes. */
export function bigIntToBytes(x: bigint, len: number): Uint8Array {
  if (x < 0n) throw new RangeError('negative integer');
  const out = new Uint8Array(len);
  const view = new DataView(out.buffer);
  for (let i = len; x > 0n; ) {
    if (i >= 8) {
      i -= 8;
      view.setBigUint64(i, x & WORD);
      x >>= 64n;
    } else if (i > 0) {
      out[--i] = Number(x & 0xffn);
      x >>= 8n;
    } else throw new RangeError('integer too large');
  }
  return out;
}

