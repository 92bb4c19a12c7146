// What a signer released, for its audit entry (written before the answer leaves the signer).
import { sha256 } from '@noble/hashes/sha2.js';

export interface Released {
  output: 'partial' | 'key';
  keyId: string;
  algorithm?: string;
  /** Digest of what was signed or decrypted (hex); never the message itself. */
  digest?: string;
  /** A key made: who asked, who approved, the request's hash or the proposal. */
  principal?: { name: string };
  policy?: { version: number; approvals: string[] };
  detail?: Record<string, string>;
}

export const digestHex = (b: Uint8Array): string => Buffer.from(sha256(b)).toString('hex');
