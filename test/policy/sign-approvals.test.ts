import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { messageDigestFor, signSignApproval, verifySignApprovals, type SignApprovalStatement } from '../../policy/sign-approvals.js';
import { toHex } from '../../contract/bytes.js';
import { admin, bootstrapGovernance, CLUSTER, KEY_ID, makeAdmin, NOW } from './fixtures.js';

const governance = bootstrapGovernance();
const message = new TextEncoder().encode('release v1.2.3');
const digest = messageDigestFor('ECDSA_SHA_256', 'RAW', message);
let nonceCounter = 0;
const statement = (approver: string, over: Partial<SignApprovalStatement> = {}): SignApprovalStatement => ({
  clusterId: CLUSTER,
  keyId: KEY_ID,
  algorithm: 'ECDSA_SHA_256',
  digest,
  expiresAt: NOW + 600_000,
  nonce: (++nonceCounter).toString(16).padStart(32, '0'),
  approver,
  ...over,
});
const approve = (approver: string, over: Partial<SignApprovalStatement> = {}) => signSignApproval(statement(approver, over), admin(approver).secretKey);
const check = (approvals: unknown[], usedNonces: ReadonlySet<string> = new Set(), required = 2) =>
  verifySignApprovals({ approvals, required, governance, keyId: KEY_ID, algorithm: 'ECDSA_SHA_256', digest, now: NOW, usedNonces });

describe('messageDigestFor', () => {
  it('hashes RAW messages with the algorithm’s hash and passes DIGEST through (length-checked)', () => {
    expect(digest).toBe(toHex(sha256(message)));
    expect(messageDigestFor('ECDSA_SHA_256', 'DIGEST', sha256(message))).toBe(digest);
    expect(messageDigestFor('ED25519_SHA_512', 'RAW', message)).toHaveLength(128);
    expect(() => messageDigestFor('ECDSA_SHA_384', 'DIGEST', sha256(message))).toThrow(/48-byte digest/);
  });
});

describe('verifySignApprovals', () => {
  it('accepts k distinct approvers and returns the nonces to consume', () => {
    const a = [approve('admin1'), approve('admin3')];
    const r = check(a);
    expect(r).toEqual({ ok: true, approvers: ['admin1', 'admin3'], nonces: a.map((x) => ({ nonce: x.nonce, expiresAt: x.expiresAt })) });
  });

  it('needs k distinct approvers: two approvals by one administrator are one', () => {
    expect(check([approve('admin1'), approve('admin1')])).toMatchObject({ ok: false, reason: expect.stringContaining('needs approval by 2 distinct administrators; it has 1 (admin1)') });
    expect(check([approve('admin1')], new Set(), 4)).toMatchObject({ ok: false, reason: expect.stringContaining('only 3 administrators') });
  });

  it('refuses a wrong digest, key, algorithm or cluster', () => {
    expect(check([approve('admin1', { digest: toHex(sha256(new TextEncoder().encode('evil'))) }), approve('admin2')])).toMatchObject({ ok: false, reason: expect.stringContaining('another message digest') });
    expect(check([approve('admin1', { keyId: 'other-key' }), approve('admin2')])).toMatchObject({ ok: false, reason: expect.stringContaining('is for key other-key') });
    expect(check([approve('admin1', { algorithm: 'ECDSA_SHA_384' }), approve('admin2')])).toMatchObject({ ok: false, reason: expect.stringContaining('is for ECDSA_SHA_384') });
    expect(check([approve('admin1', { clusterId: 'other' }), approve('admin2')])).toMatchObject({ ok: false, reason: expect.stringContaining('is for cluster other') });
  });

  it('refuses expired and too long-lived approvals', () => {
    expect(check([approve('admin1', { expiresAt: NOW }), approve('admin2')])).toMatchObject({ ok: false, reason: expect.stringContaining('expired at') });
    expect(check([approve('admin1', { expiresAt: NOW + 25 * 3600_000 }), approve('admin2')])).toMatchObject({ ok: false, reason: expect.stringContaining('longer than 24 hours') });
  });

  it('refuses reuse: a nonce in the used set, or twice in one request', () => {
    const a = [approve('admin1'), approve('admin2')];
    const r = check(a);
    if (!r.ok) throw new Error(r.reason);
    const used = new Set(r.nonces.map((x) => x.nonce));
    expect(check(a, used)).toMatchObject({ ok: false, reason: expect.stringContaining('already used') });
    const same = approve('admin1');
    expect(check([same, approve('admin2', { nonce: same.nonce })])).toMatchObject({ ok: false, reason: expect.stringContaining('already used') });
  });

  it('refuses non-administrators and tampered statements', () => {
    const outsider = signSignApproval(statement('app'), makeAdmin('app').secretKey);
    expect(check([approve('admin1'), outsider])).toMatchObject({ ok: false, reason: expect.stringContaining('app is not an administrator') });
    const tampered = { ...approve('admin2'), expiresAt: NOW + 700_000 };
    expect(check([approve('admin1'), tampered])).toMatchObject({ ok: false, reason: expect.stringContaining('by admin2 does not verify') });
    expect(check([{ approver: 'admin1' }])).toMatchObject({ ok: false, reason: expect.stringContaining('malformed') });
  });
});
