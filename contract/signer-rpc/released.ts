// What a signer released, for its audit entry (written before the answer leaves the signer).
import { sha256 } from '@noble/hashes/sha2.js';

export interface Released {
  output: 'partial' | 'key';
  /** The key used; none for an account operation (GenerateRandom). */
  keyId?: string;
  algorithm?: string;
  /** Digest of what was signed or decrypted (hex); never the message itself. */
  digest?: string;
  /** The client's operation, as this signer read it (Sign, Decrypt, CreateKey, ReshareKey). */
  operation?: string;
  /** The principal that asked, by this signer's own registry. */
  principal?: { name: string };
  policy?: { version: number; approvals: string[] };
  /** The key as the client named it in the evidence. */
  keyRef?: string;
  /** SHA-256 of the canonical evidence JSON this signer acted on. */
  evidenceHash?: string;
  /** A key made: the request's hash or the proposal; a repeat of a release. */
  detail?: Record<string, string | boolean>;
}

export const digestHex = (b: Uint8Array): string => Buffer.from(sha256(b)).toString('hex');
