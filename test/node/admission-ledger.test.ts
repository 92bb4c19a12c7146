// A newcomer's ledger (signers/node/admission.ts mergedLedger): what the active signers spent,
// and for each security key the highest signature counter any of them recorded, so that an
// approval already spent at one of them is refused by the newcomer too (a signer admitted or
// restored later does not start from zero, where a replayed assertion would pass).
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../contract/bytes.js';
import { defaultGovernance, governanceDocumentSchema, signApprovalDigest, verifySignApprovals, type SignApprovalStatement } from '../../policy/index.js';
import { mergedAwaiting, mergedLedger } from '../../signers/node/admission.js';
import { admissionStateSchema } from '../../signers/node/guard/state.js';
import { SoftAuthenticator } from '../console/authenticator.js';

describe('the ledger a newcomer takes', () => {
  it('is the union of what was spent, with each credential’s highest counter', () => {
    const until = Date.now() + 60_000;
    const merged = mergedLedger([
      { seq: 7, proposals: { p1: until }, nonces: { n1: until }, requests: {}, webauthn: { k1: 5, k2: 9 } },
      { seq: 7, proposals: {}, nonces: { n2: until }, requests: { r1: until }, webauthn: { k1: 8 } },
      { seq: 7, proposals: {}, nonces: {}, requests: {} },
    ]);
    expect(merged).toEqual({ seq: 7, proposals: { p1: until }, nonces: { n1: until, n2: until }, requests: { r1: until }, webauthn: { k1: 8, k2: 9 } });
    expect(mergedLedger([{ seq: 1, proposals: {}, nonces: {}, requests: {} }])).not.toHaveProperty('webauthn');
  });

  it('refuses at the newcomer an approval spent at one active signer', () => {
    const admin = ed25519.utils.randomSecretKey();
    const key = new SoftAuthenticator(-7);
    const base = defaultGovernance('c1', [{ name: 'admin1', approvalKey: toHex(ed25519.getPublicKey(admin)) }]);
    const governance = governanceDocumentSchema.parse({ ...base, administrators: [{ ...base.administrators[0]!, webauthn: [key.credential] }] });
    const digest = toHex(randomBytes(64));
    const statement: SignApprovalStatement = { clusterId: 'c1', keyId: 'k1', algorithm: 'ED25519_SHA_512', digest, expiresAt: Date.now() + 60_000, nonce: toHex(randomBytes(16)), approver: 'admin1' };
    const approval = { ...statement, webauthn: key.assert(signApprovalDigest(statement)) };
    // Spent at signer2 only (signer1 was not in that signature's quorum).
    const ledgers = [
      { seq: 3, proposals: {}, nonces: {}, requests: {} },
      { seq: 3, proposals: {}, nonces: {}, requests: {}, webauthn: { [key.credential.id]: key.counter } },
    ];
    const check = (counters: Record<string, number>) => verifySignApprovals({ approvals: [approval], required: 1, governance, keyId: 'k1', algorithm: 'ED25519_SHA_512', digest, now: Date.now(), usedNonces: new Set(), counters });
    expect(check(ledgers[0]!.webauthn ?? {})).toMatchObject({ ok: true });
    expect(check(mergedLedger(ledgers).webauthn!)).toMatchObject({ ok: false, reason: expect.stringMatching(/signature counter \d+ is not above \d+/) });
  });
});

describe('the signers a newcomer awaits (require_attestation)', () => {
  const target = (id: number) => ({ id, ekPublic: toHex(randomBytes(8)), akPublic: toHex(randomBytes(8)) });
  it('are every signer any active signer still awaits, each once: one that answered only some of them is awaited here too', () => {
    const [a5, a6] = [target(5), target(6)];
    const from = (...lists: (typeof a5)[][]) => lists.map((awaiting, i) => ({ from: i + 1, awaiting }));
    expect(mergedAwaiting(from([a6], [], [a5, a6]))).toEqual([a5, a6]);
    expect(mergedAwaiting(from([], []))).toEqual([]);
  });
  it('refuses signers naming different TPMs for the same one: one of them lies (a TPM it controls in place of the approved one)', () => {
    const a5 = target(5);
    const forged = { ...target(5), ekPublic: a5.ekPublic };
    expect(() => mergedAwaiting([{ from: 1, awaiting: [a5] }, { from: 3, awaiting: [forged] }])).toThrow(/signers 1 and 3 await another TPM of party 5/);
    expect(() => mergedAwaiting([{ from: 2, awaiting: [{ ...a5, ekPublic: target(5).ekPublic }] }, { from: 1, awaiting: [a5] }])).toThrow(/signers 2 and 1 await another TPM of party 5/);
  });
  it('a state from a signer that hands over none awaits nobody', () => {
    const parsed = admissionStateSchema.shape.awaiting.parse(undefined);
    expect(parsed).toEqual([]);
  });
});
