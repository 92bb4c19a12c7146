// The hash that turns OT-extension rows into random-OT pads: the tweakable circular
// correlation-robust hash of Guo, Katz, Wang and Yu ("Efficient and Secure Multiparty
// Computation from Fixed-Key Block Ciphers", IEEE S&P 2020, §7.3), from AES-128 under a public
// key π:
//
//   H(x, i) = π(π(x) ⊕ i) ⊕ π(x)
//
// It is what correlated rows x and x ⊕ Δ (secret Δ) need: H(x ⊕ Δ, i) looks random even given
// H(x, i) for many x. Output block k of row j uses the tweak i = (j, k), so every block of every
// row has its own tweak. AES-ECB takes all the rows in one native call: a signature hashes
// thousands of rows, and one SHA-512 call per row cost more in call overhead than in hashing.

import { createCipheriv } from 'node:crypto';
import { endianness } from 'node:os';

// Tweaks and XORs run on 32-bit words of the host's byte order; the encoding below is the
// little-endian one, which every party must share.
if (endianness() !== 'LE') throw new Error('the OT row hash needs a little-endian host');

/**
 * Blocks `from`..`to`−1 of H(x_j, (j, k)) for each 16-byte row x_j of `rows`, numbered from
 * `firstRow`; row by row, 16 bytes per block. `key` (16 bytes) is public and names the context.
 */
export function tccr(key: Uint8Array, rows: Uint8Array, firstRow: number, from: number, to: number): Uint8Array {
  const count = rows.length / 16;
  const per = to - from;
  if (!Number.isInteger(count) || per < 1) throw new RangeError('rows must be whole 16-byte blocks, and at least one block asked');
  const aes = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
  const y = words(aes.update(rows));
  const tweaked = new Uint32Array(4 * count * per);
  for (let r = 0; r < count; r++) {
    for (let k = 0; k < per; k++) {
      const o = 4 * (r * per + k);
      tweaked[o] = y[4 * r]! ^ (firstRow + r);
      tweaked[o + 1] = y[4 * r + 1]! ^ (from + k);
      tweaked[o + 2] = y[4 * r + 2]!;
      tweaked[o + 3] = y[4 * r + 3]!;
    }
  }
  const z = words(aes.update(new Uint8Array(tweaked.buffer)));
  aes.final();
  for (let r = 0; r < count; r++) {
    for (let k = 0; k < per; k++) {
      const o = 4 * (r * per + k);
      for (let w = 0; w < 4; w++) z[o + w]! ^= y[4 * r + w]!;
    }
  }
  return new Uint8Array(z.buffer);
}

/** A copy as aligned 32-bit words (cipher output may sit at any offset of a pooled buffer). */
function words(b: Uint8Array): Uint32Array {
  const out = new Uint32Array(b.length / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}
