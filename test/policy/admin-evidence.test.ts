// An administrator's signed request as evidence for a change (policy/admin-evidence.ts), and as
// that administrator's approval in authorize() (policy/evaluate.ts).
import { describe, expect, it } from 'vitest';
import { CKA, CKM } from '../../contract/pkcs11/ck.js';
import { encodeValue } from '../../contract/pkcs11/wire.js';
import { createKeyRequestFor, macP11KeygenRequest, macP11LabelRequest, sameParameters, verifyPrincipalRequest } from '../../policy/admin-evidence.js';
import { signApproval, type Proposal } from '../../policy/approvals.js';
import { authorize } from '../../policy/evaluate.js';
import { sigv4Evidence } from '../../policy/evidence.js';
import { defaultKeyPolicy } from '../../policy/key-policy.js';
import { signRequest } from '../kms/sign-request.js';
import { admin, arnOf, bootstrapGovernance, CLUSTER, KEY_ARN, KEY_ID, NOW, REGION } from './fixtures.js';

const ACCESS_KEY = 'MPCADMINTESTKEY0001';
const SECRET = 'admin-secret-access-key-0123456789';
const secretFor = (id: string) => (id === ACCESS_KEY ? { principal: 'admin1', secret: SECRET } : undefined);
const keyIdOf = (ref: string) => (ref === KEY_ARN ? KEY_ID : ref);

async function request(target: string, body: object, o: { secret?: string; at?: number } = {}) {
  const signed = await signRequest({ accessKeyId: ACCESS_KEY, secretAccessKey: o.secret ?? SECRET }, { host: '127.0.0.1:4600', target, body: JSON.stringify(body), date: new Date(o.at ?? NOW) });
  return sigv4Evidence({ method: 'POST', path: '/', headers: signed.headers, body: signed.body });
}
const verify = async (evidence: unknown, target: string, expected: Record<string, unknown>, now = NOW) =>
  verifyPrincipalRequest(evidence, { region: REGION, secretFor, requestKeyFor: () => undefined, now, expect: { target, check: sameParameters(expected, keyIdOf) } });

describe('an administrator’s request as evidence for a change', () => {
  it('names the principal from the verifier’s registry, with a hash and a replay id', async () => {
    const r = await verify(await request('TrentService.EnableKey', { KeyId: KEY_ID }), 'TrentService.EnableKey', { KeyId: KEY_ID });
    expect(r).toMatchObject({ ok: true, principal: 'admin1', evidenceHash: expect.stringMatching(/^[0-9a-f]{64}$/), replayId: expect.stringMatching(/^sigv4:/) });
  });

  it('a key ARN and its id are the same KeyId; null members are as absent', async () => {
    expect((await verify(await request('TrentService.EnableKey', { KeyId: KEY_ARN, Extra: null }), 'TrentService.EnableKey', { KeyId: KEY_ID })).ok).toBe(true);
  });

  it('refuses none, another operation, other parameters, a made-up secret, a stale date', async () => {
    const enable = await request('TrentService.EnableKey', { KeyId: KEY_ID });
    expect(await verify(undefined, 'TrentService.EnableKey', { KeyId: KEY_ID })).toMatchObject({ ok: false, reason: expect.stringMatching(/carries no evidence/) });
    expect(await verify(enable, 'TrentService.CancelKeyDeletion', { KeyId: KEY_ID })).toMatchObject({ ok: false, reason: expect.stringMatching(/is TrentService.EnableKey, not TrentService.CancelKeyDeletion/) });
    expect(await verify(enable, 'TrentService.EnableKey', { KeyId: '00000000-0000-4000-8000-000000000000' })).toMatchObject({ ok: false, reason: expect.stringMatching(/asks something else/) });
    const forged = await request('TrentService.EnableKey', { KeyId: KEY_ID }, { secret: 'x'.repeat(40) });
    expect(await verify(forged, 'TrentService.EnableKey', { KeyId: KEY_ID })).toMatchObject({ ok: false, reason: 'the SigV4 signature does not verify' });
    expect(await verify(enable, 'TrentService.EnableKey', { KeyId: KEY_ID }, NOW + 6 * 60_000)).toMatchObject({ ok: false, reason: expect.stringMatching(/more than 5 minutes/) });
  });

  it('a CreateKey request for exactly the key made, AWS defaults included', () => {
    const check = createKeyRequestFor({ keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY', origin: 'AWS_KMS' });
    expect(check({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', Description: 'x' })).toBeUndefined();
    expect(check({ CustomerMasterKeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' })).toBeUndefined();
    expect(check({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' })).toMatch(/RSA_2048 key, not ECC_NIST_P256/);
    expect(check({ KeySpec: 'ECC_NIST_P256' })).toMatch(/key usage ENCRYPT_DECRYPT/);
    expect(check({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', Policy: '{}' })).toMatch(/another key policy/);
  });
});

describe('an administrator’s verified request is its approval', () => {
  const governance = bootstrapGovernance(); // CreateKey 1, DisableKey 2
  const admin1 = { name: 'admin1', role: 'admin' as const, arn: arnOf('admin1') };
  const key = { arn: KEY_ARN, policy: defaultKeyPolicy('111122223333', ['admin1', 'admin2', 'admin3'], ['app'], ['auditor']) };

  it('alone where the quorum is one, not where it is two', () => {
    expect(authorize({ principal: admin1, operation: 'kms:CreateKey', governance, now: NOW, requestApproved: true })).toMatchObject({ allowed: true, approvedBy: ['admin1'] });
    expect(authorize({ principal: admin1, operation: 'kms:CreateKey', governance, now: NOW }).allowed).toBe(false);
    expect(authorize({ principal: admin1, operation: 'kms:DisableKey', key, governance, now: NOW, requestApproved: true })).toMatchObject({ allowed: false, needsApproval: { m: 2 } });
  });

  it('as the proposer’s approval of its proposal, beside another administrator’s', () => {
    const p: Proposal = { id: 'p-0123456789abcdef', clusterId: CLUSTER, operation: 'kms:DisableKey', parameters: { KeyId: KEY_ID }, proposer: 'admin1', createdAt: NOW, expiresAt: NOW + 3600_000, governanceVersion: 1 };
    const approval = { proposal: p, approvals: [signApproval(p, 'admin2', admin('admin2').secretKey)], parameters: p.parameters };
    expect(authorize({ principal: admin1, operation: 'kms:DisableKey', key, governance, now: NOW, approval, requestApproved: true })).toMatchObject({ allowed: true });
    expect(authorize({ principal: admin1, operation: 'kms:DisableKey', key, governance, now: NOW, approval })).toMatchObject({ allowed: false, reason: expect.stringMatching(/it has 1 \(admin2\)/) });
  });
});

describe('an administrator’s PKCS#11 key generation as evidence for CreateKey', () => {
  const requestKey = new Uint8Array(32).fill(7);
  const requestKeyFor = (p: string) => (p === 'admin1' ? requestKey : undefined);
  const ED25519_OID = Buffer.from('06032b6570', 'hex');
  const template = (attrs: [number, Buffer][]) => encodeValue(attrs).toString('hex');
  const request = (over: object = {}) =>
    macP11KeygenRequest(
      {
        kind: 'p11-keygen',
        principal: 'admin1',
        timestamp: NOW,
        nonce: '11'.repeat(16),
        mechanism: CKM.EC_KEY_PAIR_GEN,
        publicTemplate: template([[CKA.EC_PARAMS, ED25519_OID]]),
        privateTemplate: template([[CKA.SIGN, Buffer.of(1)]]),
        abi: 1,
        ...over,
      },
      requestKey,
    );
  const verifyKeygen = (evidence: unknown, keySpec = 'ECC_NIST_EDWARDS25519', target = 'TrentService.CreateKey') =>
    verifyPrincipalRequest(evidence, { region: REGION, secretFor, requestKeyFor, now: NOW, expect: { target, check: createKeyRequestFor({ keySpec, keyUsage: 'SIGN_VERIFY', origin: 'AWS_KMS' }) } });

  it('verifies the module’s MAC and reads the key from the templates itself', async () => {
    expect(await verifyKeygen(request())).toMatchObject({ ok: true, principal: 'admin1', replayId: `p11:admin1:${'11'.repeat(16)}` });
  });

  it('refuses another key than the templates ask, a MAC under another key, an edited template, another operation', async () => {
    expect(await verifyKeygen(request(), 'ECC_NIST_P256')).toMatchObject({ ok: false, reason: expect.stringMatching(/asks for a ECC_NIST_EDWARDS25519 key, not ECC_NIST_P256/) });
    const { mac: _mac, ...unsigned } = request();
    const forged = macP11KeygenRequest(unsigned, new Uint8Array(32).fill(9));
    expect(await verifyKeygen(forged)).toMatchObject({ ok: false, reason: 'the PKCS#11 request MAC of admin1 does not verify' });
    const edited = { ...request(), privateTemplate: template([[CKA.DECRYPT, Buffer.of(1)]]) };
    expect(await verifyKeygen(edited)).toMatchObject({ ok: false, reason: 'the PKCS#11 request MAC of admin1 does not verify' });
    expect(await verifyKeygen(request(), 'ECC_NIST_EDWARDS25519', 'TrentService.EnableKey')).toMatchObject({ ok: false, reason: expect.stringMatching(/no evidence for TrentService.EnableKey/) });
  });
});

describe('an administrator’s PKCS#11 relabelling as evidence for CreateAlias', () => {
  const requestKey = new Uint8Array(32).fill(5);
  const request = (label: string) =>
    macP11LabelRequest(
      { kind: 'p11-label', principal: 'admin1', timestamp: NOW, nonce: '22'.repeat(16), object: `k:${KEY_ID}:priv`, template: encodeValue([[CKA.LABEL, Buffer.from(label)]]).toString('hex') },
      requestKey,
    );
  const verifyLabel = (evidence: unknown, alias: string, target = 'TrentService.CreateAlias') =>
    verifyPrincipalRequest(evidence, { region: REGION, secretFor, requestKeyFor: () => requestKey, now: NOW, expect: { target, check: sameParameters({ AliasName: alias, TargetKeyId: KEY_ID }, keyIdOf) } });

  it('is evidence for exactly that alias of that key', async () => {
    expect(await verifyLabel(request('ca-key'), 'alias/ca-key')).toMatchObject({ ok: true, principal: 'admin1' });
    expect(await verifyLabel(request('ca-key'), 'alias/other')).toMatchObject({ ok: false, reason: expect.stringMatching(/asks something else/) });
    expect(await verifyLabel(request('ca-key'), 'alias/ca-key', 'TrentService.DeleteAlias')).toMatchObject({ ok: false, reason: expect.stringMatching(/no evidence for TrentService.DeleteAlias/) });
  });
});
