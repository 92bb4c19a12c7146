import { describe, expect, it } from 'vitest';
import { canonicalDigest, canonicalJson } from '../../contract/canonical.js';
import {
  defaultGovernance,
  governanceDigest,
  signGovernance,
  verifyGenesis,
  verifyGovernanceChain,
  verifyGovernanceUpdate,
  type GovernanceDocument,
} from '../../policy/governance.js';
import { toHex } from '../../contract/bytes.js';
import { admin, ADMINS, bootstrapGovernance, CLUSTER, makeAdmin } from './fixtures.js';

const pub = (names: string[]) => names.map((n) => ({ name: n, approvalKey: admin(n).approvalKey }));
const signBy = (doc: GovernanceDocument, names: string[]) => ({ document: doc, signatures: names.map((n) => signGovernance(doc, n, admin(n).secretKey)) });

describe('canonical encoding', () => {
  it('sorts keys, drops undefined, has no whitespace, and refuses what JSON cannot carry exactly', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: undefined, y: 'é' } })).toBe('{"a":[true,null,"x"],"b":1,"c":{"y":"é"}}');
    expect(canonicalJson({ b: 1, a: 2 })).toBe(canonicalJson({ a: 2, b: 1 }));
    expect(() => canonicalJson({ x: 1.5 })).toThrow(/not a safe integer/);
    expect(() => canonicalJson({ x: 2 ** 60 })).toThrow(/not a safe integer/);
    expect(() => canonicalJson({ x: new Uint8Array(1) })).toThrow(/not JSON/);
  });

  it('separates domains', () => {
    expect(toHex(canonicalDigest('a', { x: 1 }))).not.toBe(toHex(canonicalDigest('b', { x: 1 })));
  });
});

describe('governance documents', () => {
  it('defaults to 2 of 3 for sensitive operations and 1 for CreateKey', () => {
    const g = bootstrapGovernance();
    expect(g.version).toBe(1);
    expect(g.quorum).toMatchObject({
      'kms:CreateKey': 1,
      'kms:ScheduleKeyDeletion': 2,
      'kms:PutKeyPolicy': 2,
      'kms:DisableKey': 2,
      'mpchsm:AddSigner': 2,
      'mpchsm:RemoveSigner': 2,
      'mpchsm:AddPrincipal': 2,
      'mpchsm:RemovePrincipal': 2,
      'mpchsm:UpdateGovernance': 2,
    });
  });

  it('bootstrap must be signed by every initial administrator, with valid signatures', () => {
    const doc = defaultGovernance(CLUSTER, pub(['admin1', 'admin2', 'admin3']));
    expect(verifyGenesis(signBy(doc, ['admin1', 'admin2', 'admin3'])).ok).toBe(true);
    expect(verifyGenesis(signBy(doc, ['admin1', 'admin2']))).toEqual({ ok: false, reason: 'governance v1 must be signed by every initial administrator; missing: admin3' });
    const forged = signBy(doc, ['admin1', 'admin2', 'admin3']);
    forged.signatures[2] = signGovernance(doc, 'admin3', makeAdmin('mallory').secretKey);
    expect(verifyGenesis(forged)).toEqual({ ok: false, reason: 'governance v1: the signature of admin3 does not verify' });
    const stranger = signBy(doc, ['admin1', 'admin2', 'admin3', 'mallory']);
    expect(verifyGenesis(stranger)).toMatchObject({ ok: false, reason: expect.stringContaining('mallory, who is not one of its administrators') });
    // Altering the document after signing breaks every signature.
    const altered = signBy(doc, ['admin1', 'admin2', 'admin3']);
    altered.document = { ...doc, quorum: { ...doc.quorum, 'kms:ScheduleKeyDeletion': 1 } };
    expect(verifyGenesis(altered).ok).toBe(false);
  });

  it('refuses malformed documents: duplicate names or keys, weak keys, impossible quorums', () => {
    const a1 = pub(['admin1'])[0]!;
    const bad = (document: unknown) => verifyGenesis({ document, signatures: [{ admin: 'admin1', signature: '00'.repeat(64) }] });
    const base = { clusterId: CLUSTER, version: 1, administrators: pub(['admin1', 'admin2']), quorum: { 'mpchsm:UpdateGovernance': 2 } };
    expect(bad({ ...base, administrators: [a1, a1] })).toMatchObject({ ok: false, reason: expect.stringContaining('listed twice') });
    expect(bad({ ...base, administrators: [a1, { ...a1, name: 'twin' }] })).toMatchObject({ ok: false, reason: expect.stringContaining('shares an approval key') });
    expect(bad({ ...base, administrators: [{ name: 'x', approvalKey: '01' + '00'.repeat(31) }] })).toMatchObject({ ok: false, reason: expect.stringContaining('not a valid Ed25519 public key') });
    expect(bad({ ...base, quorum: { 'mpchsm:UpdateGovernance': 3 } })).toMatchObject({ ok: false, reason: expect.stringContaining('needs 3 approvals but there are 2') });
    expect(bad({ ...base, quorum: { 'kms:Sing': 1, 'mpchsm:UpdateGovernance': 1 } })).toMatchObject({ ok: false, reason: expect.stringContaining('unknown operation kms:Sing') });
    expect(bad({ ...base, quorum: {} })).toMatchObject({ ok: false, reason: expect.stringContaining('UpdateGovernance must need') });
  });
});

describe('governance updates', () => {
  const v1 = bootstrapGovernance();
  // v2: admin3 leaves, admin4 joins; v3: CreateKey needs 2.
  const v2doc: GovernanceDocument = { ...v1, version: 2, previous: toHex(governanceDigest(v1)), administrators: pub(['admin1', 'admin2', 'admin4']) };

  it('needs the previous version’s quorum, counted with the previous keys', () => {
    expect(verifyGovernanceUpdate(v1, signBy(v2doc, ['admin1', 'admin2', 'admin4']))).toEqual({ ok: true, governance: v2doc });
    expect(verifyGovernanceUpdate(v1, signBy(v2doc, ['admin1', 'admin4']))).toEqual({
      ok: false,
      reason: 'governance v2 needs approval by 2 of the 3 administrators of v1; it has 1 (admin1)',
    });
    // The same administrator twice is one approval.
    expect(verifyGovernanceUpdate(v1, signBy(v2doc, ['admin1', 'admin1', 'admin4'])).ok).toBe(false);
    // A removed administrator's signature still counts under v1 (it approves its own removal).
    expect(verifyGovernanceUpdate(v1, signBy(v2doc, ['admin1', 'admin3', 'admin4'])).ok).toBe(true);
  });

  it('requires new administrators to sign with their new key (proof of possession)', () => {
    expect(verifyGovernanceUpdate(v1, signBy(v2doc, ['admin1', 'admin2']))).toEqual({
      ok: false,
      reason: 'governance v2 adds approval keys not signed by their holders: admin4',
    });
  });

  it('refuses wrong successors: version gap, wrong previous digest, other cluster, stranger signatures', () => {
    expect(verifyGovernanceUpdate(v1, signBy({ ...v2doc, version: 3 }, ['admin1', 'admin2', 'admin4']))).toMatchObject({ ok: false, reason: expect.stringContaining('does not follow v1') });
    expect(verifyGovernanceUpdate(v1, signBy({ ...v2doc, previous: 'ab'.repeat(32) }, ['admin1', 'admin2', 'admin4']))).toMatchObject({ ok: false, reason: expect.stringContaining('does not name the digest of v1') });
    expect(verifyGovernanceUpdate(v1, signBy({ ...v2doc, clusterId: 'other' }, ['admin1', 'admin2', 'admin4']))).toMatchObject({ ok: false, reason: expect.stringContaining('is for cluster other') });
    expect(verifyGovernanceUpdate(v1, signBy(v2doc, ['admin1', 'admin2', 'admin4', 'mallory']))).toMatchObject({ ok: false, reason: expect.stringContaining('mallory, an administrator of neither') });
  });

  it('verifies a chain, where a removed administrator no longer counts', () => {
    const g1 = signBy(v1, ADMINS.map((a) => a.name));
    const g2 = signBy(v2doc, ['admin1', 'admin2', 'admin4']);
    const v3doc: GovernanceDocument = { ...v2doc, version: 3, previous: toHex(governanceDigest(v2doc)), quorum: { ...v2doc.quorum, 'kms:CreateKey': 2 } };
    expect(verifyGovernanceChain([g1, g2, signBy(v3doc, ['admin1', 'admin4'])])).toEqual({ ok: true, governance: v3doc });
    // admin3 was removed in v2: its signature on v3 is not accepted.
    expect(verifyGovernanceChain([g1, g2, signBy(v3doc, ['admin1', 'admin3'])])).toMatchObject({ ok: false, reason: expect.stringContaining('admin3, an administrator of neither v2 nor v3') });
    expect(verifyGovernanceChain([g1, signBy(v3doc, ['admin1', 'admin2'])]).ok).toBe(false);
    expect(verifyGovernanceChain([])).toEqual({ ok: false, reason: 'empty governance chain' });
  });
});
