// Big-endian bytes ↔ non-negative integers for every protocol (RSA's OS2IP/I2OSP, the ECDSA
// curves' scalars, noble's groups' secret scalars). Word by word through a DataView, never through
// a string: shares and nonces pass through them, and a string cannot be wiped.

export const WORD = 0xffffffffffffffffn;

/** OS2IP: big-endian bytes to a non-negative integer. */
export const bytesToBigInt = (b: Uint8Array): bigint => readBigInt(new DataView(b.buffer, b.byteOffset, b.byteLength), 0, b.length);

/** The big-endian integer in `len` bytes of `view` from `offset`: many fixed-size numbers read from one buffer. */
export function readBigInt(view: DataView, offset: number, len: number): bigint {
  const head = len % 8;
  let x = 0n;
  for (let i = 0; i < head; i++) x = (x << 8n) | BigInt(view.getUint8(offset + i));
  for (let i = offset + head; i < offset + len; i += 8) x = (x << 64n) | view.getBigUint64(i);
  return x;
}

/** I2OSP: a non-negative integer to exactly `len` big-endian bytes. */
export function bigIntToBytes(x: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  writeBigInt(new DataView(out.buffer), 0, len, x);
  return out;
}

/** Writes x as exactly `len` big-endian bytes of `view` from `offset` (zero-filled ahead of it). */
export function writeBigInt(view: DataView, offset: number, len: number, x: bigint): void {
  if (x < 0n) throw new RangeError('negative integer');
  if (len === 32 && x >> 256n === 0n) {
    // The common size (P-256, secp256k1) without a loop: about a third faster, and the loops of ã write thousands.
    view.setBigUint64(offset, x >> 192n);
    view.setBigUint64(offset + 8, BigInt.asUintN(64, x >> 128n));
    view.setBigUint64(offset + 16, BigInt.asUintN(64, x >> 64n));
    view.setBigUint64(offset + 24, BigInt.asUintN(64, x));
    return;
  }
  let i = offset + len;
  for (; x > 0n; ) {
    if (i - offset >= 8) {
      i -= 8;
      view.setBigUint64(i, x & WORD);
      x >>= 64n;
    } else if (i > offset) {
      view.setUint8(--i, Number(x & 0xffn));
      x >>= 8n;
    } else throw new RangeError('integer too large');
  }
  while (i > offset) view.setUint8(--i, 0);
}
