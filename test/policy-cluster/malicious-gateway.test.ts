// A compromised gateway against real signer processes: the test holds the gateway's identity
// key (read from its sealed store with its operator secret) and calls the signers' RPC itself,
// as an attacker who owns the gateway host would. It has no application secret and no
// administrator's approval key. Every signer refuses: forged approvals, altered policies, key
// creation without approval, forgetting a key in use, requests no client signed, and requests
// whose signed body names another key or message; a repeat is served only as the same request.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignerClient } from '../../gateway/signer-client.js';
import { CKM } from '../../contract/pkcs11/ck.js';
import { encodeValue } from '../../contract/pkcs11/wire.js';
import { readPinKdf } from '../../gateway/principals.js';
import { derivePinKeys, macP11Request, signApproval, sigv4Evidence, type Proposal } from '../../policy/index.js';
import { toHex } from '../../contract/bytes.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import type { TestCluster } from '../helpers/cluster.js';
import { signRequest } from '../kms/sign-request.js';
import { appRequest, auditEntries, createKey, frostSession, refusal, refusedEverywhere, signUse, startWithSigners, stopWithSigners } from './helpers.js';

let tc: TestCluster;
let signers: SignerClient[];
let keyA: string;
let keyB: string;
let governance: { clusterId: string; version: number };

const text = (s: string) => new TextEncoder().encode(s);
const b64 = (s: string) => Buffer.from(s).toString('base64');
const signBody = (keyId: string, message: string) => ({ KeyId: keyId, Message: b64(message), SigningAlgorithm: 'ED25519_SHA_512' });
const commit = (c: SignerClient, keyId: string, use: unknown) => c.call(signerRoutes.frost.commit, { session: randomUUID(), keyId, signers: signers.map((s) => s.id), use });

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  [keyA, keyB] = [await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' }), await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' })];
  const doc = JSON.parse(readFileSync(path.join(tc.dir, 'governance.json'), 'utf8')).chain[0].document;
  governance = { clusterId: doc.clusterId, version: doc.version };
}, 120_000);

afterAll(() => stopWithSigners(tc, signers));


const proposal = (operation: string, parameters: Record<string, unknown>): Proposal => ({
  id: `p-${toHex(ed25519.utils.randomSecretKey()).slice(0, 16)}`,
  clusterId: governance.clusterId,
  operation: operation as Proposal['operation'],
  parameters,
  proposer: 'admin1',
  createdAt: Date.now(),
  expiresAt: Date.now() + 3600_000,
  governanceVersion: governance.version,
});
const approvalKey = (admin: string) => new Uint8Array(Buffer.from(readFileSync(path.join(tc.dir, 'principals', `${admin}.approval.key`), 'utf8').trim(), 'hex'));
const OPEN_POLICY = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' }] });

describe('changes to keys need the administrators, not the gateway', () => {
  it('a quorum change on the gateway’s word alone', async () => {
    for (const m of await refusedEverywhere(signers, keyA, { keyId: keyA, operation: 'PutKeyPolicy', parameters: { KeyId: keyA, Policy: OPEN_POLICY } }))
      expect(m).toMatch(/kms:PutKeyPolicy needs approval by 2 of the 3 administrators; the request carries none/);
  });

  it('forged approvals: a key the governance does not know, one administrator twice, a non-administrator', async () => {
    const p = proposal('kms:PutKeyPolicy', { KeyId: keyA, Policy: OPEN_POLICY });
    const rogue = ed25519.utils.randomSecretKey();
    const change = { keyId: keyA, operation: 'PutKeyPolicy', parameters: p.parameters, proposal: p };
    for (const m of await refusedEverywhere(signers, keyA, { ...change, approvals: [signApproval(p, 'admin1', rogue), signApproval(p, 'admin2', rogue)] })) expect(m).toMatch(/the approval by admin1 does not verify/);
    for (const m of await refusedEverywhere(signers, keyA, { ...change, approvals: [signApproval(p, 'admin1', approvalKey('admin1')), signApproval(p, 'admin1', approvalKey('admin1'))] }))
      expect(m).toMatch(/needs approval by 2 distinct administrators of 3; it has 1 \(admin1\)/);
    for (const m of await refusedEverywhere(signers, keyA, { ...change, approvals: [signApproval(p, 'admin1', approvalKey('admin1')), signApproval(p, 'app', rogue)] })) expect(m).toMatch(/app is not an administrator/);
  });

  it('an altered policy: approvals of one document do not carry another', async () => {
    const approvedPolicy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:user/admin1' }, Action: 'kms:*', Resource: '*' }] });
    const p = proposal('kms:PutKeyPolicy', { KeyId: keyA, Policy: approvedPolicy });
    const approvals = [signApproval(p, 'admin1', approvalKey('admin1')), signApproval(p, 'admin2', approvalKey('admin2'))];
    // The change's parameters differ from the proposal's …
    for (const m of await refusedEverywhere(signers, keyA, { keyId: keyA, operation: 'PutKeyPolicy', parameters: { KeyId: keyA, Policy: OPEN_POLICY }, proposal: p, approvals }))
      expect(m).toMatch(/the change differs from what proposal p-[0-9a-f]+ approved/);
    // … or the proposal itself was edited after it was approved.
    const edited = { ...p, parameters: { KeyId: keyA, Policy: OPEN_POLICY } };
    for (const m of await refusedEverywhere(signers, keyA, { keyId: keyA, operation: 'PutKeyPolicy', parameters: edited.parameters, proposal: edited, approvals }))
      expect(m).toMatch(/the approval by admin1 does not verify over proposal/);
    // … or it is applied to another key than approved.
    for (const m of await refusedEverywhere(signers, keyA, { keyId: keyB, operation: 'PutKeyPolicy', parameters: p.parameters, proposal: p, approvals }))
      expect(m).toMatch(new RegExp(`names key ${keyB} but its parameters name ${keyA}`));
  });

  it('creating a key without an approved proposal, or forgetting a key in use', async () => {
    // Used once, so it is a key in use.
    await frostSession(tc, signers.slice(0, 2), keyA, text('in use'), signUse(text('in use'), await appRequest(tc, 'TrentService.Sign', signBody(keyA, 'in use'))));
    for (const c of signers) {
      const start = { session: randomUUID(), keyId: randomUUID(), suite: 'ed25519', participants: signers.map((s) => s.id), threshold: 2 };
      expect((await refusal(c.call(signerRoutes.dkg.start, start))).message).toMatch(/no key-creation authorisation/);
      const creation = { keySpec: 'ECC_NIST_EDWARDS25519', keyUsage: 'SIGN_VERIFY', origin: 'AWS_KMS', policy: OPEN_POLICY };
      expect((await refusal(c.call(signerRoutes.dkg.start, { ...start, creation }))).message).toMatch(/kms:CreateKey needs approval by 1 of the 3 administrators; the request carries none/);
    }
    for (const c of signers.slice(0, 2)) expect((await refusal(c.call(signerRoutes.keys.forget, { keyId: keyA }))).message).toMatch(/is in use; keys are deleted by an approved ScheduleKeyDeletion/);
  });
});

describe('signing needs a client’s own request, once, for exactly that key and message', () => {
  it('a request no client signed: none at all, or signed with a made-up secret', async () => {
    const p = tc.principal('app');
    const forged = await signRequest({ accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: 'x'.repeat(40) }, { host: new URL(tc.endpoint).host, target: 'TrentService.Sign', body: JSON.stringify(signBody(keyA, 'forged')) });
    const evidence = sigv4Evidence({ method: 'POST', path: '/', headers: forged.headers, body: forged.body });
    for (const c of signers) {
      expect((await refusal(commit(c, keyA, undefined))).message).toMatch(/access denied: the request carries no evidence/);
      expect((await refusal(commit(c, keyA, signUse(text('forged'), evidence)))).message).toMatch(/access denied: the SigV4 signature does not verify/);
    }
  });

  it('a signed request for another key, another message, or another operation', async () => {
    const forB = await appRequest(tc, 'TrentService.Sign', signBody(keyB, 'hello'));
    const verify = await appRequest(tc, 'TrentService.Verify', { ...signBody(keyA, 'hello'), Signature: b64('x'.repeat(64)) });
    for (const c of signers) {
      expect((await refusal(commit(c, keyA, signUse(text('hello'), forB)))).message).toMatch(/names key "[0-9a-f-]+", not this key/);
      const forHello = await appRequest(tc, 'TrentService.Sign', signBody(keyA, 'hello'));
      expect((await refusal(commit(c, keyA, signUse(text('goodbye'), forHello)))).message).toMatch(/the request signs a different message/);
      expect((await refusal(commit(c, keyA, signUse(text('hello'), verify)))).message).toMatch(/is TrentService.Verify, not TrentService.Sign/);
    }
  });

  it('a signing package for another message than the request named, after a valid commitment', async () => {
    const evidence = await appRequest(tc, 'TrentService.Sign', signBody(keyA, 'pay 10'));
    await expect(frostSession(tc, signers.slice(0, 2), keyA, text('pay 1000'), signUse(text('pay 10'), evidence))).rejects.toThrow(/not for the message and algorithm the client asked for/);
  });

  it('a repeated request is the same request: served again for that key and message only, recorded as a repeat', async () => {
    const evidence = await appRequest(tc, 'TrentService.Sign', signBody(keyA, 'once'));
    const use = signUse(text('once'), evidence);
    expect((await frostSession(tc, signers, keyA, text('once'), use)).length).toBe(64);
    expect((await frostSession(tc, signers.slice(1), keyA, text('once'), use)).length).toBe(64);
    for (const c of signers) expect((await refusal(commit(c, keyB, use))).message).toMatch(/not this key/);
    const released = auditEntries(tc, 'signer2').filter((e) => e.keyId === keyA && e.output === 'partial');
    expect(released.slice(-2).map((e) => (e.detail as { repeat?: boolean } | undefined)?.repeat ?? false)).toEqual([false, true]);
  });

  it('each signer recorded its refusals', () => {
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const refused = auditEntries(tc, s).filter((e) => e.outcome === 'refused').map((e) => String(e.reason));
      for (const why of [/no evidence/, /SigV4 signature does not verify/, /not this key/, /needs approval by 2/]) expect(refused.some((r) => why.test(r)), `${s}: ${why}`).toBe(true);
    }
  });

  it('application authentication: a forged request gets no principal from any signer', async () => {
    const p = tc.principal('app');
    const forged = await signRequest({ accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: 'y'.repeat(40) }, { host: new URL(tc.endpoint).host, target: 'TrentService.ListKeys', body: '{}' });
    for (const c of signers) {
      const e = await refusal(c.call(signerRoutes.auth.sigv4, { session: randomUUID(), request: sigv4Evidence({ method: 'POST', path: '/', headers: forged.headers, body: forged.body }) }));
      expect([e.code, e.message]).toEqual(['InvalidSignatureException', expect.stringMatching(/signature we calculated does not match/)]);
    }
  });

  it('the gateway holds no application secret', () => {
    const secret = tc.principal('app').AWS_SECRET_ACCESS_KEY;
    expect(readFileSync(path.join(tc.dir, 'gateway', 'principals.json'), 'utf8')).not.toContain(secret);
  });
});

describe("PKCS#11 evidence (kind p11): the module's MAC under the request key its PIN derives", () => {
  it('is accepted by the signers from the registered request key, and refused when forged with what a gateway sees or tampered with', async () => {
    const kdf = readPinKdf(path.join(tc.dir, 'gateway'));
    const pin = tc.principal('app').MPCHSM_PKCS11_PIN;
    const { loginKey, requestKey } = derivePinKeys(pin, kdf);
    // What C_Sign with CKM_EDDSA sends, as the module MACs it.
    const request = (message: string) => ({
      kind: 'p11' as const,
      operation: 'Sign' as const,
      principal: 'app',
      timestamp: Date.now(),
      nonce: toHex(ed25519.utils.randomSecretKey().subarray(0, 16)),
      key: `k:${keyA}:priv`,
      mechanism: CKM.EDDSA,
      params: encodeValue([0]).toString('hex'),
      input: toHex(text(message)),
      isDigest: 0 as const,
    });
    const evidence = macP11Request(request('from pkcs#11'), requestKey);
    expect((await frostSession(tc, signers.slice(0, 2), keyA, text('from pkcs#11'), signUse(text('from pkcs#11'), evidence))).length).toBe(64);
    // The same statement again is a repeat of that request, for that key and message only.
    expect((await frostSession(tc, signers.slice(0, 2), keyA, text('from pkcs#11'), signUse(text('from pkcs#11'), evidence))).length).toBe(64);
    expect((await refusal(commit(signers[0]!, keyA, signUse(text('other'), evidence)))).message).toMatch(/signs a different message/);
    // A gateway that watched C_Login holds the login key (and its own files), never the request key.
    for (const key of [loginKey, ed25519.utils.randomSecretKey()]) {
      const forged = macP11Request(request('x'), key);
      for (const c of signers) expect((await refusal(commit(c, keyA, signUse(text('x'), forged)))).message, c.name).toMatch(/PKCS#11 request MAC of app does not verify/);
    }
    const tampered = { ...macP11Request(request('y'), requestKey), input: toHex(text('z')) };
    expect((await refusal(commit(signers[2]!, keyA, signUse(text('z'), tampered)))).message).toMatch(/does not verify/);
    // A genuine request for one message is no evidence for another.
    const honest = macP11Request(request('y'), requestKey);
    expect((await refusal(commit(signers[2]!, keyA, signUse(text('z'), honest)))).message).toMatch(/signs a different message/);
    loginKey.fill(0);
    requestKey.fill(0);
  });
});
