// WebAuthn approvals verified as each signer verifies them (policy/webauthn.ts, sign-approvals.ts):
// ES256 and EdDSA assertions over the statement digest, origin, RP id, type, UP/UV flags,
// signature and a monotonic counter; a per-signature approval made with an enrolled credential;
// a proposal's approval or refusal, and a governance version's approval along the chain.
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../contract/bytes.js';
import {
  approvalDigest,
  CounterBook,
  defaultGovernance,
  governanceDigest,
  governanceDocumentSchema,
  refusalDigest,
  signApproval,
  signApprovalDigest,
  signGovernance,
  signRefusal,
  verifyApproverOf,
  verifyApprovals,
  verifyGenesis,
  verifyGovernanceChain,
  verifyGovernanceUpdate,
  verifySignApprovals,
  verifyWebAuthnAssertion,
  type GovernanceDocument,
  type Proposal,
  type SignApprovalStatement,
} from '../../policy/index.js';
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

describe('a proposal approved or refused with a security key', () => {
  const keys = ['admin1', 'admin2', 'admin3'].map(() => ed25519.utils.randomSecretKey());
  const key = new SoftAuthenticator(-8);
  const base = defaultGovernance('c1', keys.map((k, i) => ({ name: `admin${i + 1}`, approvalKey: toHex(ed25519.getPublicKey(k)) })));
  const governance = governanceDocumentSchema.parse({ ...base, administrators: base.administrators.map((a) => (a.name === 'admin2' ? { ...a, webauthn: [key.credential] } : a)) });
  const now = Date.now();
  const proposal: Proposal = { id: 'p-00000001', clusterId: 'c1', operation: 'kms:DisableKey', parameters: { KeyId: 'k1' }, proposer: 'admin1', createdAt: now, expiresAt: now + 3600_000, governanceVersion: 1 };
  const byKey = (p: Proposal, digest = approvalDigest(p)) => ({ proposalId: p.id, admin: 'admin2', webauthn: key.assert(digest) });

  it('counts as its administrator’s approval, answering the counter to record; refused replayed, moved or made as a refusal', () => {
    const a = byKey(proposal);
    expect(verifyApprovals(proposal, [signApproval(proposal, 'admin1', keys[0]!), a], governance, now)).toMatchObject({ ok: true, approvers: ['admin1', 'admin2'], counters: [{ credentialId: key.credential.id, counter: key.counter }] });
    expect(verifyApprovals(proposal, [a], governance, now, true, { [key.credential.id]: key.counter })).toMatchObject({ ok: false, reason: expect.stringMatching(/by admin2 \(WebAuthn\) does not verify: its signature counter \d+ is not above \d+/) });
    const other = { ...proposal, id: 'p-00000002', parameters: { KeyId: 'k2' } };
    expect(verifyApprovals(other, [{ ...a, proposalId: other.id }], governance, now)).toMatchObject({ ok: false, reason: expect.stringMatching(/\(WebAuthn\) does not verify: its challenge is not this statement/) });
    expect(verifyApproverOf(proposal, byKey(proposal, refusalDigest(proposal)), governance, 'approval')).toMatchObject({ ok: false, reason: expect.stringMatching(/its challenge is not this statement/) });
    // Two approvals by one credential in one batch: the second must be above the first.
    const [first, second] = [byKey(proposal), byKey(proposal)];
    expect(verifyApprovals(proposal, [second, first], governance, now)).toMatchObject({ ok: false, reason: expect.stringMatching(/counter \d+ is not above/) });
  });

  it('a refusal verifies over the refusal digest only, by key or by security key', () => {
    expect(verifyApproverOf(proposal, signRefusal(proposal, 'admin3', keys[2]!), governance, 'refusal')).toMatchObject({ ok: true, approval: { admin: 'admin3' } });
    expect(verifyApproverOf(proposal, byKey(proposal, refusalDigest(proposal)), governance, 'refusal')).toMatchObject({ ok: true });
    expect(verifyApproverOf(proposal, signApproval(proposal, 'admin3', keys[2]!), governance, 'refusal')).toMatchObject({ ok: false, reason: expect.stringMatching(/the refusal by admin3 does not verify/) });
    expect(verifyApproverOf(proposal, signRefusal(proposal, 'admin3', keys[1]!), governance, 'refusal')).toMatchObject({ ok: false });
  });

  it('approves a governance version in the chain; each link’s counter above the last; never the bootstrap', () => {
    const genesis = { document: governance, signatures: keys.map((k, i) => signGovernance(governance, `admin${i + 1}`, k)) };
    const next = (doc: GovernanceDocument, quorum: Record<string, number>): GovernanceDocument => ({ ...doc, version: doc.version + 1, previous: toHex(governanceDigest(doc)), quorum: { ...doc.quorum, ...quorum } });
    const v2 = next(governance, { 'kms:DisableKey': 3 });
    const link2 = { document: v2, signatures: [signGovernance(v2, 'admin1', keys[0]!), { admin: 'admin2', webauthn: key.assert(governanceDigest(v2)) }] };
    expect(verifyGovernanceChain([genesis, link2])).toMatchObject({ ok: true, governance: { version: 2 } });
    const book = new CounterBook({ [key.credential.id]: key.counter });
    expect(verifyGovernanceUpdate(governance, link2, book)).toMatchObject({ ok: false, reason: expect.stringMatching(/v2: the approval by admin2 \(WebAuthn\) does not verify: its signature counter/) });
    // A replayed assertion (v2's) does not approve v3; an older counter on v3 breaks the chain.
    const v3 = next(v2, { 'kms:DisableKey': 1 });
    expect(verifyGovernanceChain([genesis, link2, { document: v3, signatures: [signGovernance(v3, 'admin1', keys[0]!), link2.signatures[1]!] }])).toMatchObject({ ok: false, reason: expect.stringMatching(/its challenge is not this statement/) });
    const stale = key.assert(governanceDigest(v3), { counter: 1 });
    expect(verifyGovernanceChain([genesis, link2, { document: v3, signatures: [signGovernance(v3, 'admin1', keys[0]!), { admin: 'admin2', webauthn: stale }] }])).toMatchObject({ ok: false, reason: expect.stringMatching(/counter 1 is not above/) });
    expect(verifyGenesis({ ...genesis, signatures: [...genesis.signatures.slice(0, 2), { admin: 'admin3', webauthn: key.assert(governanceDigest(governance)) }] })).toMatchObject({ ok: false, reason: expect.stringMatching(/with a security key/) });
  });
});
