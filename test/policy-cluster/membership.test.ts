// Who may act, changed under quorum on a real cluster: an administrator's tool adds an
// application principal whose secret only the signers ever hold, an auditor whose secret only
// the gateway holds, removes a principal, and moves the governance to new versions (a quorum
// changed, an administrator replaced) — each change executed once approved and verified again
// by every signer. Last, a compromised gateway tries the same changes without the
// administrators, and every signer refuses.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CreateKeyCommand, DescribeKeyCommand, DisableKeyCommand, GetPublicKeyCommand, ListKeysCommand, SignCommand } from '@aws-sdk/client-kms';
import { ed25519 } from '@noble/curves/ed25519.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../cli/env-file.js';
import { loadGatewayConfig } from '../../gateway/config.js';
import { CKM } from '../../contract/pkcs11/ck.js';
import { newPrincipal, readPinKdf } from '../../gateway/principals.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import {
  derivePinKeys,
  loginKeyHash,
  governanceDigest,
  sealPrincipalSecret,
  signApproval,
  signGovernance,
  type GovernanceDocument,
  type Proposal,
  type SignedGovernance,
} from '../../policy/index.js';
import type { PublicIdentity } from '../../contract/identity/identity.js';
import { toHex } from '../../contract/bytes.js';
import type { SignerChange } from '../../contract/signer-rpc/authority.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import type { TestCluster } from '../helpers/cluster.js';
import { signThroughModule } from '../p11/helpers.js';
import { appRequest, approve, auditEntries, failure, gatewayCall, kms, proposalIn, refusal, signerRegistry, signUse, startWithSigners, stopWithSigners } from './helpers.js';

let tc: TestCluster;
let signers: SignerClient[];
/** A key whose policy lets app2 sign. */
let granted: string;
const ED = { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' } as const;
const ACCOUNT = '111122223333';
const user = (n: string) => `arn:aws:iam::${ACCOUNT}:user/${n}`;
const msg = (s: string) => new TextEncoder().encode(s);
const signBody = (keyId: string, m: string) => ({ KeyId: keyId, Message: Buffer.from(m).toString('base64'), SigningAlgorithm: 'ED25519_SHA_512' });

/** A key policy: the administrators manage it, `users` sign with it. */
const policyFor = (admins: string[], users: string[]) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'admins', Effect: 'Allow', Principal: { AWS: admins.map(user) }, Action: 'kms:*', Resource: '*' },
      { Sid: 'users', Effect: 'Allow', Principal: { AWS: users.map(user) }, Action: ['kms:Sign', 'kms:GetPublicKey', 'kms:DescribeKey'], Resource: '*' },
    ],
  });

/** An `mpchsm` command with --json, as the administrator types it: its parsed answer. */
async function cli(...args: string[]): Promise<{ Status: string; Approvals: string[]; Required: number; Proposal: Proposal; Result?: Record<string, unknown>; Signers?: { signer: string; applied: boolean; reason?: string }[] }> {
  return JSON.parse((await tc.mpchsm(...args, '--dir', tc.dir, '--json')).stdout);
}

/** Approves `id` as each of `approvers`; the last approval executes it. */
async function executed(id: string, approvers: string[]): Promise<Awaited<ReturnType<typeof approve>>> {
  let out: Awaited<ReturnType<typeof approve>> | undefined;
  for (const a of approvers) out = await approve(tc, id, a);
  expect(out!.Status).toBe('Executed');
  return out!;
}

/** Approves a principal or governance change; its result, once every signer applied it. */
async function changed(id: string, approvers: string[]): Promise<Record<string, unknown>> {
  const out = await executed(id, approvers);
  expect(out.Signers?.map((s) => [s.signer, s.applied])).toEqual([['signer1', true], ['signer2', true], ['signer3', true]]);
  return out.Result ?? {};
}

/** CreateKey as admin1 under governance v1 (one approval: admin1's request is it). */
async function createKey(policy?: string): Promise<string> {
  return (await kms(tc, 'admin1').send(new CreateKeyCommand({ ...ED, ...(policy ? { Policy: policy } : {}) }))).KeyMetadata!.KeyId!;
}

const signerIdentities = () => loadGatewayConfig(path.join(tc.dir, 'gateway')).signers.map((s) => ({ party: s.id, identity: s.identity }));

/** AddPrincipal's parameters for a new application, its secret sealed to `to` (every signer by default). */
function appEnrolment(name: string, to: { party: number; identity: PublicIdentity }[] = signerIdentities()): Record<string, unknown> {
  const made = newPrincipal(name, 'app', readPinKdf(path.join(tc.dir, 'gateway')));
  const c = made.credentials;
  return {
    Name: name,
    Role: 'app',
    AccessKeyId: c.accessKeyId,
    PinLoginHash: made.record.pinLoginHash,
    ...sealPrincipalSecret({ accessKeyId: c.accessKeyId, secrets: { secretAccessKey: c.secretAccessKey, pinRequestKey: c.pinRequestKey! }, recipients: to, rng: randomBytes }),
  };
}

/** Every file under `dir`, recursively. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));

const chainOf = (file: string): SignedGovernance[] => JSON.parse(readFileSync(file, 'utf8')).chain;

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
}, 120_000);

afterAll(() => stopWithSigners(tc, signers));

describe('adding an application principal', () => {
  let proposalId: string;

  it('is proposed by an administrator whose tool makes the credentials; nothing works before the quorum', async () => {
    const out = await cli('principal', 'add', 'app2', '--role', 'app', '--as', 'admin1');
    expect([out.Status, out.Approvals, out.Required, out.Proposal.operation]).toEqual(['Pending', ['admin1'], 2, 'mpchsm:AddPrincipal']);
    proposalId = out.Proposal.id;
    const file = path.join(tc.dir, 'principals', 'app2.env');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const env = parseEnvFile(readFileSync(file, 'utf8'));
    expect(Object.keys(env).sort()).toEqual(Object.keys(tc.principal('app')).sort());
    expect(env.MPCHSM_KMS_ENDPOINT).toBe(tc.endpoint);
    expect(out.Proposal.parameters).toMatchObject({ Name: 'app2', Role: 'app', AccessKeyId: env.AWS_ACCESS_KEY_ID });
    expect(JSON.stringify(out.Proposal)).not.toContain(env.AWS_SECRET_ACCESS_KEY);
    expect((await failure(kms(tc, 'app2').send(new ListKeysCommand({})))).name).toBe('UnrecognizedClientException');
  });

  it('its proposer does not approve it again: only the command that made the secret vouches for it', async () => {
    await expect(tc.mpchsm('approve', proposalId, '--as', 'admin1', '--dir', tc.dir)).rejects.toThrow(/approves such a proposal only when making it/);
  });

  it('a second approval executes it at the gateway and at every signer', async () => {
    expect(await changed(proposalId, ['admin2'])).toEqual({ Principal: { Name: 'app2', Role: 'app', AccessKeyId: tc.principal('app2').AWS_ACCESS_KEY_ID } });
  });

  it('signs, through the AWS SDK, with a key whose policy grants it — and not with one whose policy does not', async () => {
    granted = await createKey(policyFor(['admin1', 'admin2', 'admin3'], ['app2']));
    const app2 = kms(tc, 'app2');
    const signature = (await app2.send(new SignCommand({ KeyId: granted, Message: msg('from app2'), SigningAlgorithm: 'ED25519_SHA_512' }))).Signature!;
    const spki = (await app2.send(new GetPublicKeyCommand({ KeyId: granted }))).PublicKey!;
    expect(ed25519.verify(signature, msg('from app2'), spki.slice(-32))).toBe(true);

    const appOnly = await createKey(policyFor(['admin1', 'admin2', 'admin3'], ['app']));
    const e = await failure(app2.send(new SignCommand({ KeyId: appOnly, Message: msg('x'), SigningAlgorithm: 'ED25519_SHA_512' })));
    expect([e.name, e.message]).toEqual(['AccessDeniedException', expect.stringMatching(/the key policy grants .*user\/app2 no kms:Sign/)]);
    for (const c of signers) {
      const r = await refusal(c.call(signerRoutes.frost.commit, { session: randomUUID(), keyId: appOnly, signers: signers.map((s) => s.id), use: signUse(msg('x'), await appRequest(tc, 'TrentService.Sign', signBody(appOnly, 'x'), 'app2')) }));
      expect(r.message, c.name).toMatch(/access denied: principal app2 is not allowed kms:Sign/);
    }
  });

  it('signs through the PKCS#11 module with its PIN, which reaches no other process', () => {
    const [signature] = signThroughModule(tc.principal('app2'), [{ keyId: granted, mechanism: CKM.EDDSA, message: msg('over pkcs#11') }]);
    const spki = Buffer.from(JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${granted}.json`), 'utf8')).publicKey, 'base64');
    expect(ed25519.verify(signature!, msg('over pkcs#11'), spki.subarray(-32))).toBe(true);
  });

  it('its secret is at every signer and nowhere in the gateway’s files or log', async () => {
    const { AWS_SECRET_ACCESS_KEY: secret, MPCHSM_PKCS11_PIN: pin } = tc.principal('app2');
    const { loginKey, requestKey } = derivePinKeys(pin, readPinKdf(path.join(tc.dir, 'gateway')));
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const p = (await signerRegistry(tc, s)).principals.find((x) => x.name === 'app2')!;
      expect(p.secretAccessKey, s).toBe(secret);
      expect(p.pinRequestKey, s).toBe(toHex(requestKey));
    }
    const files = [...filesUnder(path.join(tc.dir, 'gateway')), path.join(tc.dir, 'logs', 'gateway.log')];
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      for (const held of [secret, toHex(requestKey), Buffer.from(requestKey).toString('base64'), pin]) expect(readFileSync(f).includes(Buffer.from(held)), f).toBe(false);
    }
    // What the gateway does keep: no secret, and the hash of the PIN's login key.
    const record = JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'principals.json'), 'utf8')).principals.find((p: { name: string }) => p.name === 'app2');
    expect(record).not.toHaveProperty('secretAccessKey');
    expect(record.pinLoginHash).toBe(loginKeyHash(loginKey));
  });

  it('every party recorded the proposal and the change', () => {
    // `up` admitted its own principals the same way before: this proposal's entries are the latest.
    const gw = auditEntries(tc, 'gateway');
    expect(gw.filter((e) => e.op === 'MpcHsm.AddPrincipal').at(-1)).toMatchObject({ outcome: 'ok', principal: { name: 'admin1' }, detail: { proposal: proposalId } });
    const done = gw.filter((e) => e.op === 'AddPrincipal').at(-1);
    expect(done).toMatchObject({ outcome: 'ok', detail: { proposal: proposalId, via: 'MpcHsm.Approve' } });
    expect((done!.policy as { approvals: string[] }).approvals.sort()).toEqual(['admin1', 'admin2']);
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const e = auditEntries(tc, s).filter((x) => x.op === 'policy.AddPrincipal').at(-1);
      expect(e, s).toMatchObject({ outcome: 'ok', principal: { name: 'admin1' }, detail: { proposal: proposalId, member: 'app2' } });
    }
  });
});

describe('adding an auditor principal', () => {
  it('its secret goes to every signer, which verify every principal; it reads what key policies let it, and may not sign', async () => {
    const out = await cli('principal', 'add', 'auditor2', '--role', 'auditor', '--as', 'admin3');
    await changed(out.Proposal.id, ['admin1']);
    const auditor2 = kms(tc, 'auditor2');
    expect((await auditor2.send(new ListKeysCommand({}))).Keys!.map((k) => k.KeyId)).toContain(granted);
    // Keys made before it joined name it nowhere; the default policy of a new key does.
    expect((await failure(auditor2.send(new DescribeKeyCommand({ KeyId: granted })))).name).toBe('AccessDeniedException');
    const keyId = await createKey();
    expect((await auditor2.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyId).toBe(keyId);
    const e = await failure(auditor2.send(new SignCommand({ KeyId: keyId, Message: msg('x'), SigningAlgorithm: 'ED25519_SHA_512' })));
    expect([e.name, e.message]).toEqual(['AccessDeniedException', expect.stringMatching(/auditor2 is not allowed kms:Sign: the application \(key user\) role is required/)]);
    for (const s of ['signer1', 'signer2', 'signer3'])
      expect((await signerRegistry(tc, s)).principals.find((p) => p.name === 'auditor2')).toEqual({
        name: 'auditor2',
        role: 'auditor',
        accessKeyId: tc.principal('auditor2').AWS_ACCESS_KEY_ID,
        secretAccessKey: tc.principal('auditor2').AWS_SECRET_ACCESS_KEY,
        // Public: kept for a gateway that lost its directory (gateway/gateway-recovery.ts).
        pinLoginHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      });
  });

  it('the gateway refuses, before anyone approves: an administrator, an existing name, an application secret sealed to the gateway, a non-administrator proposing', async () => {
    await expect(tc.mpchsm('principal', 'add', 'admin9', '--role', 'admin', '--as', 'admin1', '--dir', tc.dir)).rejects.toThrow(/administrators are added by a governance update/);
    const gateway = JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'identity.json'), 'utf8'));
    const toGateway = await gatewayCall(tc, 'admin1', 'MpcHsm.AddPrincipal', appEnrolment('app3', [{ party: 0xfffe, identity: gateway }]));
    expect([toGateway.body.__type, toGateway.body.message]).toEqual(['ValidationException', expect.stringMatching(/sealed to every signer \(1, 2, 3\) and to nobody else; this proposal seals it to parties 65534/)]);
    const existing = await gatewayCall(tc, 'admin1', 'MpcHsm.AddPrincipal', appEnrolment('app'));
    expect([existing.body.__type, existing.body.message]).toEqual(['AlreadyExistsException', 'principal app already exists']);
    const unsealed = await gatewayCall(tc, 'admin1', 'MpcHsm.AddPrincipal', { ...appEnrolment('app3'), Secrets: [] });
    expect([unsealed.body.__type, unsealed.body.message]).toEqual(['ValidationException', expect.stringMatching(/Secrets/)]);
    const byAuditor = await gatewayCall(tc, 'auditor', 'MpcHsm.RemovePrincipal', { Name: 'app' });
    expect([byAuditor.body.__type, byAuditor.body.message]).toEqual(['AccessDeniedException', expect.stringMatching(/\[missing: mpchsm:RemovePrincipal\]/)]);
    const dup = await gatewayCall(tc, 'admin1', 'MpcHsm.RemovePrincipal', { Name: 'nobody' });
    expect([dup.body.__type, dup.body.message]).toEqual(['NotFoundException', 'principal nobody does not exist']);
  });
});

describe('removing a principal', () => {
  it('with two approvals: the gateway forgets it and every signer refuses its requests', async () => {
    const before = await appRequest(tc, 'TrentService.Sign', signBody(granted, 'after removal'), 'app2');
    const out = await cli('principal', 'remove', 'app2', '--as', 'admin2');
    expect([out.Status, out.Approvals, out.Required]).toEqual(['Pending', ['admin2'], 2]);
    expect(await changed(out.Proposal.id, ['admin3'])).toMatchObject({ Principal: { Name: 'app2', Role: 'app' } });

    expect((await failure(kms(tc, 'app2').send(new SignCommand({ KeyId: granted, Message: msg('x'), SigningAlgorithm: 'ED25519_SHA_512' })))).name).toBe('UnrecognizedClientException');
    for (const c of signers) {
      const auth = await refusal(c.call(signerRoutes.auth.sigv4, { session: randomUUID(), request: await appRequest(tc, 'TrentService.ListKeys', {}, 'app2') }));
      expect(auth.code, c.name).toBe('UnrecognizedClientException');
      const use = await refusal(c.call(signerRoutes.frost.commit, { session: randomUUID(), keyId: granted, signers: signers.map((s) => s.id), use: signUse(msg('after removal'), before) }));
      expect(use.message, c.name).toMatch(/access denied/);
      expect((await signerRegistry(tc, c.name)).principals.map((p) => p.name)).not.toContain('app2');
    }
  });

  it('refuses removing an administrator: that is a governance update', async () => {
    await expect(tc.mpchsm('principal', 'remove', 'admin3', '--as', 'admin1', '--dir', tc.dir)).rejects.toThrow(/admin3 is an administrator: administrators are removed by a governance update/);
  });
});

describe('governance updates', () => {
  it('CreateKey to 2 of 3: approved by v1’s quorum, then in force at the gateway and every signer', async () => {
    const keyId = await createKey();
    // A proposal for a key change, open across the update.
    const disable = proposalIn(await failure(kms(tc, 'admin1').send(new DisableKeyCommand({ KeyId: keyId }))));
    const file = path.join(tc.dir, 'edit-v2.json');
    writeFileSync(file, JSON.stringify({ quorum: { 'kms:CreateKey': 2 } }));
    const out = await cli('governance', 'propose', '--file', file, '--as', 'admin1');
    expect([out.Status, out.Approvals, out.Required, out.Proposal.operation]).toEqual(['Pending', ['admin1'], 2, 'mpchsm:UpdateGovernance']);
    const result = await changed(out.Proposal.id, ['admin3']);
    expect(result.Governance).toMatchObject({ Version: 2, Added: [], Removed: [], Quorum: { 'kms:CreateKey': 2 } });
    // The chain link carries the two approvals as its signatures; the tool's copy follows the gateway's.
    const chain = chainOf(path.join(tc.dir, 'gateway', 'governance.json'));
    expect(chain.map((l) => l.document.version)).toEqual([1, 2]);
    expect(chain[1]!.signatures.map((s) => s.admin).sort()).toEqual(['admin1', 'admin3']);
    expect(chainOf(path.join(tc.dir, 'governance.json'))).toEqual(chain);
    for (const s of ['signer1', 'signer2', 'signer3']) expect(auditEntries(tc, s).find((e) => e.op === 'policy.UpdateGovernance'), s).toMatchObject({ outcome: 'ok', detail: { governance: 2 } });

    // In force: one approval no longer creates a key; two do.
    const id = proposalIn(await failure(kms(tc, 'admin2').send(new CreateKeyCommand(ED))));
    const first = await approve(tc, id, 'admin2');
    expect([first.Status, first.Required]).toEqual(['Pending', 2]);
    expect((await approve(tc, id, 'admin1')).Status).toBe('Executed');
    // Proposals made under v1 are void.
    await expect(approve(tc, disable, 'admin2')).rejects.toThrow(/was made under governance v1; v2 is in force/);
  });

  it('each signer holds v2 itself: a key creation approved by one administrator is refused', async () => {
    const clusterId = chainOf(path.join(tc.dir, 'gateway', 'governance.json'))[0]!.document.clusterId;
    const v2: Proposal = { id: `p-${toHex(randomBytes(8))}`, clusterId, operation: 'kms:CreateKey', parameters: { ...ED }, proposer: 'admin1', governanceVersion: 2, createdAt: Date.now(), expiresAt: Date.now() + 3600_000 };
    const approvals = [signApproval(v2, 'admin1', approvalKey('admin1'))];
    for (const c of signers) {
      const creation = { keySpec: ED.KeySpec, keyUsage: ED.KeyUsage, origin: 'AWS_KMS', proposal: v2, approvals };
      const e = await refusal(c.call(signerRoutes.dkg.start, { session: randomUUID(), keyId: randomUUID(), suite: 'ed25519', participants: signers.map((s) => s.id), threshold: 2, creation }));
      expect(e.message, c.name).toMatch(/needs approval by 2 distinct administrators of 3; it has 1 \(admin1\)/);
    }
  });

  it('replaces an administrator: admin4 joins with its own key and credentials, admin3 leaves', async () => {
    // Nobody's tool makes another administrator's key: a newcomer named in a governance edit is refused.
    const file = path.join(tc.dir, 'edit-v3.json');
    writeFileSync(file, JSON.stringify({ administrators: [{ name: 'admin1' }, { name: 'admin2' }, { name: 'admin4' }] }));
    await expect(cli('governance', 'propose', '--file', file, '--as', 'admin2')).rejects.toThrow(/admin4 is not an administrator of v2: a new administrator makes its own key/);
    // admin4 asks to join from its own directory (here: the cluster's principals folder, where the tests read credentials).
    await tc.mpchsm('principal', 'request', '--name', 'admin4', '--role', 'admin', '--genesis', tc.dir, '--dir', path.join(tc.dir, 'principals'));
    for (const f of ['admin4.env', 'admin4.approval.key']) expect(statSync(path.join(tc.dir, 'principals', f)).mode & 0o777).toBe(0o600);
    const join = await cli('principal', 'propose', path.join(tc.dir, 'principals', 'admin4.request.json'), '--as', 'admin2');
    expect((await changed(String((join as unknown as { proposal: string }).proposal), ['admin3'])).Governance).toMatchObject({ Version: 3, Added: ['admin4'], Removed: [] });
    writeFileSync(file, JSON.stringify({ administrators: [{ name: 'admin1' }, { name: 'admin2' }, { name: 'admin4' }] }));
    const out = await cli('governance', 'propose', '--file', file, '--as', 'admin2');
    expect((await changed(out.Proposal.id, ['admin4'])).Governance).toMatchObject({ Version: 4, Added: [], Removed: ['admin3'] });
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const names = (await signerRegistry(tc, s)).principals.map((p) => p.name);
      expect(names, s).toContain('admin4');
      expect(names, s).not.toContain('admin3');
    }
    // admin4 proposes and approves with its own key; admin3 can do neither.
    const id = proposalIn(await failure(kms(tc, 'admin4').send(new CreateKeyCommand(ED))));
    expect((await approve(tc, id, 'admin4')).Status).toBe('Pending');
    expect((await approve(tc, id, 'admin1')).Status).toBe('Executed');
    expect((await failure(kms(tc, 'admin3').send(new ListKeysCommand({})))).name).toBe('UnrecognizedClientException');
    await expect(approve(tc, id, 'admin3')).rejects.toThrow(/UnrecognizedClientException/);
  });

  it('re-keys an administrator: the new key is used once the version naming it is in force', async () => {
    const oldKey = readFileSync(path.join(tc.dir, 'principals', 'admin1.approval.key'), 'utf8');
    const file = path.join(tc.dir, 'edit-v4.json');
    writeFileSync(file, JSON.stringify({ administrators: [{ name: 'admin1', approvalKey: 'new' }, { name: 'admin2' }, { name: 'admin4' }] }));
    const out = await cli('governance', 'propose', '--file', file, '--as', 'admin1');
    expect(existsSync(path.join(tc.dir, 'principals', 'admin1.approval.key.next'))).toBe(true);
    await changed(out.Proposal.id, ['admin4']);
    // The next command that reads the governance in force takes the new key into use.
    const id = proposalIn(await failure(kms(tc, 'admin1').send(new CreateKeyCommand(ED))));
    expect((await approve(tc, id, 'admin1')).Status).toBe('Pending');
    expect(readFileSync(path.join(tc.dir, 'principals', 'admin1.approval.key'), 'utf8')).not.toBe(oldKey);
    expect(existsSync(path.join(tc.dir, 'principals', 'admin1.approval.key.next'))).toBe(false);
    expect((await approve(tc, id, 'admin2')).Status).toBe('Executed');
  });
});

const approvalKey = (admin: string) => new Uint8Array(Buffer.from(readFileSync(path.join(tc.dir, 'principals', `${admin}.approval.key`), 'utf8').trim(), 'hex'));

// Last: these calls take change numbers at the signers that the real gateway's log then skips.
describe('a compromised gateway cannot change who may act', () => {
  let governance: GovernanceDocument;
  let chain: SignedGovernance[];
  const admins = () => governance.administrators.map((a) => a.name);

  beforeAll(() => {
    chain = chainOf(path.join(tc.dir, 'gateway', 'governance.json'));
    governance = chain.at(-1)!.document;
  });

  async function nextSeq(c: SignerClient): Promise<number> {
    const e = await refusal(c.call(signerRoutes.policy.apply, { seq: 1e12, keyId: randomUUID(), operation: 'EnableKey', parameters: {} }));
    return Number(/expected change (\d+)/.exec(e.message)![1]);
  }
  async function applyEverywhere(change: object): Promise<string[]> {
    const out: string[] = [];
    for (const c of signers) out.push((await refusal(c.call(signerRoutes.policy.apply, { ...change, seq: await nextSeq(c) } as SignerChange))).message);
    return out;
  }
  const proposal = (operation: string, parameters: Record<string, unknown>, proposer = 'admin1'): Proposal => ({
    id: `p-${toHex(randomBytes(8))}`,
    clusterId: governance.clusterId,
    operation: operation as Proposal['operation'],
    parameters,
    proposer,
    createdAt: Date.now(),
    expiresAt: Date.now() + 3600_000,
    governanceVersion: governance.version,
  });

  /** An application principal whose secret the gateway made (and so knows), sealed to every signer. */
  const gatewayMadeApp = (name: string) => appEnrolment(name);

  it('a principal added or removed on its word alone', async () => {
    const params = gatewayMadeApp('mallory');
    for (const m of await applyEverywhere({ operation: 'AddPrincipal', parameters: params, principal: 'admin1' })) expect(m).toMatch(/mpchsm:AddPrincipal needs approval by 2 of the 3 administrators; the request carries none/);
    for (const m of await applyEverywhere({ operation: 'RemovePrincipal', parameters: { Name: 'app' }, principal: 'admin1' })) expect(m).toMatch(/mpchsm:RemovePrincipal needs approval by 2 of the 3 administrators; the request carries none/);
  });

  it('a principal whose secret it made, in an administrator’s name, approved by the others but not by that administrator', async () => {
    const p = proposal('mpchsm:AddPrincipal', gatewayMadeApp('mallory'), 'admin1');
    const others = admins().filter((a) => a !== 'admin1');
    const approvals = others.map((a) => signApproval(p, a, approvalKey(a)));
    for (const m of await applyEverywhere({ operation: 'AddPrincipal', parameters: p.parameters, principal: 'admin1', proposal: p, approvals }))
      expect(m).toMatch(/delivers credentials its proposer admin1 made, so it needs admin1's own approval/);
  });

  it('sealed copies swapped after the approvals', async () => {
    const p = proposal('mpchsm:AddPrincipal', gatewayMadeApp('mallory'));
    const approvals = ['admin1', 'admin2'].map((a) => signApproval(p, a, approvalKey(a)));
    const swapped = { ...p.parameters, ...sealPrincipalSecret({ accessKeyId: String(p.parameters.AccessKeyId), secrets: { secretAccessKey: 'k'.repeat(40), pinRequestKey: '00'.repeat(32) }, recipients: signerIdentities(), rng: randomBytes }) };
    for (const m of await applyEverywhere({ operation: 'AddPrincipal', parameters: swapped, principal: 'admin1', proposal: p, approvals })) expect(m).toMatch(/the change differs from what proposal p-[0-9a-f]+ approved/);
    for (const m of await applyEverywhere({ operation: 'AddPrincipal', parameters: swapped, principal: 'admin1', proposal: { ...p, parameters: swapped }, approvals })) expect(m).toMatch(/the approval by admin1 does not verify/);
  });

  it('an executed AddPrincipal replayed', async () => {
    const stored = JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'proposals.json'), 'utf8')).proposals.find((x: { proposal: Proposal }) => x.proposal.operation === 'mpchsm:AddPrincipal' && x.proposal.parameters.Name === 'auditor2');
    for (const m of await applyEverywhere({ operation: 'AddPrincipal', parameters: stored.proposal.parameters, principal: 'admin3', proposal: stored.proposal, approvals: stored.approvals }))
      expect(m).toMatch(/proposal p-[0-9a-f]+ was already applied here/);
  });

  it('governance versions: unsigned, signed by too few or with a forged key, a new key without its holder, a stale one', async () => {
    const next = (changes: Partial<GovernanceDocument>): GovernanceDocument => ({ ...governance, version: governance.version + 1, previous: toHex(governanceDigest(governance)), ...changes });
    const send = async (g: unknown) => applyEverywhere({ operation: 'UpdateGovernance', parameters: { Governance: g, Principals: [] }, principal: 'admin1' });
    const lax = next({ quorum: { ...governance.quorum, 'kms:CreateKey': 1, 'kms:PutKeyPolicy': 1 } });
    for (const m of await send({ document: lax, signatures: [] })) expect(m).toMatch(/malformed governance document: signatures/);
    for (const m of await send({ document: lax, signatures: [signGovernance(lax, 'admin1', approvalKey('admin1'))] })) expect(m).toMatch(new RegExp(`needs approval by 2 of the 3 administrators of v${governance.version}; it has 1 \\(admin1\\)`));
    const rogue = ed25519.utils.randomSecretKey();
    for (const m of await send({ document: lax, signatures: ['admin1', 'admin2'].map((a) => signGovernance(lax, a, rogue)) })) expect(m).toMatch(/the signature of admin1 does not verify/);
    const mallory = next({ administrators: [...governance.administrators, { name: 'mallory', approvalKey: toHex(ed25519.getPublicKey(rogue)) }] });
    for (const m of await send({ document: mallory, signatures: ['admin1', 'admin2'].map((a) => signGovernance(mallory, a, approvalKey(a))) })) expect(m).toMatch(/enrols|adds administrators without their credentials: mallory|not signed by their holders: mallory/);
    for (const m of await send(chain[1])) expect(m).toMatch(new RegExp(`governance v2 does not follow v${governance.version}`));
  });

  it('each signer recorded every refusal, and kept its governance and principals', async () => {
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const refused = auditEntries(tc, s).filter((e) => e.outcome === 'refused' && String(e.request).startsWith('change-')).map((e) => String(e.reason));
      for (const why of [/AddPrincipal needs approval/, /needs admin1's own approval/, /malformed governance document/, /does not follow/]) expect(refused.some((r) => why.test(r)), `${s}: ${why}`).toBe(true);
      expect((await signerRegistry(tc, s)).principals.map((p) => p.name)).not.toContain('mallory');
    }
  });
});
