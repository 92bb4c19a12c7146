// WebAuthn approvals: an administrator's security key or passkey, enrolled in the governance
// document (administrators[].webauthn) like an approval key, signs the same approval statement
// an Ed25519 approval key signs — the statement's digest is the WebAuthn challenge. Each
// verifier checks the assertion itself (W3C WebAuthn Level 2, §7.2 "Verifying an Authentication
// Assertion"): the credential is the one enrolled; clientDataJSON is a `webauthn.get` for this
// challenge from the enrolled origin; authenticatorData's rpIdHash is SHA-256 of the enrolled
// RP id, with user presence and user verification set; the signature (ES256 or EdDSA) verifies
// over authenticatorData || SHA-256(clientDataJSON) with the enrolled public key; and the
// signature counter is above the last one this verifier saw for the credential (both zero:
// an authenticator without a counter, whose statements are single-use by their nonce anyway).
//
// The public key is kept as the SPKI the browser reports at registration
// (AuthenticatorAttestationResponse.getPublicKey()), so node:crypto verifies it as it is and no
// CBOR/COSE parsing is needed; a library built for a relying party server
// (@simplewebauthn/server) would add that parsing and a session model the signers do not use.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { z } from 'zod';

const b64url = (min: number, max: number) => z.string().regex(/^[A-Za-z0-9_-]+$/, 'base64url').min(min).max(max);

/** COSE algorithm identifiers (RFC 9053): ES256 (ECDSA P-256 with SHA-256) and EdDSA (Ed25519). */
export const WEBAUTHN_ALGORITHMS = { ES256: -7, EdDSA: -8 } as const;

/** An enrolled credential, as the governance document lists it under its administrator. */
export const webauthnCredentialSchema = z
  .strictObject({
    /** The credential id, base64url. */
    id: b64url(16, 1400),
    /** SubjectPublicKeyInfo, DER, base64url. */
    publicKey: b64url(40, 200),
    alg: z.union([z.literal(WEBAUTHN_ALGORITHMS.ES256), z.literal(WEBAUTHN_ALGORITHMS.EdDSA)]),
    /** The relying party id the credential is scoped to (the console's host name). */
    rpId: z.string().regex(/^[a-z0-9.-]{1,253}$/),
    /** The console's origin, as clientDataJSON names it. */
    origin: z.string().regex(/^https?:\/\/[a-z0-9.-]{1,253}(?::\d{1,5})?$/),
  })
  .superRefine((c, ctx) => {
    if (!publicKeyOf(c)) ctx.addIssue({ code: 'custom', path: ['publicKey'], message: c.alg === -7 ? 'not a P-256 public key' : 'not an Ed25519 public key' });
  });
export type WebAuthnCredential = z.infer<typeof webauthnCredentialSchema>;

/** An assertion (navigator.credentials.get's response), each part base64url. */
export const webauthnAssertionSchema = z.strictObject({
  credentialId: b64url(16, 1400),
  authenticatorData: b64url(50, 4096),
  clientDataJSON: b64url(40, 4096),
  signature: b64url(64, 200),
});
export type WebAuthnAssertion = z.infer<typeof webauthnAssertionSchema>;

function publicKeyOf(c: { publicKey: string; alg: number }): KeyObject | undefined {
  try {
    const key = createPublicKey({ key: Buffer.from(c.publicKey, 'base64url'), format: 'der', type: 'spki' });
    const ok = c.alg === WEBAUTHN_ALGORITHMS.ES256 ? key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' : key.asymmetricKeyType === 'ed25519';
    return ok ? key : undefined;
  } catch {
    return undefined;
  }
}

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;

export type WebAuthnResult = { ok: true; counter: number } | { ok: false; reason: string };

/** A WebAuthn credential's signature counter to record once the approval is spent. */
export interface CounterUse {
  credentialId: string;
  counter: number;
}

/**
 * The counters one verification goes by: those the verifier recorded, and those of the
 * assertions it accepted so far in the same batch (two approvals by one credential in one
 * request, or along a governance chain: each must be above the one before).
 */
export class CounterBook {
  readonly uses: CounterUse[] = [];
  constructor(private readonly recorded: Readonly<Record<string, number>> = {}) {}

  last(credentialId: string): number {
    return Math.max(this.recorded[credentialId] ?? 0, ...this.uses.filter((u) => u.credentialId === credentialId).map((u) => u.counter));
  }
}

/**
 * Verifies `assertion` by `credential` over `challenge` (the approval statement's digest);
 * `lastCounter`: the highest signature counter this verifier recorded for the credential.
 * The caller records the answered counter once the approval is spent.
 */
export function verifyWebAuthnAssertion(assertion: WebAuthnAssertion, credential: WebAuthnCredential, challenge: Uint8Array, lastCounter = 0): WebAuthnResult {
  const fail = (reason: string): WebAuthnResult => ({ ok: false, reason });
  if (assertion.credentialId !== credential.id) return fail('it is made with another credential');
  const clientDataBytes = Buffer.from(assertion.clientDataJSON, 'base64url');
  let clientData: { type?: unknown; challenge?: unknown; origin?: unknown; crossOrigin?: unknown };
  try {
    clientData = JSON.parse(clientDataBytes.toString('utf8')) as typeof clientData;
  } catch {
    return fail('its clientDataJSON is not JSON');
  }
  if (clientData.type !== 'webauthn.get') return fail(`its clientDataJSON is a ${String(clientData.type)}, not a webauthn.get`);
  if (clientData.challenge !== Buffer.from(challenge).toString('base64url')) return fail('its challenge is not this statement');
  if (clientData.origin !== credential.origin) return fail(`it comes from origin ${String(clientData.origin)}, not ${credential.origin}`);
  if (clientData.crossOrigin === true) return fail('it was made in a cross-origin frame');
  const authData = Buffer.from(assertion.authenticatorData, 'base64url');
  if (authData.length < 37) return fail('its authenticatorData is too short');
  if (!authData.subarray(0, 32).equals(Buffer.from(sha256(new TextEncoder().encode(credential.rpId))))) return fail(`it is not scoped to RP id ${credential.rpId}`);
  const flags = authData[32]!;
  if (!(flags & FLAG_UP)) return fail('the authenticator saw no user presence');
  if (!(flags & FLAG_UV)) return fail('the authenticator did not verify the user');
  const key = publicKeyOf(credential);
  if (!key) return fail('the enrolled public key is unusable');
  const signed = Buffer.concat([authData, sha256(clientDataBytes)]);
  let good: boolean;
  try {
    good = verify(credential.alg === WEBAUTHN_ALGORITHMS.ES256 ? 'sha256' : null, signed, key, Buffer.from(assertion.signature, 'base64url'));
  } catch {
    good = false;
  }
  if (!good) return fail('its signature does not verify');
  const counter = authData.readUInt32BE(33);
  if ((counter !== 0 || lastCounter !== 0) && counter <= lastCounter) return fail(`its signature counter ${counter} is not above ${lastCounter}: a replayed or cloned authenticator`);
  return { ok: true, counter };
}
