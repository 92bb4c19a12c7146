// M-of-N administrator approval end to end on a real cluster: a quorum operation asked for
// through the KMS API is refused with a proposal, approved with `mpchsm approve` by distinct
// administrators, executed by the gateway — and each signer, checking the approvals itself,
// keeps its own copy of the key's state and policy, which it enforces when asked directly.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  CancelKeyDeletionCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  GetKeyPolicyCommand,
  PutKeyPolicyCommand,
  ScheduleKeyDeletionCommand,
  SignCommand,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignerClient } from '../../gateway/signer-client.js';
import { signApproval, type Proposal } from '../../policy/index.js';
import type { TestCluster } from '../helpers/cluster.js';
import { appRequest, approve, approved, auditEntries, createKey, failure, frostSession, gatewayCall, kms, proposalIn, refusal, signUse, startWithSigners, stopWithSigners } from './helpers.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';

let tc: TestCluster;
let signers: SignerClient[];
const msg = (s: string) => new TextEncoder().encode(s);
const ED = { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' } as const;

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
}, 120_000);

afterAll(() => stopWithSigners(tc, signers));

/** Asks each signer directly, with a real application request as evidence, to start signing. */
async function signersRefuse(keyId: string, why: RegExp): Promise<void> {
  for (const c of signers) {
    const body = { KeyId: keyId, Message: Buffer.from('direct').toString('base64'), SigningAlgorithm: 'ED25519_SHA_512' };
    const e = await refusal(c.call(signerRoutes.frost.commit, { session: crypto.randomUUID(), keyId, signers: signers.map((s) => s.id), use: signUse(msg('direct'), await appRequest(tc, 'TrentService.Sign', body)) }));
    expect(e.message, c.name).toMatch(why);
  }
}

describe('bootstrap', () => {
  it('gives each administrator an approval key in their own file, mode 0600', () => {
    for (const a of ['admin1', 'admin2', 'admin3']) expect(statSync(path.join(tc.dir, 'principals', `${a}.approval.key`)).mode & 0o777).toBe(0o600);
  });

  // Issue #16 changed this from a proposal its proposer then approved: the request is the approval.
  it('CreateKey needs one approval: the administrator’s own request is it, and the key is made in one call', async () => {
    const keyId = (await kms(tc, 'admin1').send(new CreateKeyCommand(ED))).KeyMetadata!.KeyId!;
    expect((await kms(tc, 'app').send(new SignCommand({ KeyId: keyId, Message: msg('x'), SigningAlgorithm: 'ED25519_SHA_512' }))).Signature!.length).toBe(64);
  });
});

describe('DisableKey (2 of 3)', () => {
  it('is refused with a proposal, approved by two administrators, executed — and every signer refuses the key', async () => {
    const keyId = await createKey(tc, ED);
    const app = kms(tc, 'app');
    const id = proposalIn(await failure(kms(tc, 'admin1').send(new DisableKeyCommand({ KeyId: keyId }))));
    // Nothing happened yet.
    expect((await kms(tc, 'auditor').send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('Enabled');
    const first = await approve(tc, id, 'admin1');
    expect([first.Status, first.Approvals, first.Required]).toEqual(['Pending', ['admin1'], 2]);
    // The same administrator again does not make two.
    expect((await approve(tc, id, 'admin1')).Status).toBe('Pending');
    const second = await approve(tc, id, 'admin2');
    expect([second.Status, second.Approvals.sort()]).toEqual(['Executed', ['admin1', 'admin2']]);
    expect(second.Signers!.map((s) => [s.signer, s.applied])).toEqual([['signer1', true], ['signer2', true], ['signer3', true]]);

    expect((await kms(tc, 'auditor').send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('Disabled');
    expect((await failure(app.send(new SignCommand({ KeyId: keyId, Message: msg('m'), SigningAlgorithm: 'ED25519_SHA_512' })))).name).toBe('DisabledException');
    await signersRefuse(keyId, /is disabled at this signer/);

    // EnableKey needs no quorum (default governance): executed at once, and the signers follow.
    await kms(tc, 'admin3').send(new EnableKeyCommand({ KeyId: keyId }));
    expect((await app.send(new SignCommand({ KeyId: keyId, Message: msg('m'), SigningAlgorithm: 'ED25519_SHA_512' }))).Signature!.length).toBe(64);
    const sig = await frostSession(tc, signers.slice(0, 2), keyId, msg('direct'), signUse(msg('direct'), await appRequest(tc, 'TrentService.Sign', { KeyId: keyId, Message: Buffer.from('direct').toString('base64'), SigningAlgorithm: 'ED25519_SHA_512' })));
    expect(sig.length).toBe(64);
  });

  it('signers record each approved change with its approvers', () => {
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const e = auditEntries(tc, s).find((x) => x.op === 'policy.DisableKey');
      expect(e, s).toMatchObject({ outcome: 'ok', principal: { name: 'admin1' } });
      expect((e!.policy as { approvals: string[] }).approvals.sort()).toEqual(['admin1', 'admin2']);
    }
  });
});

describe('ScheduleKeyDeletion (2 of 3)', () => {
  it('executes only with two approvals; the signers then refuse the key; CancelKeyDeletion brings it back disabled', async () => {
    const keyId = await createKey(tc, ED);
    const out = await approved(tc, kms(tc, 'admin2').send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })), ['admin3', 'admin1']);
    expect(out).toMatchObject({ KeyState: 'PendingDeletion', PendingWindowInDays: 7 });
    expect((await failure(kms(tc, 'app').send(new SignCommand({ KeyId: keyId, Message: msg('m'), SigningAlgorithm: 'ED25519_SHA_512' })))).name).toBe('KMSInvalidStateException');
    await signersRefuse(keyId, /pending deletion at this signer/);
    await kms(tc, 'admin1').send(new CancelKeyDeletionCommand({ KeyId: keyId }));
    await signersRefuse(keyId, /is disabled at this signer/);
  });

  it('an approval is for one proposal: signing another proposal does not count', async () => {
    const keyId = await createKey(tc, ED);
    const a = proposalIn(await failure(kms(tc, 'admin1').send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }))));
    const b = proposalIn(await failure(kms(tc, 'admin1').send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 30 }))));
    expect(a).not.toBe(b);
    // admin1's requests count for their own proposals (issue #16); admin2's signature of a is not one of b.
    const proposalA = (await gatewayCall(tc, 'admin2', 'MpcHsm.GetProposal', { ProposalId: a })).body.Proposal as Proposal;
    const key = new Uint8Array(Buffer.from(readFileSync(path.join(tc.dir, 'principals', 'admin2.approval.key'), 'utf8').trim(), 'hex'));
    const moved = await gatewayCall(tc, 'admin2', 'MpcHsm.Approve', { ProposalId: b, Approval: { ...signApproval(proposalA, 'admin2', key), proposalId: b } });
    expect(moved.body.message).toMatch(/the approval by admin2 does not verify over proposal/);
    expect((await kms(tc, 'auditor').send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('Enabled');
  });
});

describe('PutKeyPolicy (2 of 3)', () => {
  it('the approved policy is enforced by the gateway and, on their own copies, by every signer', async () => {
    const keyId = await createKey(tc, ED);
    const account = (await kms(tc, 'auditor').send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.AWSAccountId!;
    const user = (n: string) => `arn:aws:iam::${account}:user/${n}`;
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'admins', Effect: 'Allow', Principal: { AWS: ['admin1', 'admin2', 'admin3'].map(user) }, Action: 'kms:*', Resource: '*' },
        { Sid: 'app reads', Effect: 'Allow', Principal: { AWS: user('app') }, Action: ['kms:DescribeKey', 'kms:GetPublicKey', 'kms:Sign'], Resource: '*' },
        { Sid: 'but never signs', Effect: 'Deny', Principal: { AWS: user('app') }, Action: 'kms:Sign', Resource: '*' },
      ],
    });
    await approved(tc, kms(tc, 'admin1').send(new PutKeyPolicyCommand({ KeyId: keyId, Policy: policy })), ['admin1', 'admin3']);
    expect((await kms(tc, 'admin2').send(new GetKeyPolicyCommand({ KeyId: keyId }))).Policy).toBe(policy);
    const e = await failure(kms(tc, 'app').send(new SignCommand({ KeyId: keyId, Message: msg('m'), SigningAlgorithm: 'ED25519_SHA_512' })));
    expect(e.name).toBe('AccessDeniedException');
    expect(e.message).toMatch(/explicitly denied by statement "but never signs".*\[missing: kms:Sign\]/);
    await signersRefuse(keyId, /access denied: .*explicitly denied by statement "but never signs"/);
  });

  it('refuses, before proposing, a malformed policy and one that would lock its author out', async () => {
    const keyId = await createKey(tc, ED);
    const admin = kms(tc, 'admin1');
    expect((await failure(admin.send(new PutKeyPolicyCommand({ KeyId: keyId, Policy: '{"Version":"2012-10-17"}' })))).name).toBe('MalformedPolicyDocumentException');
    const lockout = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:Sign', Resource: '*' }] });
    const e = await failure(admin.send(new PutKeyPolicyCommand({ KeyId: keyId, Policy: lockout })));
    expect([e.name, e.message]).toEqual(['MalformedPolicyDocumentException', expect.stringMatching(/will not allow you to update the key policy/)]);
  });
});

describe('who may approve', () => {
  it('an application cannot approve; a signer operator has no approval key; an approval submitted by another principal is refused', async () => {
    const keyId = await createKey(tc, ED);
    const id = proposalIn(await failure(kms(tc, 'admin1').send(new DisableKeyCommand({ KeyId: keyId }))));
    await expect(tc.mpchsm('approve', id, '--as', 'app', '--dir', tc.dir)).rejects.toThrow(/app has no approval key/);
    await expect(tc.mpchsm('approve', id, '--as', 'signer1', '--dir', tc.dir)).rejects.toThrow(/signer1 has no approval key/);
    // Straight to the gateway: the application's role may not approve, whatever it sends.
    const proposal = (await gatewayCall(tc, 'admin1', 'MpcHsm.GetProposal', { ProposalId: id })).body.Proposal as Proposal;
    const byApp = await gatewayCall(tc, 'app', 'MpcHsm.Approve', { ProposalId: id, Approval: { proposalId: id, admin: 'app', signature: '00'.repeat(64) } });
    expect([byApp.status, byApp.body.__type]).toEqual([400, 'AccessDeniedException']);
    expect(byApp.body.message).toMatch(/\[missing: mpchsm:Approve\]/);
    // admin2 cannot pass off a signature as admin3's, nor one made with another key.
    const key = new Uint8Array(Buffer.from(readFileSync(path.join(tc.dir, 'principals', 'admin2.approval.key'), 'utf8').trim(), 'hex'));
    const forged = await gatewayCall(tc, 'admin2', 'MpcHsm.Approve', { ProposalId: id, Approval: signApproval(proposal, 'admin3', key) });
    expect([forged.body.__type, forged.body.message]).toEqual(['AccessDeniedException', 'admin2 cannot submit admin3\'s approval']);
    const wrongKey = await gatewayCall(tc, 'admin3', 'MpcHsm.Approve', { ProposalId: id, Approval: signApproval(proposal, 'admin3', key) });
    expect(wrongKey.body.message).toMatch(/the approval by admin3 does not verify/);
    expect((await kms(tc, 'auditor').send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('Enabled');
  });
});
