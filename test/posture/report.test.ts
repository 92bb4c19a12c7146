// The signed posture reports (contract/posture/report.ts) as the CLI checks them when the gateway
// relays them (cli/posture/evidence.ts checkPosture): a report the gateway forged, replayed,
// edited or attributed to another party is refused; and the doctor's segmentation verdict
// (cli/posture/segmentation.ts) from reports that share an operator, an admin or a host, or not.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signPosture, verifyPosture, type PostureReport } from '../../contract/posture/report.js';
import { checkPosture, type Pins } from '../../cli/posture/evidence.js';
import { segmentation } from '../../cli/posture/segmentation.js';
import { identity } from '../audit/fixtures.js';

const gw = identity('gateway');
const ids = { signer1: identity('signer1'), signer2: identity('signer2'), signer3: identity('signer3') };
const pins: Pins = { source: 'genesis.json', gateway: gw.public, signers: Object.entries(ids).map(([name, id]) => ({ name, identity: id.public })), threshold: 2 };
const nonce = () => randomBytes(32).toString('hex');
const HOST_A = 'a'.repeat(64);
const HOST_B = 'b'.repeat(64);

function report(id: ReturnType<typeof identity>, n: string, o: Partial<PostureReport> = {}): PostureReport {
  // Each party its own account by default: uid 1000 + its number.
  const uid = 1000 + Number(/\d*$/.exec(id.public.name)![0] || 0);
  return {
    party: id.public.name,
    role: id.public.name === 'gateway' ? 'gateway' : 'signer',
    fingerprint: id.fingerprint,
    nonce: n,
    time: 1_700_000_000_000,
    hostId: HOST_A,
    hostname: 'hosta',
    operator: { uid, user: `op-${id.public.name}` },
    admin: { uid, user: `op-${id.public.name}` },
    seal: 'software/scrypt+xchacha20poly1305',
    epoch: { governanceVersion: 1, ledgerSeq: 0 },
    auditHead: { seq: 7, hash: 'c'.repeat(64) },
    ...o,
  };
}
const signed = (id: ReturnType<typeof identity>, n: string, o: Partial<PostureReport> = {}) => signPosture(report(id, n, o), id.signSecretKey);

/** The gateway's answer to MpcHsm.Posture, with each signer's report as `reports` has it. */
const answer = (n: string, reports: Record<string, unknown>) => ({
  Gateway: signed(gw, n),
  Signers: Object.entries(reports).map(([Name, Report]) => (Report === undefined ? { Name, Error: 'signer2 is unavailable: connect ECONNREFUSED' } : { Name, Report })),
});

describe('a signed posture report', () => {
  it("verifies under the party's pinned key and the asker's nonce", () => {
    const n = nonce();
    expect(verifyPosture(signed(ids.signer1, n), ids.signer1.public, n).operator.user).toBe('op-signer1');
  });

  it('is refused when replayed (another nonce), edited, signed by another key, or another party’s', () => {
    const n = nonce();
    const good = signed(ids.signer1, n);
    expect(() => verifyPosture(good, ids.signer1.public, nonce())).toThrow(/another nonce.*replay/);
    const edited = { ...good, report: { ...good.report, operator: { uid: 2000, user: 'someone-else' } } };
    expect(() => verifyPosture(edited, ids.signer1.public, n)).toThrow(/does not verify.*forged or edited/);
    // The gateway signs signer1's report with its own key, naming signer1.
    const forged = signPosture(report(ids.signer1, n), gw.signSecretKey);
    expect(() => verifyPosture(forged, ids.signer1.public, n)).toThrow(/does not verify/);
    // A signer's last backup is signed too: the gateway can neither invent one nor change its custodian.
    const backedUp = signed(ids.signer1, n, { lastBackup: { created: '2026-12-06T10:00:00.000Z', custodian: 'd'.repeat(64), custodianName: 'custodianA', sha256: 'e'.repeat(64) } });
    expect(verifyPosture(backedUp, ids.signer1.public, n).lastBackup?.custodianName).toBe('custodianA');
    const moved = { ...backedUp, report: { ...backedUp.report, lastBackup: { ...backedUp.report.lastBackup!, custodianName: 'custodianB', custodian: 'f'.repeat(64) } } };
    expect(() => verifyPosture(moved, ids.signer1.public, n)).toThrow(/does not verify.*forged or edited/);
    const invented = { ...good, report: { ...good.report, lastBackup: backedUp.report.lastBackup } };
    expect(() => verifyPosture(invented, ids.signer1.public, n)).toThrow(/does not verify.*forged or edited/);
    // signer2's genuine report passed off as signer1's.
    expect(() => verifyPosture(signed(ids.signer2, n), ids.signer1.public, n)).toThrow(/signer2's .* not from the identity pinned for signer1/);
    expect(() => verifyPosture({ report: good.report }, ids.signer1.public, n)).toThrow(/not a posture report/);
  });
});

describe('checkPosture: the gateway relays, the CLI checks', () => {
  it('takes genuine reports, and names a forged, a replayed and a missing one', () => {
    const n = nonce();
    const old = nonce();
    const got = checkPosture(
      answer(n, {
        signer1: signed(ids.signer1, n),
        signer2: undefined,
        signer3: signed(ids.signer3, old), // a report from an earlier request, replayed
        signer9: signed(identity('signer9'), n), // not pinned
      }),
      pins,
      n,
    );
    const by = new Map(got.parties.map((p) => [p.name, p]));
    expect(by.get('gateway')!.report?.role).toBe('gateway');
    expect(by.get('signer1')!.report?.party).toBe('signer1');
    expect(by.get('signer2')!.problem).toMatchObject({ code: 'unreachable', message: expect.stringContaining('ECONNREFUSED') });
    expect(by.get('signer3')!.problem).toMatchObject({ code: 'forged-report', message: expect.stringContaining('replay') });
    expect(got.unpinned).toEqual(['signer9']);
    // A pinned signer the gateway leaves out of its answer altogether.
    const omitted = checkPosture(answer(n, { signer1: signed(ids.signer1, n) }), pins, n).parties.find((p) => p.name === 'signer3');
    expect(omitted!.problem).toMatchObject({ code: 'not-listed', message: expect.stringContaining('does not list signer3') });

    const forgedGateway = { ...answer(n, { signer1: signPosture(report(ids.signer1, n, { hostId: HOST_B }), gw.signSecretKey) }), Gateway: signed(gw, old) };
    const bad = new Map(checkPosture(forgedGateway, pins, n).parties.map((p) => [p.name, p]));
    expect(bad.get('signer1')!.problem?.code).toBe('forged-report');
    expect(bad.get('gateway')!.problem?.code).toBe('forged-report');
  });
});

describe('the segmentation verdict from the reports', () => {
  const n = nonce();
  const r = (name: keyof typeof ids, o: Partial<PostureReport>) => report(ids[name], n, o);

  it('one account running every signer: a single administrative domain', () => {
    const same = { operator: { uid: 0, user: 'root' }, admin: { uid: 0, user: 'root' } };
    const s = segmentation({ signers: [r('signer1', same), r('signer2', same), r('signer3', same)], total: 3, threshold: 2 });
    expect(s.verdict).toMatch(/SINGLE ADMINISTRATIVE DOMAIN: one operator \(root \(0\) on hosta\) runs every signer/);
    expect(s.findings.map((f) => f.code)).toEqual(expect.arrayContaining(['reported-same-operator', 'reported-same-admin', 'reported-same-host']));
  });

  it('distinct operators and admins on one host: independent, but its root controls all', () => {
    const s = segmentation({ signers: [r('signer1', {}), r('signer2', {}), r('signer3', {})], total: 3, threshold: 2 });
    expect(s.verdict).toMatch(/^verdict: independent operators and admins among the reporting signers: signer1 \(operator op-signer1/);
    expect(s.verdict).toContain('one host (hosta): its root controls all');
    expect(s.verdict).not.toMatch(/SINGLE|NOT SEGMENTED/);
  });

  it('t signers sharing an admin: not segmented, naming them', () => {
    const admin = { admin: { uid: 1500, user: 'carol' } };
    const s = segmentation({ signers: [r('signer1', admin), r('signer2', { ...admin }), r('signer3', { hostId: HOST_B, hostname: 'hostb' })], total: 3, threshold: 2 });
    expect(s.verdict).toMatch(/^verdict: NOT SEGMENTED: signer1 and signer2 report data directories owned by the same account carol \(1500\) on hosta/);
  });

  it('distinct hosts, operators and admins: independent, and says so', () => {
    const s = segmentation({
      signers: [r('signer1', {}), r('signer2', { hostId: HOST_B, hostname: 'hostb' }), r('signer3', { hostId: 'd'.repeat(64), hostname: 'hostd' })],
      total: 3,
      threshold: 2,
    });
    expect(s.findings.filter((f) => f.code.startsWith('reported-same'))).toEqual([]);
    expect(s.verdict).toMatch(/No 2 of them share an operator or admin or host, by their own signed reports\.$/);
  });
});
