// The ciphertext blob of a symmetric (SYMMETRIC_DEFAULT) key: a versioned header, then the
// payload under AES-256-GCM. The header names the key, its material version (rotation keeps
// old versions decrypting) and a 32-byte nonce; the key and IV of the payload come from the
// threshold PRF's output on (header, encryption context) — each blob has a key of its own,
// which no party can compute alone (signers/protocols/tprf.ts). The encryption context is
// authenticated twice over: it is in the PRF's input and in GCM's associated data.
//
//   blob = "MPCH" ‖ 0x01 ‖ key id (16 bytes, the UUID) ‖ material version (u32 BE) ‖ nonce (32)
//          ‖ GCM ciphertext ‖ tag (16)
//
// Gateway and signers both read it (the signers derive the PRF input from the client's request
// themselves), so it lives here, beside the key specs.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { canonicalJson } from '../canonical.js';
import { lengthPrefixed } from '../identity/signed-request.js';

const MAGIC = Buffer.from('MPCH', 'latin1');
const FORMAT = 1;
export const HEADER_BYTES = MAGIC.length + 1 + 16 + 4 + 32;
const TAG_BYTES = 16;
const PRF_DOMAIN = new TextEncoder().encode('mpchsm/symmetric-default/v1');

/** Not a ciphertext blob of this format, or not one this key and context decrypt. */
export class CiphertextError extends Error {
  override readonly name = 'CiphertextError';
}

export interface BlobHeader {
  keyId: string;
  material: number;
  nonce: Uint8Array;
}

/** An encryption context as AWS takes it: string keys to string values. */
export type EncryptionContext = Readonly<Record<string, string>>;

export function encodeHeader(h: BlobHeader): Uint8Array {
  const id = Buffer.from(h.keyId.replace(/-/g, ''), 'hex');
  if (id.length !== 16 || !/^[0-9a-f-]{36}$/.test(h.keyId)) throw new CiphertextError(`${h.keyId} is not a key id`);
  if (!Number.isInteger(h.material) || h.material < 1 || h.material > 0xffffffff) throw new CiphertextError('material version out of range');
  if (h.nonce.length !== 32) throw new CiphertextError('the nonce must be 32 bytes');
  const out = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(out, 0);
  out[4] = FORMAT;
  id.copy(out, 5);
  out.writeUInt32BE(h.material, 21);
  out.set(h.nonce, 25);
  return new Uint8Array(out);
}

/** Reads a blob's header; the payload stays unread until decryption. */
export function parseBlob(blob: Uint8Array): { header: BlobHeader; headerBytes: Uint8Array; sealed: Uint8Array } {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (b.length < HEADER_BYTES + TAG_BYTES || !b.subarray(0, 4).equals(MAGIC)) throw new CiphertextError('not an mpchsm ciphertext blob');
  if (b[4] !== FORMAT) throw new CiphertextError(`ciphertext format ${b[4]} is not known here`);
  const hex = b.subarray(5, 21).toString('hex');
  const keyId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  const header = { keyId, material: b.readUInt32BE(21), nonce: new Uint8Array(b.subarray(25, HEADER_BYTES)) };
  return { header, headerBytes: new Uint8Array(b.subarray(0, HEADER_BYTES)), sealed: new Uint8Array(b.subarray(HEADER_BYTES)) };
}

/** The PRF input of a blob: its header and canonical encryption context, domain-separated. */
export const prfInput = (headerBytes: Uint8Array, context: EncryptionContext): Uint8Array =>
  lengthPrefixed(PRF_DOMAIN, headerBytes, new TextEncoder().encode(canonicalJson(context)));

/** AES-256-GCM key and IV from the PRF output (64 bytes): used for one blob only. */
function gcmParams(prfOutput: Uint8Array): { key: Uint8Array; iv: Uint8Array } {
  if (prfOutput.length !== 64) throw new CiphertextError('the PRF output must be 64 bytes');
  return { key: prfOutput.subarray(0, 32), iv: prfOutput.subarray(32, 44) };
}

export function sealBlob(prfOutput: Uint8Array, headerBytes: Uint8Array, context: EncryptionContext, plaintext: Uint8Array): Uint8Array {
  const { key, iv } = gcmParams(prfOutput);
  const c = createCipheriv('aes-256-gcm', key, iv).setAAD(prfInput(headerBytes, context));
  return new Uint8Array(Buffer.concat([headerBytes, c.update(plaintext), c.final(), c.getAuthTag()]));
}

export function openBlob(prfOutput: Uint8Array, blob: Uint8Array, context: EncryptionContext): Uint8Array {
  const { headerBytes, sealed } = parseBlob(blob);
  const { key, iv } = gcmParams(prfOutput);
  const d = createDecipheriv('aes-256-gcm', key, iv).setAAD(prfInput(headerBytes, context));
  d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return new Uint8Array(Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG_BYTES)), d.final()]));
  } catch {
    throw new CiphertextError('the ciphertext, its key or its encryption context does not match');
  }
}
