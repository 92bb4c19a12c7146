// The hash chain and signed heads.
//
// A line's hash is SHA-256 over its exact bytes (no newline). A checkpoint entry at seq k
// certifies the head "entry k-1 hashes to H" (H being the checkpoint's own `prev`) with an
// Ed25519 signature over
//   "mpchsm/audit-head/v1\0" || fingerprint (32 bytes) || k-1 (u64, big-endian) || H (32 bytes)
// The party's fingerprint is inside the signed bytes so a head cannot be replayed as another
// party's, even by a party that reused a key.

import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ed25519Sign } from '../contract/identity/curve25519.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import type { Head, SignedHead } from './entry.js';

/** `prev` of the first entry (seq 0). */
export const GENESIS_PREV = '0'.repeat(64);

/** What a verifier needs to know about a party: its pinned key and fingerprint (hex). */
export interface AuditKey {
  fingerprint: string;
  signPublicKey: string;
}

const DOMAIN = utf8ToBytes('mpchsm/audit-head/v1\0');

export const lineHash = (line: Uint8Array): string => bytesToHex(sha256(line));

function headMessage(fingerprint: string, head: Head): Uint8Array {
  const seq = new Uint8Array(8);
  new DataView(seq.buffer).setBigUint64(0, BigInt(head.seq));
  return concatBytes(DOMAIN, hexToBytes(fingerprint), seq, hexToBytes(head.hash));
}

export const signHead = (head: Head, fingerprint: string, signSecretKey: Uint8Array): string =>
  bytesToHex(ed25519Sign(headMessage(fingerprint, head), signSecretKey));

/** True when `head.sig` is this party's signature over the head (strict RFC 8032 checks). */
export function verifyHead(head: SignedHead, key: AuditKey): boolean {
  try {
    return ed25519.verify(hexToBytes(head.sig), headMessage(key.fingerprint, head), hexToBytes(key.signPublicKey), { zip215: false });
  } catch {
    return false;
  }
}
