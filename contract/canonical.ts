// Canonical encoding for everything mpchsm signs: deterministic JSON (object keys sorted by
// UTF-16 code units, no whitespace), and domain-separated SHA-256 digests of it. Two parties
// that hold equal values produce equal bytes, so a signature made by an administrator's tool
// verifies at every signer. Numbers are restricted to safe integers (timestamps in ms, counts):
// their text form is the same in every JSON implementation, unlike fractions or exponents.
import { sha256 } from '@noble/hashes/sha2.js';

export class CanonicalError extends Error {
  override readonly name = 'CanonicalError';
}

/** Deterministic JSON text of `value`. Throws CanonicalError on values JSON cannot carry exactly. */
export function canonicalJson(value: unknown): string {
  return encode(value, '$');
}

function encode(v: unknown, at: string): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new CanonicalError(`${at}: ${v} is not a safe integer`);
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map((x, i) => encode(x, `${at}[${i}]`)).join(',')}]`;
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined) // as JSON.stringify: an absent optional field
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${encode(x, `${at}.${k}`)}`).join(',')}}`;
  }
  throw new CanonicalError(`${at}: ${typeof v} is not JSON`);
}

/** SHA-256(domain ‖ 0x00 ‖ canonicalJson(value)): what approvals and governance signatures cover. */
export function canonicalDigest(domain: string, value: unknown): Uint8Array {
  const d = new TextEncoder().encode(domain);
  const body = new TextEncoder().encode(canonicalJson(value));
  const msg = new Uint8Array(d.length + 1 + body.length);
  msg.set(d);
  msg.set(body, d.length + 1);
  return sha256(msg);
}

/** Signature domains: one per kind of statement, so a signature of one kind is never another. */
export const DOMAINS = {
  governance: 'mpchsm/governance/v1',
  proposal: 'mpchsm/proposal/v1',
  proposalRefusal: 'mpchsm/proposal-refusal/v1',
  signApproval: 'mpchsm/sign-approval/v1',
  genesis: 'mpchsm/genesis/v1',
  adminFile: 'mpchsm/admin-file/v1',
  posture: 'mpchsm/posture/v1',
} as const;
