import { describe, expect, it } from 'vitest';
import { signApproval, verifyApprovals, type Proposal } from '../../policy/approvals.js';
import { governanceDigest, signGovernance, verifyGovernanceUpdate, type GovernanceDocument } from '../../policy/governance.js';
import { toHex } from '../../contract/bytes.js';
import { admin, bootstrapGovernance, CLUSTER, KEY_ID, makeAdmin, NOW } from './fixtures.js';

const governance = bootstrapGovernance();
const proposal: Proposal = {
  id: 'prop-0001',
  clusterId: CLUSTER,
  operation: 'kms:ScheduleKeyDeletion',
  parameters: { KeyId: KEY_ID, PendingWindowInDays: 7 },
  proposer: 'admin1',
  createdAt: NOW - 60_000,
  expiresAt: NOW + 3600_000,
  governanceVersion: 1,
};
const by = (p: Proposal, ...names: string[]) => names.map((n) => signApproval(p, n, admin(n).secretKey));

describe('verifyApprovals (M of N)', () => {
  it('accepts 2 distinct administrators; the proposer counts only with its own signature', () => {
    expect(verifyApprovals(proposal, by(proposal, 'admin1', 'admin2'), governance, NOW)).toEqual({ ok: true, proposal, approvers: ['admin1', 'admin2'], counters: [] });
    expect(verifyApprovals(proposal, by(proposal, 'admin2', 'admin3'), governance, NOW).ok).toBe(true);
    expect(verifyApprovals(proposal, by(proposal, 'admin2'), governance, NOW)).toEqual({
      ok: false,
      reason: 'proposal prop-0001 (kms:ScheduleKeyDeletion) needs approval by 2 distinct administrators of 3; it has 1 (admin2)',
    });
    expect(verifyApprovals(proposal, [], governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('it has 0') });
  });

  it('counts a duplicated approval once', () => {
    const [a] = by(proposal, 'admin2');
    expect(verifyApprovals(proposal, [a, a], governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('it has 1 (admin2)') });
  });

  it('refuses unknown administrators, operators and forged signatures', () => {
    const mallory = makeAdmin('operatorA');
    expect(verifyApprovals(proposal, [...by(proposal, 'admin1'), signApproval(proposal, 'operatorA', mallory.secretKey)], governance, NOW)).toEqual({
      ok: false,
      reason: 'operatorA is not an administrator in governance v1 (removed, or never one: only administrators approve)',
    });
    // admin2's name with someone else's key.
    expect(verifyApprovals(proposal, [...by(proposal, 'admin1'), signApproval(proposal, 'admin2', mallory.secretKey)], governance, NOW)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('the approval by admin2 does not verify'),
    });
  });

  it('refuses a removed administrator under the governance version that removed it', () => {
    const v2doc: GovernanceDocument = {
      ...governance,
      version: 2,
      previous: toHex(governanceDigest(governance)),
      administrators: governance.administrators.filter((a) => a.name !== 'admin3'),
      quorum: { ...governance.quorum, 'kms:ScheduleKeyDeletion': 2, 'mpchsm:UpdateGovernance': 2 },
    };
    const v2 = verifyGovernanceUpdate(governance, { document: v2doc, signatures: ['admin1', 'admin2'].map((n) => signGovernance(v2doc, n, admin(n).secretKey)) });
    if (!v2.ok) throw new Error(v2.reason);
    const p2 = { ...proposal, governanceVersion: 2 };
    expect(verifyApprovals(p2, by(p2, 'admin1', 'admin2'), v2.governance, NOW).ok).toBe(true);
    expect(verifyApprovals(p2, by(p2, 'admin1', 'admin3'), v2.governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('admin3 is not an administrator in governance v2') });
    // Approvals gathered under v1 do not carry over to v2.
    expect(verifyApprovals(proposal, by(proposal, 'admin1', 'admin2'), v2.governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('made under governance v1') });
  });

  it('refuses approvals moved to altered parameters, another operation or another proposal', () => {
    const approvals = by(proposal, 'admin1', 'admin2');
    const altered = { ...proposal, parameters: { KeyId: KEY_ID, PendingWindowInDays: 30 } };
    expect(verifyApprovals(altered, approvals, governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('given for other parameters') });
    expect(verifyApprovals({ ...proposal, operation: 'kms:PutKeyPolicy' }, approvals, governance, NOW).ok).toBe(false);
    expect(verifyApprovals({ ...proposal, id: 'prop-0002' }, approvals, governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('is for proposal prop-0001') });
    expect(verifyApprovals({ ...proposal, proposer: 'admin3' }, approvals, governance, NOW).ok).toBe(false);
  });

  it('refuses expired, future, over-long and other-version proposals', () => {
    const approvals = by(proposal, 'admin1', 'admin2');
    expect(verifyApprovals(proposal, approvals, governance, proposal.expiresAt)).toMatchObject({ ok: false, reason: expect.stringContaining('expired at') });
    const future = { ...proposal, createdAt: NOW + 3600_000, expiresAt: NOW + 7200_000 };
    expect(verifyApprovals(future, by(future, 'admin1', 'admin2'), governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('dated in the future') });
    const long = { ...proposal, expiresAt: proposal.createdAt + 8 * 86400_000 };
    expect(verifyApprovals(long, by(long, 'admin1', 'admin2'), governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('lifetime exceeds 7 days') });
    const old = { ...proposal, governanceVersion: 2 };
    expect(verifyApprovals(old, by(old, 'admin1', 'admin2'), governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('must be proposed and approved again') });
    const elsewhere = { ...proposal, clusterId: 'other' };
    expect(verifyApprovals(elsewhere, by(elsewhere, 'admin1', 'admin2'), governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('is for cluster other') });
  });

  it('refuses malformed proposals and approvals with a reason', () => {
    expect(verifyApprovals({ ...proposal, operation: 'kms:Nope' }, [], governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('malformed proposal: operation') });
    expect(verifyApprovals({ ...proposal, parameters: { x: 0.5 } }, [], governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('not a safe integer') });
    expect(verifyApprovals(proposal, [{ proposalId: proposal.id, admin: 'admin1', signature: 'zz' }], governance, NOW)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('approval [0] is malformed: signature'),
    });
  });
});
