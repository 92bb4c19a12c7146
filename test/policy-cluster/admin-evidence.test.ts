// Issue #16: administrators' and auditors' requests are verified at the signers. The gateway
// holds no principal's secret; every key change and creation reaches the signers with the
// administrator's own signed request, which each signer checks itself (policy/admin-evidence.ts)
// and which counts as that administrator's approval. The test owns the gateway's directory and
// identity and speaks to the signers with the project's own client, as an attacker on the
// gateway host would; every signer refuses what no administrator asked for.
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CreateAliasCommand, CreateKeyCommand, DeleteAliasCommand, DisableKeyCommand, SignCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKM } from '../../contract/pkcs11/ck.js';
import { encodeValue } from '../../contract/pkcs11/wire.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { readPinKdf } from '../../gateway/principals.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import { derivePinKeys, macP11KeygenRequest, sigv4Evidence } from '../../policy/index.js';
import type { TestCluster } from '../helpers/cluster.js';
import { signRequest } from '../kms/sign-request.js';
import { appRequest, approve, auditEntries, createKey, failure, gatewayCall, kms, nextSeq, proposalIn, refusal, refusedEverywhere, signerRegistry, startWithSigners, stopWithSigners } from './helpers.js';

let tc: TestCluster;
let signers: SignerClient[];
let keyA: string;
let keyB: string;
const ED = { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' } as const;

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  [keyA, keyB] = [await createKey(tc, ED), await createKey(tc, ED)];
}, 120_000);

afterAll(() => stopWithSigners(tc, signers));


/** An administrator's request signed with a made-up secret under its real access key id. */
async function forged(as: string, target: string, body: object) {
  const p = tc.principal(as);
  const signed = await signRequest({ accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: 'z'.repeat(40) }, { host: new URL(tc.endpoint).host, target, body: JSON.stringify(body), headers: { 'amz-sdk-invocation-id': randomUUID() } });
  return sigv4Evidence({ method: 'POST', path: '/', headers: signed.headers, body: signed.body });
}

const filesUnder = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(path.join(dir, n)).isDirectory() ? filesUnder(path.join(dir, n)) : [path.join(dir, n)]));

describe('administrators and auditors are verified at the signers', () => {
  it('CreateKey through the AWS SDK as admin1 answers KeyMetadata in one call; each signer records admin1 and the request', async () => {
    const out = await kms(tc, 'admin1').send(new CreateKeyCommand(ED));
    expect(out.KeyMetadata).toMatchObject({ KeyState: 'Enabled', KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const made = auditEntries(tc, s).find((e) => e.keyId === out.KeyMetadata!.KeyId && e.output === 'key');
      expect(made, s).toMatchObject({ outcome: 'ok', principal: { name: 'admin1' }, policy: { approvals: ['admin1'] }, detail: { evidence: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    }
  });

  it("every principal's secret is at every signer, and none is in a file under the gateway's directory or in its log", async () => {
    await kms(tc, 'auditor').send(new DisableKeyCommand({ KeyId: keyA })).catch(() => undefined); // an auditor's request, refused, logged
    const names = ['admin1', 'admin2', 'admin3', 'auditor', 'app'];
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const registry = await signerRegistry(tc, s);
      for (const n of names) expect(registry.principals.find((p) => p.name === n)?.secretAccessKey, `${s}: ${n}`).toBe(tc.principal(n).AWS_SECRET_ACCESS_KEY);
    }
    const files = [...filesUnder(path.join(tc.dir, 'gateway')), path.join(tc.dir, 'logs', 'gateway.log')];
    for (const f of files) {
      const text = readFileSync(f).toString('latin1');
      for (const n of names) expect(text.includes(tc.principal(n).AWS_SECRET_ACCESS_KEY), `${n}'s secret in ${f}`).toBe(false);
    }
    const record = JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'principals.json'), 'utf8')).principals as object[];
    for (const p of record) expect(Object.keys(p).sort()).toEqual(['accessKeyId', 'name', 'pinLoginHash', 'role']);
  });
});

describe("an administrator's request is that administrator's approval", () => {
  it('an honest alias change applies at every signer, recorded with who asked and the request’s hash; the alias then signs', async () => {
    const admin = kms(tc, 'admin2');
    await admin.send(new CreateAliasCommand({ AliasName: 'alias/honest', TargetKeyId: keyB }));
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const e = auditEntries(tc, s).find((x) => x.op === 'policy.CreateAlias' && x.outcome === 'ok');
      expect(e, s).toMatchObject({ principal: { name: 'admin2' }, keyId: keyB, detail: { evidence: expect.stringMatching(/^[0-9a-f]{64}$/) } });
      expect(e!.detail, s).not.toHaveProperty('onGatewayWord');
    }
    const signed = await kms(tc, 'app').send(new SignCommand({ KeyId: 'alias/honest', Message: new TextEncoder().encode('by alias'), SigningAlgorithm: 'ED25519_SHA_512' }));
    expect(signed.Signature!.length).toBe(64);
    await admin.send(new DeleteAliasCommand({ AliasName: 'alias/honest' }));
    for (const s of ['signer1', 'signer2', 'signer3']) expect(auditEntries(tc, s).some((x) => x.op === 'policy.DeleteAlias' && x.outcome === 'ok'), s).toBe(true);
  });

  it('DisableKey (2 of 3) proposed by admin1 is executed on one more approval; the signers count admin1’s request', async () => {
    const id = proposalIn(await failure(kms(tc, 'admin1').send(new DisableKeyCommand({ KeyId: keyA }))));
    const out = await approve(tc, id, 'admin3');
    expect([out.Status, out.Approvals.sort()]).toEqual(['Executed', ['admin1', 'admin3']]);
    for (const s of out.Signers ?? []) expect(s).toMatchObject({ applied: true });
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const e = auditEntries(tc, s).find((x) => x.op === 'policy.DisableKey' && x.outcome === 'ok');
      expect((e!.policy as { approvals: string[] }).approvals.sort(), s).toEqual(['admin1', 'admin3']);
    }
  });

  it('a refresh of a key’s shares by an administrator works', async () => {
    const r = await gatewayCall(tc, 'admin1', 'MpcHsm.RefreshKeyShares', { KeyId: keyB });
    expect([r.status, r.body.KeyId]).toEqual([200, keyB]);
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const e = auditEntries(tc, s).find((x) => x.op === 'reshare.start' && x.keyId === keyB && x.outcome === 'ok');
      expect(e, s).toMatchObject({ principal: { name: 'admin1' }, detail: { evidence: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    }
  });

  it('under a quorum of 2, a refresh is a proposal that one more administrator completes; the signers count the proposer’s request', async () => {
    const file = path.join(tc.dir, 'refresh-quorum.json');
    writeFileSync(file, JSON.stringify({ quorum: { 'mpchsm:RefreshKeyShares': 2 } }));
    const proposed = JSON.parse((await tc.mpchsm('governance', 'propose', '--file', file, '--as', 'admin1', '--dir', tc.dir, '--json')).stdout) as { Proposal: { id: string } };
    expect((await approve(tc, proposed.Proposal.id, 'admin2')).Status).toBe('Executed');
    const held = await gatewayCall(tc, 'admin2', 'MpcHsm.RefreshKeyShares', { KeyId: keyB });
    expect(held.body.message).toMatch(/needs approval by 2 of the 3 administrators.*Proposal p-[0-9a-f]+ holds this request until 2 of the 3 administrators approve it \(admin2's request counts as one\)/);
    const id = proposalIn({ name: String(held.body.__type), message: String(held.body.message) });
    const out = await approve(tc, id, 'admin3');
    expect([out.Status, out.Approvals.sort(), out.Result?.KeyId]).toEqual(['Executed', ['admin2', 'admin3'], keyB]);
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const e = auditEntries(tc, s).filter((x) => x.op === 'reshare.start' && x.keyId === keyB && x.outcome === 'ok').at(-1);
      expect(e, s).toMatchObject({ principal: { name: 'admin2' }, policy: { approvals: expect.arrayContaining(['admin2', 'admin3']) }, detail: { proposal: id, evidence: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    }
  });
});

// Last: these number changes at the signers behind the gateway's back.
describe('a compromised gateway changes no key without an administrator’s request for exactly that change', () => {
  const changes = () => [
    { keyId: keyA, operation: 'EnableKey', parameters: { KeyId: keyA } },
    { keyId: keyA, operation: 'CreateAlias', parameters: { AliasName: 'alias/evil', TargetKeyId: keyA } },
    { keyId: keyA, operation: 'CancelKeyDeletion', parameters: { KeyId: keyA } },
    { keyId: keyA, operation: 'DisableKey', parameters: { KeyId: keyA } },
  ];

  it('with no evidence', async () => {
    for (const c of changes()) for (const m of await refusedEverywhere(signers, keyA, c)) expect(m, c.operation).toMatch(/carries no evidence|needs approval by 2 of the 3 administrators; the request carries none/);
  });

  it("with an administrator's request for another operation", async () => {
    const describeKey = await appRequest(tc, 'TrentService.DescribeKey', { KeyId: keyA }, 'admin1');
    for (const c of changes()) for (const m of await refusedEverywhere(signers, keyA, { ...c, evidence: describeKey })) expect(m, c.operation).toMatch(new RegExp(`is TrentService.DescribeKey, not TrentService.${c.operation}`));
  });

  it("with an administrator's request for the same operation with other parameters", async () => {
    for (const c of changes()) {
      const other = await appRequest(tc, `TrentService.${c.operation}`, c.operation === 'CreateAlias' ? { AliasName: 'alias/other', TargetKeyId: keyA } : { KeyId: keyB }, 'admin1');
      for (const m of await refusedEverywhere(signers, keyA, { ...c, evidence: other })) expect(m, c.operation).toMatch(/the signed request asks something else: its parameters/);
    }
  });

  it('with an administrator’s request signed with a made-up secret', async () => {
    for (const c of changes()) for (const m of await refusedEverywhere(signers, keyA, { ...c, evidence: await forged('admin1', `TrentService.${c.operation}`, c.parameters) })) expect(m, c.operation).toMatch(/the SigV4 signature does not verify/);
  });

  it("a key made on an application's CreateKey request, or on a forged administrator's (KMS or PKCS#11)", async () => {
    const creation = (evidence: unknown) => ({ keySpec: 'ECC_NIST_EDWARDS25519', keyUsage: 'SIGN_VERIFY', origin: 'AWS_KMS', evidence });
    const byApp = await appRequest(tc, 'TrentService.CreateKey', ED, 'app');
    const byForger = await forged('admin2', 'TrentService.CreateKey', ED);
    for (const c of signers) {
      const start = () => ({ session: randomUUID(), keyId: randomUUID(), suite: 'ed25519', participants: signers.map((s) => s.id), threshold: 2 });
      expect((await refusal(c.call(signerRoutes.dkg.start, { ...start(), creation: creation(byApp) }))).message, c.name).toMatch(/app is not allowed kms:CreateKey/);
      expect((await refusal(c.call(signerRoutes.dkg.start, { ...start(), creation: creation(byForger) }))).message, c.name).toMatch(/the SigV4 signature does not verify/);
    }
    // Over PKCS#11: a key generation MAC'd with what a gateway sees at C_Login, or an honest one for another curve.
    const { loginKey, requestKey } = derivePinKeys(tc.principal('admin1').MPCHSM_PKCS11_PIN, readPinKdf(path.join(tc.dir, 'gateway')));
    const keygen = (curve: Buffer, key: Uint8Array) =>
      macP11KeygenRequest(
        { kind: 'p11-keygen', principal: 'admin1', timestamp: Date.now(), nonce: randomBytes(16).toString('hex'), mechanism: CKM.EC_KEY_PAIR_GEN, publicTemplate: encodeValue([[CKA.EC_PARAMS, curve]]).toString('hex'), privateTemplate: encodeValue([[CKA.SIGN, Buffer.of(1)]]).toString('hex'), abi: 1 },
        key,
      );
    const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
    for (const c of signers) {
      const start = () => ({ session: randomUUID(), keyId: randomUUID(), suite: 'ed25519', participants: signers.map((s) => s.id), threshold: 2 });
      expect((await refusal(c.call(signerRoutes.dkg.start, { ...start(), creation: creation(keygen(Buffer.from('06032b6570', 'hex'), loginKey)) }))).message, c.name).toMatch(/PKCS#11 request MAC of admin1 does not verify/);
      expect((await refusal(c.call(signerRoutes.dkg.start, { ...start(), creation: creation(keygen(P256, requestKey)) }))).message, c.name).toMatch(/asks for a ECC_NIST_P256 key, not ECC_NIST_EDWARDS25519/);
    }
  });

  it("a refresh of a key's shares on no request, an application's, one for another key, or a forged one", async () => {
    const start = (c: SignerClient, authority?: object) => c.call(signerRoutes.reshare.start, { session: randomUUID(), keyId: keyA, participants: signers.map((s) => s.id), threshold: 2, ...(authority ? { authority } : {}) });
    const asked = async (evidence: unknown) => ({ parameters: { KeyId: keyA }, evidence });
    const cases: [object | undefined, RegExp][] = [
      [undefined, /needs an administrator's request; the request carries none/],
      [await asked(await appRequest(tc, 'MpcHsm.RefreshKeyShares', { KeyId: keyA }, 'app')), /app is not allowed mpchsm:RefreshKeyShares/],
      [await asked(await appRequest(tc, 'MpcHsm.RefreshKeyShares', { KeyId: keyB }, 'admin1')), /the signed request asks something else/],
      [await asked(await forged('admin1', 'MpcHsm.RefreshKeyShares', { KeyId: keyA })), /the SigV4 signature does not verify/],
    ];
    for (const c of signers) for (const [authority, why] of cases) expect((await refusal(start(c, authority))).message, c.name).toMatch(why);
  });

  it("an administrator's request replayed for a second change, or a second key", async () => {
    const evidence = await appRequest(tc, 'TrentService.EnableKey', { KeyId: keyB }, 'admin3');
    const change = { keyId: keyB, operation: 'EnableKey' as const, parameters: { KeyId: keyB }, evidence };
    for (const c of signers) expect(await c.call(signerRoutes.policy.apply, { ...change, seq: await nextSeq(c, keyA) }), c.name).toMatchObject({ applied: true });
    for (const m of await refusedEverywhere(signers, keyA, change)) expect(m).toMatch(/already used \(replay\)/);
    // One CreateKey request starts one key, not a second.
    const creation = { keySpec: 'ECC_NIST_EDWARDS25519', keyUsage: 'SIGN_VERIFY', origin: 'AWS_KMS', evidence: await appRequest(tc, 'TrentService.CreateKey', ED, 'admin1') };
    const start = () => ({ session: randomUUID(), keyId: randomUUID(), suite: 'ed25519', participants: signers.map((s) => s.id), threshold: 2, creation });
    await signers[0]!.call(signerRoutes.dkg.start, start());
    expect((await refusal(signers[0]!.call(signerRoutes.dkg.start, start()))).message).toMatch(/already used to create another key \(replay\)/);
  });
});
