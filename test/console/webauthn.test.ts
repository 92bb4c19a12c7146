// WebAuthn approvals verified as each signer verifies them (policy/webauthn.ts, sign-approvals.ts):
// ES256 and EdDSA assertions over the statement digest, origin, RP id, type, UP/UV flags,
// signature and a monotonic counter; a per-signature approval made with an enrolled credential.
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../contract/bytes.js';
import { defaultGovernance, governanceDocumentSchema, signApprovalDigest, verifySignApprovals, verifyWebAuthnAssertion, type SignApprovalStatement } from '../../policy/index.js';
import { SoftAuthenticator } from './authenticator.js';

const challenge = randomBytes(32);

describe('a WebAuthn assertion', () => {
  for (const alg of [-7, -8] as const) {
    it(`verifies (${alg === -7 ? 'ES256' : 'EdDSA'}) only over its challenge, origin, RP id, flags and a rising counter`, () => {
      const a = new SoftAuthenticator(alg);
      const good = a.assert(challenge);
      expect(verifyWebAuthnAssertion(good, a.credential, challenge)).toEqual({ ok: true, counter: 1 });
      // Replayed: its counter is not above the one recorded.
      expect(verifyWebAuthnAssertion(good, a.credential, challenge, 1)).toMatchObject({ ok: false, reason: expect.stringMatching(/counter 1 is not above 1/) });
      expect(verifyWebAuthnAssertion(a.assert(randomBytes(32)), a.credential, challenge)).toMatchObject({ reason: 'its challenge is not this statement' });
      expect(verifyWebAuthnAssertion(a.assert(challenge, { origin: 'https://evil.example' }), a.credential, challenge)).toMatchObject({ reason: expect.stringMatching(/origin https:\/\/evil.example/) });
      expect(verifyWebAuthnAssertion(a.assert(challenge, { rpId: 'evil.example' }), a.credential, challenge)).toMatchObject({ reason: 'it is not scoped to RP id localhost' });
      expect(verifyWebAuthnAssertion(a.assert(challenge, { type: 'webauthn.create' }), a.credential, challenge)).toMatchObject({ reason: expect.stringMatching(/not a webauthn.get/) });
      expect(verifyWebAuthnAssertion(a.assert(challenge, { flags: 0x01 }), a.credential, challenge)).toMatchObject({ reason: 'the authenticator did not verify the user' });
      expect(verifyWebAuthnAssertion(a.assert(challenge, { flags: 0x04 }), a.credential, challenge)).toMatchObject({ reason: 'the authenticator saw no user presence' });
      // Altered: authenticatorData with another counter, or a signature bit flipped.
      const raised = Buffer.from(good.authenticatorData, 'base64url');
      raised.writeUInt32BE(99, 33);
      expect(verifyWebAuthnAssertion({ ...good, authenticatorData: raised.toString('base64url') }, a.credential, challenge)).toMatchObject({ reason: 'its signature does not verify' });
      const sig = Buffer.from(good.signature, 'base64url');
      sig[sig.length - 1]! ^= 1;
      expect(verifyWebAuthnAssertion({ ...good, signature: sig.toString('base64url') }, a.credential, challenge)).toMatchObject({ ok: false });
      expect(verifyWebAuthnAssertion(good, new SoftAuthenticator(alg).credential, challenge)).toMatchObject({ reason: 'it is made with another credential' });
    });
  }
});

describe('a per-signature approval made with a security key', () => {
  const keys = ['admin1', 'admin2'].map(() => ed25519.utils.randomSecretKey());
  const key = new SoftAuthenticator(-7);
  const base = defaultGovernance('c1', keys.map((k, i) => ({ name: `admin${i + 1}`, approvalKey: toHex(ed25519.getPublicKey(k)) })));
  const governance = governanceDocumentSchema.parse({ ...base, administrators: base.administrators.map((a) => (a.name === 'admin2' ? { ...a, webauthn: [key.credential] } : a)) });
  const digest = toHex(randomBytes(64));
  const statement = (): SignApprovalStatement => ({ clusterId: 'c1', keyId: 'k1', algorithm: 'ED25519_SHA_512', digest, expiresAt: Date.now() + 60_000, nonce: toHex(randomBytes(16)), approver: 'admin2' });
  const check = (approval: unknown, counters: Record<string, number> = {}) =>
    verifySignApprovals({ approvals: [approval], required: 1, governance, keyId: 'k1', algorithm: 'ED25519_SHA_512', digest, now: Date.now(), usedNonces: new Set(), counters });

  it('counts for the enrolled administrator, answering the counter to record', () => {
    const s = statement();
    const r = check({ ...s, webauthn: key.assert(signApprovalDigest(s)) });
    expect(r).toMatchObject({ ok: true, approvers: ['admin2'], counters: [{ credentialId: key.credential.id, counter: key.counter }] });
  });

  it('is refused for another statement, another administrator, or a counter already passed', () => {
    const s = statement();
    const w = key.assert(signApprovalDigest(s));
    expect(check({ ...s, nonce: toHex(randomBytes(16)), webauthn: w })).toMatchObject({ ok: false, reason: expect.stringMatching(/\(WebAuthn\) does not verify: its challenge is not this statement/) });
    expect(check({ ...s, approver: 'admin1', webauthn: w })).toMatchObject({ ok: false, reason: expect.stringMatching(/does not enrol for admin1/) });
    expect(check({ ...s, webauthn: w }, { [key.credential.id]: key.counter })).toMatchObject({ ok: false, reason: expect.stringMatching(/signature counter \d+ is not above/) });
  });

  it('a governance document refuses one credential under two administrators', () => {
    const twice = { ...governance, administrators: governance.administrators.map((a) => ({ ...a, webauthn: [key.credential] })) };
    expect(governanceDocumentSchema.safeParse(twice).success).toBe(false);
  });
});
