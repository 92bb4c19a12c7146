// The pure parts of principal and governance changes: a new principal's secret sealed to the
// parties that verify its requests (and to nobody else), what such a proposal may carry, whose
// approval it needs, and governance updates whose approvals are the chain's own signatures.
import { describe, expect, it } from 'vitest';
import {
  administratorChanges,
  approvalDigest,
  defaultGovernance,
  enrolmentProblem,
  governanceDigest,
  governanceDocumentSchema,
  openPrincipalSecret,
  principalEnrolmentSchema,
  proposalSchema,
  sealPrincipalSecret,
  signApproval,
  signGovernance,
  signedUpdate,
  verifyApprovals,
  verifyGovernanceUpdate,
  type GovernanceDocument,
  type PrincipalEnrolment,
  type PrincipalSecrets,
  type Proposal,
} from '../../policy/index.js';
import { toHex } from '../../contract/bytes.js';
import { seededRng } from '../helpers/rng.js';
import { seededIdentity } from '../helpers/signer.js';
import { admin, ADMINS, bootstrapGovernance, CLUSTER, makeAdmin, NOW } from './fixtures.js';

const party = seededIdentity;
const SIGNERS = ['signer1', 'signer2', 'signer3'].map(party);
const GATEWAY = party('gateway');
const SECRET = 'wJalrXUtnFEMIxK7MDENGxbPxRfiCYEXAMPLEKEY';
const ACCESS_KEY = 'MPC0123456789ABCDEF0';
const REQUEST_KEY = '22'.repeat(32);
const APP_SECRETS = { secretAccessKey: SECRET, pinRequestKey: REQUEST_KEY };

function enrolment(
  over: Partial<PrincipalEnrolment> = {},
  to = SIGNERS.map((s, i) => ({ party: i + 1, identity: s.public })),
  secrets: PrincipalSecrets = over.Role && over.Role !== 'app' ? { secretAccessKey: SECRET } : APP_SECRETS,
): PrincipalEnrolment {
  return {
    Name: 'app2',
    Role: 'app',
    AccessKeyId: ACCESS_KEY,
    PinLoginHash: '11'.repeat(32),
    ...sealPrincipalSecret({ accessKeyId: ACCESS_KEY, secrets, recipients: to, rng: seededRng('seal') }),
    ...over,
  };
}

describe('a principal’s secret, sealed to the parties that verify its requests', () => {
  const e = enrolment();

  it('opens for each signer it is sealed to, with that signer’s own key', () => {
    for (const [i, s] of SIGNERS.entries()) expect(openPrincipalSecret(e, s, i + 1)).toEqual(APP_SECRETS);
    expect(JSON.stringify(e)).not.toContain(SECRET);
    expect(JSON.stringify(e)).not.toContain(REQUEST_KEY);
  });

  it('does not open for anyone else: the gateway, or a signer reading another’s copy', () => {
    expect(() => openPrincipalSecret(e, GATEWAY, 0xfffe)).toThrow(/carries no copy of app2's secret sealed to this party/);
    expect(() => openPrincipalSecret(e, GATEWAY, 1)).toThrow(/does not open: .*addressed to 1/);
    expect(() => openPrincipalSecret(e, SIGNERS[1]!, 1)).toThrow(/does not open/);
  });

  it('refuses a copy altered, re-labelled for another principal, or from another sender', () => {
    const env = e.Secrets[0]!.Envelope;
    const flipped = { ...env, c: (env.c[0] === 'A' ? 'B' : 'A') + env.c.slice(1) };
    expect(() => openPrincipalSecret({ ...e, Secrets: [{ Party: 1, Envelope: flipped }] }, SIGNERS[0]!, 1)).toThrow(/does not open: .*signature does not verify/);
    expect(() => openPrincipalSecret({ ...e, AccessKeyId: 'MPCFFFFFFFFFFFFFFFFF' }, SIGNERS[0]!, 1)).toThrow(/envelope is for session MPC0123456789ABCDEF0/);
    expect(() => openPrincipalSecret({ ...e, Sender: party('mallory').public }, SIGNERS[0]!, 1)).toThrow(/signature does not verify/);
  });

  it('an auditor’s secret is sealed to the signers like anyone’s, without a PIN request key', () => {
    const to = SIGNERS.map((s, i) => ({ party: i + 1, identity: s.public }));
    const auditor = enrolment({ Role: 'auditor' }, to);
    expect(principalEnrolmentSchema.safeParse(auditor).success).toBe(true);
    expect(openPrincipalSecret(auditor, SIGNERS[1]!, 2)).toEqual({ secretAccessKey: SECRET });
  });

  it('an application’s and an administrator’s sealed secrets carry a PKCS#11 request key, an auditor’s do not', () => {
    const to = SIGNERS.map((s, i) => ({ party: i + 1, identity: s.public }));
    expect(() => openPrincipalSecret(enrolment({}, to, { secretAccessKey: SECRET }), SIGNERS[0]!, 1)).toThrow(/an application: its sealed secrets need a PKCS#11 request key/);
    expect(() => openPrincipalSecret(enrolment({ Role: 'admin' }, to, { secretAccessKey: SECRET }), SIGNERS[0]!, 1)).toThrow(/an administrator: its sealed secrets need a PKCS#11 request key/);
    expect(openPrincipalSecret(enrolment({ Role: 'admin' }, to, APP_SECRETS), SIGNERS[0]!, 1)).toEqual(APP_SECRETS);
    expect(() => openPrincipalSecret(enrolment({ Role: 'auditor' }, to, APP_SECRETS), SIGNERS[0]!, 1)).toThrow(/an auditor: its sealed secrets carry no PKCS#11 request key/);
    expect(() => openPrincipalSecret(enrolment({}, to, { secretAccessKey: SECRET, pinRequestKey: 'short' }), SIGNERS[0]!, 1)).toThrow();
  });

  it('an enrolment has one sealed copy per party', () => {
    const issue = (x: unknown) => principalEnrolmentSchema.safeParse(x).error?.issues[0]?.message;
    expect(issue(enrolment())).toBeUndefined();
    expect(issue({ ...enrolment(), Secrets: [e.Secrets[0], e.Secrets[0]] })).toMatch(/one sealed copy per party/);
    expect(issue({ ...enrolment(), Secrets: [] })).toBeDefined();
  });
});

const governance = bootstrapGovernance();
const proposal = (operation: Proposal['operation'], parameters: Record<string, unknown>, proposer = 'admin1'): Proposal => ({
  id: 'prop-membership',
  clusterId: CLUSTER,
  operation,
  parameters,
  proposer,
  createdAt: NOW - 60_000,
  expiresAt: NOW + 3600_000,
  governanceVersion: 1,
});
const by = (p: Proposal, ...names: string[]) => names.map((n) => signApproval(p, n, admin(n).secretKey));

describe('approving principal changes', () => {
  const add = proposal('mpchsm:AddPrincipal', enrolment() as unknown as Record<string, unknown>);

  it('AddPrincipal needs the quorum and its proposer’s own approval', () => {
    expect(verifyApprovals(add, by(add, 'admin1', 'admin2'), governance, NOW)).toMatchObject({ ok: true, approvers: ['admin1', 'admin2'] });
    expect(verifyApprovals(add, by(add, 'admin2', 'admin3'), governance, NOW)).toEqual({
      ok: false,
      reason: "proposal prop-membership (mpchsm:AddPrincipal) delivers credentials its proposer admin1 made, so it needs admin1's own approval",
    });
    expect(verifyApprovals(add, by(add, 'admin1'), governance, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('needs approval by 2 distinct administrators') });
  });

  it('RemovePrincipal needs the quorum, from anyone', () => {
    const remove = proposal('mpchsm:RemovePrincipal', { Name: 'app' });
    expect(verifyApprovals(remove, by(remove, 'admin2', 'admin3'), governance, NOW).ok).toBe(true);
  });

  it('every governance version keeps principal changes and updates under quorum', () => {
    const bad = (op: string) => governanceDocumentSchema.safeParse({ ...governance, quorum: Object.fromEntries(Object.entries(governance.quorum).filter(([k]) => k !== op)) }).error?.issues[0]?.message;
    expect(bad('mpchsm:AddPrincipal')).toBe('mpchsm:AddPrincipal must need at least one approval');
    expect(bad('mpchsm:RemovePrincipal')).toBe('mpchsm:RemovePrincipal must need at least one approval');
    expect(bad('kms:CreateKey')).toBeUndefined();
  });
});

describe('governance updates through proposals', () => {
  const admin4 = makeAdmin('admin4');
  // v2: admin3 leaves, admin4 joins; CreateKey needs 2.
  const v2: GovernanceDocument = {
    ...governance,
    version: 2,
    previous: toHex(governanceDigest(governance)),
    administrators: [...governance.administrators.filter((a) => a.name !== 'admin3'), { name: 'admin4', approvalKey: admin4.approvalKey }],
    quorum: { ...governance.quorum, 'kms:CreateKey': 2 },
  };
  const credentials = enrolment({ Name: 'admin4', Role: 'admin' }, SIGNERS.map((s, i) => ({ party: i + 1, identity: s.public })));
  const update = { Document: v2, Possession: [signGovernance(v2, 'admin4', admin4.secretKey)], Principals: [credentials] };
  const p = proposal('mpchsm:UpdateGovernance', update as unknown as Record<string, unknown>);

  it('an approval is a signature over the proposed document: the approvals become the chain link', () => {
    expect(toHex(approvalDigest(p))).toBe(toHex(governanceDigest(v2)));
    const approvals = by(p, 'admin1', 'admin3');
    expect(verifyApprovals(p, approvals, governance, NOW)).toMatchObject({ ok: true });
    expect(verifyGovernanceUpdate(governance, signedUpdate(update, approvals))).toEqual({ ok: true, governance: v2 });
    // Without admin4's proof of possession the link does not verify, whatever the quorum.
    expect(verifyGovernanceUpdate(governance, signedUpdate({ ...update, Possession: [] }, approvals))).toMatchObject({ ok: false, reason: expect.stringContaining('not signed by their holders: admin4') });
  });

  it('a proposal must carry a valid document', () => {
    const r = proposalSchema.safeParse(proposal('mpchsm:UpdateGovernance', { Document: { ...v2, quorum: {} } }));
    expect(r.error?.issues[0]?.message).toBe('a governance update proposes a valid governance document');
  });

  it('enrols exactly the administrators it adds', () => {
    expect(administratorChanges(governance, v2)).toEqual({ added: ['admin4'], removed: ['admin3'] });
    expect(enrolmentProblem(governance, v2, [credentials])).toBeUndefined();
    expect(enrolmentProblem(governance, v2, [])).toBe('governance v2 adds administrators without their credentials: admin4');
    expect(enrolmentProblem(governance, v2, [credentials, credentials])).toBe('governance v2 enrols an administrator twice');
    expect(enrolmentProblem(governance, v2, [{ ...credentials, Name: 'admin1' }])).toMatch(/enrols admin1 \(admin\), which is not an administrator it adds/);
    expect(enrolmentProblem(governance, v2, [credentials, enrolment()])).toMatch(/enrols app2 \(app\)/);
    const same = defaultGovernance(CLUSTER, ADMINS.map(({ name, approvalKey }) => ({ name, approvalKey })));
    expect(administratorChanges(governance, same)).toEqual({ added: [], removed: [] });
  });
});
