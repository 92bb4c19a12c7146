// The approval console in a real browser: headless Chromium (Debian's, driven by playwright-core)
// with a CDP virtual authenticator. An administrator makes a credential on the console's enrol
// page and the governance quorum enrols it (`mpchsm governance propose`, `mpchsm approve`); an
// application's Sign with a key that needs one approval per signature is refused and waits in
// the console; the administrator signs in with the security key, approves it in the page, and
// the Sign succeeds. A governance change is approved in the page with the key, which completes
// its quorum and executes it; another is refused in the page, and `mpchsm refuse` refuses a
// third: neither can be approved afterwards. Then the test plays a compromised gateway against
// the signers: a signature approval, and a governance approval, replayed or altered, is refused
// by every signer. Screenshots go to test-output/console/.
import { createHash, createPrivateKey, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SignCommand } from '@aws-sdk/client-kms';
import { chromium, type Browser, type CDPSession, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { approvalDigest, governanceDigest, signApproval, signGovernance, type GovernanceDocument, type Proposal, type WebAuthnCredential } from '../../policy/index.js';
import { toHex } from '../../contract/bytes.js';
import { SoftAuthenticator } from './authenticator.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import { repoRoot, startCluster, type TestCluster } from '../helpers/cluster.js';
import { appRequest, approve, auditEntries, createKey, failure, gatewayCall, gatewayIdentity, kms, perSignaturePolicy, publicKeyOf, refusal, refusedEverywhere, signerClients, signUse } from '../policy-cluster/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const shots = path.join(repoRoot, 'test-output', 'console');

let tc: TestCluster | undefined;
let signers: SignerClient[] = [];
let browser: Browser | undefined;
let page: Page;
let origin: string;
let keyId: string;
let cdp: CDPSession;
let authenticatorId: string;
/** The governance change proposed in the first test, approved in the page in the second. */
let pendingId: string;

const shot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
const status = () => page.locator('#status');
const message = new TextEncoder().encode('release-2.0.0.tar.gz contents');
const sign = (m = message) => kms(tc!, 'app').send(new SignCommand({ KeyId: keyId, Message: m, SigningAlgorithm: 'ED25519_SHA_512' }));
const digestOf = (m: Uint8Array) => createHash('sha512').update(m).digest('hex');

describe.skipIf(!existsSync(CHROMIUM))(`the approval console with a security key (needs ${CHROMIUM}: apt-get install chromium)`, () => {
  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    tc = await startCluster();
    // `up --console` serves it on loopback, named localhost (a WebAuthn origin without HTTPS);
    // it sets the gateway's consoleListen for the run, as config.json would.
    await tc.down();
    await tc.mpchsm('up', '--dir', tc.dir, '--port', String(tc.port), '--detach', '--console');
    origin = new URL(tc.cluster().gateway.console!).origin;
    expect(origin).toBe(`http://localhost:${tc.port + 200}`);
    expect((await tc.mpchsm('status', '--dir', tc.dir)).stdout).toContain(`approval console ${origin}/`);
    signers = signerClients(tc, await gatewayIdentity(tc));
    keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY', Description: 'release signing', Policy: perSignaturePolicy('111122223333', 1) });

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext();
    page = await context.newPage();
    cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true } }));
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    for (const c of signers) c.close();
    await tc?.destroy();
  }, 60_000);

  it('enrols a security key through governance, then approves a signature with it in the page', async () => {
    await page.goto(`${origin}/enrol`);
    await page.fill('#name', 'admin1');
    await page.click('#enrol');
    await expect.poll(() => page.locator('#credential').textContent()).toContain('"webauthn"');
    await shot('1-enrol');
    const edit = path.join(tc!.dir, 'admin1-webauthn.json');
    writeFileSync(edit, (await page.locator('#credential').textContent())!);
    const credentialId = JSON.parse(readFileSync(edit, 'utf8')).webauthn.admin1[0].id as string;

    // Not enrolled yet: the key cannot sign in.
    await page.goto(origin);
    await page.click('#signin');
    await expect.poll(() => status().textContent()).toMatch(/sign-in refused: credential .* is not enrolled/);

    const proposed = JSON.parse((await tc!.mpchsm('governance', 'propose', '--file', edit, '--as', 'admin1', '--dir', tc!.dir, '--json')).stdout) as { Proposal: { id: string }; Status: string };
    expect(proposed.Status).toBe('Pending');
    expect((await approve(tc!, proposed.Proposal.id, 'admin2')).Status).toBe('Executed');

    // A signature that needs an approval waits for it, and the console lists it.
    const refused = await failure(sign());
    expect(refused.message).toMatch(/needs approval by 1 distinct administrators; it has 0/);
    // The client may name what it signs, for the approver to see (its word, beside the digest).
    const named = await gatewayCall(tc!, 'app', 'MpcHsm.RequestSignApproval', { KeyId: keyId, SigningAlgorithm: 'ED25519_SHA_512', Digest: digestOf(message), FileName: 'release-2.0.0.tar.gz', CertificateSubject: 'CN=Example Release Signing, O=Example' });
    expect(named).toMatchObject({ status: 200, body: { Required: 1 } });
    // A pending governance change, for its page: before and after.
    writeFileSync(path.join(tc!.dir, 'quorum.json'), JSON.stringify({ quorum: { 'kms:DisableKey': 3 } }));
    const pending = JSON.parse((await tc!.mpchsm('governance', 'propose', '--file', path.join(tc!.dir, 'quorum.json'), '--as', 'admin2', '--dir', tc!.dir, '--json')).stdout) as { Proposal: { id: string } };
    pendingId = pending.Proposal.id;

    await page.goto(origin);
    await shot('2-sign-in');
    await page.click('#signin');
    await expect.poll(() => page.locator('#who').textContent().catch(() => null)).toBe('admin1');
    await expect(page.locator('#signs').textContent()).resolves.toContain('app');
    await expect(page.locator('#proposals').textContent()).resolves.toContain(pending.Proposal.id);
    await shot('3-pending');

    await page.click(`a[href="/proposal/${pending.Proposal.id}"]`);
    await expect(page.locator('#change').textContent()).resolves.toContain('"kms:DisableKey": 3');
    await shot('4-governance-change');

    await page.goto(origin);
    await page.click('#signs a');
    await expect(page.locator('#digest').textContent()).resolves.toBe(digestOf(message));
    await expect(page.locator('#request').textContent()).resolves.toContain('release signing');
    await expect(page.locator('#file').textContent()).resolves.toBe('release-2.0.0.tar.gz');
    await expect(page.locator('#subject').textContent()).resolves.toBe('CN=Example Release Signing, O=Example');
    await shot('5-signature-request');
    await page.click('#approve');
    await expect.poll(() => status().textContent()).toBe('Approved: 1 of 1 approvals');
    await shot('6-approved');

    const approval = JSON.parse(readFileSync(path.join(tc!.dir, 'gateway', 'proposals.json'), 'utf8')).signApprovals.find((a: { digest: string }) => a.digest === digestOf(message));
    expect(approval).toMatchObject({ approver: 'admin1', webauthn: { credentialId } });
    writeFileSync(path.join(tc!.dir, 'used-approval.json'), JSON.stringify(approval));

    const signed = await sign();
    const { verify, createPublicKey } = await import('node:crypto');
    expect(verify(null, message, createPublicKey({ key: Buffer.from(await publicKeyOf(tc!, keyId)), format: 'der', type: 'spki' }), signed.Signature!)).toBe(true);
    // Single use: the next signature of the same file needs a new approval.
    expect((await failure(sign())).message).toMatch(/it has 0/);
    // Refused in the page: the request leaves the list, and the gateway records who refused it.
    await page.goto(origin);
    await page.click('#signs a');
    await page.click('#refuse');
    await expect.poll(() => status().textContent()).toBe('Refused');
    await page.goto(origin);
    expect(await page.locator('#signs a').count()).toBe(0);
    expect(auditEntries(tc!, 'gateway').find((e) => e.op === 'console.RefuseSign')).toMatchObject({ outcome: 'ok', principal: { name: 'admin1' } });
  }, 180_000);

  it('approves a governance change with the security key in the page: the quorum complete, it is executed, and audited', async () => {
    await page.goto(`${origin}/proposal/${pendingId}`);
    await expect(page.locator('#state').textContent()).resolves.toBe('open');
    await page.click('#approve-proposal');
    await expect.poll(() => status().textContent()).toBe('Executed: 2 of 2 approvals');
    await page.reload();
    await expect(page.locator('#state').textContent()).resolves.toBe('executed (ok)');
    await shot('7-governance-approved');
    // The chain link carries the assertion, which each signer verified itself and applied.
    const chain = JSON.parse(readFileSync(path.join(tc!.dir, 'gateway', 'governance.json'), 'utf8')).chain as { document: GovernanceDocument; signatures: { admin: string; webauthn?: unknown }[] }[];
    expect(chain.at(-1)!.document.quorum['kms:DisableKey']).toBe(3);
    expect(chain.at(-1)!.signatures.find((x) => x.admin === 'admin1')?.webauthn).toBeDefined();
    for (const c of signers) {
      const applied = auditEntries(tc!, c.name).filter((e) => e.op === 'policy.UpdateGovernance').at(-1) as { outcome: string; policy: { approvals: string[] } };
      expect(applied).toMatchObject({ outcome: 'ok', policy: { approvals: expect.arrayContaining(['admin1', 'admin2']) } });
    }
    // The gateway's entry names the approver, the console, and the operation the approval ran.
    const entry = auditEntries(tc!, 'gateway').find((e) => (e.detail as { via?: string } | undefined)?.via === 'console MpcHsm.Approve' && e.op === 'UpdateGovernance');
    expect(entry).toMatchObject({ outcome: 'ok', principal: { name: 'admin1' }, detail: { proposal: pendingId } });
    // The signature approved in the first test is in the gateway's audit as admin1's too.
    expect(auditEntries(tc!, 'gateway').find((e) => (e.detail as { via?: string } | undefined)?.via === 'console MpcHsm.ApproveSign')).toMatchObject({ outcome: 'ok', principal: { name: 'admin1' } });
  }, 120_000);

  it('refuses proposals, in the page with the security key and with mpchsm refuse: refused ones are never approved', async () => {
    const propose = async (quorum: number) => {
      writeFileSync(path.join(tc!.dir, 'quorum.json'), JSON.stringify({ quorum: { 'kms:DisableKey': quorum } }));
      return (JSON.parse((await tc!.mpchsm('governance', 'propose', '--file', path.join(tc!.dir, 'quorum.json'), '--as', 'admin2', '--dir', tc!.dir, '--json')).stdout) as { Proposal: { id: string } }).Proposal.id;
    };
    const inPage = await propose(1);
    await page.goto(origin);
    await page.click(`a[href="/proposal/${inPage}"]`);
    await shot('8-proposal-to-refuse');
    await page.click('#refuse-proposal');
    await expect.poll(() => status().textContent()).toBe('Refused: 1 of 2 approvals');
    await page.reload();
    await expect(page.locator('#state').textContent()).resolves.toBe('refused (refused by admin1)');
    await expect(page.locator('#approve-proposal').count()).resolves.toBe(0);
    await shot('9-proposal-refused');
    const rejected = await tc!.mpchsmStatus('approve', inPage, '--as', 'admin3', '--dir', tc!.dir);
    expect(rejected.code).not.toBe(0);
    expect(rejected.out).toMatch(/is refused \(refused by admin1\); nothing to approve/);
    // Not by the CLI either, nor by the API behind it: the gateway keeps it closed.
    const id = await propose(2);
    const refused = JSON.parse((await tc!.mpchsm('refuse', id, '--as', 'admin3', '--dir', tc!.dir, '--json')).stdout) as { Status: string; Outcome: string };
    expect(refused).toMatchObject({ Status: 'Refused', Outcome: 'refused by admin3' });
    const again = await gatewayCall(tc!, 'admin1', 'MpcHsm.Approve', { ProposalId: id, Approval: { proposalId: id, admin: 'admin1', signature: '00'.repeat(64) } });
    expect(again.body).toMatchObject({ __type: 'KMSInvalidStateException', message: expect.stringMatching(/is refused \(refused by admin3\)/) });
    // A refusal signed with another's key, or an approval passed off as a refusal, closes nothing.
    const open = await propose(2);
    const forged = await gatewayCall(tc!, 'admin3', 'MpcHsm.Refuse', { ProposalId: open, Refusal: { proposalId: open, admin: 'admin3', signature: '00'.repeat(64) } });
    expect(forged.body).toMatchObject({ __type: 'AccessDeniedException', message: expect.stringMatching(/the refusal by admin3 does not verify/) });
    const gatewayRefusals = auditEntries(tc!, 'gateway').filter((e) => e.op === 'MpcHsm.Refuse');
    expect(gatewayRefusals.filter((e) => e.outcome === 'ok').map((e) => (e.principal as { name: string }).name)).toEqual(['admin1', 'admin3']);
    expect((await gatewayCall(tc!, 'admin1', 'MpcHsm.GetProposal', { ProposalId: open })).body.Status).toBe('Pending');
  }, 180_000);

  it('a compromised gateway can neither replay nor alter a security key approval: the signers refuse', async () => {
    const approval = JSON.parse(readFileSync(path.join(tc!.dir, 'used-approval.json'), 'utf8'));
    const commit = async (c: SignerClient, m: Uint8Array, signApprovals: unknown[]) => {
      const body = { KeyId: keyId, Message: Buffer.from(m).toString('base64'), SigningAlgorithm: 'ED25519_SHA_512' };
      const use = signUse(m, await appRequest(tc!, 'TrentService.Sign', body), { signApprovals });
      return (await refusal(c.call(signerRoutes.frost.commit, { session: randomUUID(), keyId, signers: signers.map((s) => s.id), use }))).message;
    };
    // Replayed: the signers that made the signature recorded the credential's counter (and the nonce).
    const made = auditEntries(tc!, 'gateway').find((e) => e.op === 'Sign' && e.keyId === keyId && e.outcome === 'ok')!.signers as { name: string }[];
    for (const c of signers.filter((s) => made.some((x) => x.name === s.name))) expect(await commit(c, message, [approval])).toMatch(/by admin1 \(WebAuthn\) does not verify: its signature counter \d+ is not above \d+/);

    // Altered: the statement moved to another file, or the counter raised past the recorded one.
    const other = new TextEncoder().encode('malware.exe contents');
    const moved = { ...approval, digest: digestOf(other) };
    const authData = Buffer.from(approval.webauthn.authenticatorData, 'base64url');
    authData.writeUInt32BE(authData.readUInt32BE(33) + 1000, 33);
    const raised = { ...approval, webauthn: { ...approval.webauthn, authenticatorData: authData.toString('base64url') } };
    for (const c of signers) {
      expect(await commit(c, other, [moved])).toMatch(/\(WebAuthn\) does not verify: its challenge is not this statement/);
      expect(await commit(c, message, [raised])).toMatch(/\(WebAuthn\) does not verify: its signature does not verify/);
    }
    // Refused in the console: the request leaves the list (the client's Sign stays refused).
    const unwanted = new TextEncoder().encode('unreviewed build');
    expect((await failure(sign(unwanted))).name).toBe('AccessDeniedException');
    await page.goto(origin);
    await page.click(`#signs a`);
    await expect(page.locator('#digest').textContent()).resolves.toBe(digestOf(unwanted));
    await page.click('#refuse');
    await expect.poll(() => status().textContent()).toBe('Refused');
    await page.goto(origin);
    await expect(page.locator('#signs').textContent()).resolves.not.toContain(digestOf(unwanted).slice(0, 16));
    // The CLI's approval keys still work beside the security key.
    await tc!.mpchsm('approve-sign', '--key', keyId, '--digest', digestOf(message), '--algorithm', 'ED25519_SHA_512', '--as', 'admin2', '--dir', tc!.dir);
    expect((await sign()).Signature!.length).toBe(64);
  }, 120_000);
  it('a compromised gateway can neither replay nor alter a security key approval of a governance version or a proposal: the signers refuse', async () => {
    const chain = JSON.parse(readFileSync(path.join(tc!.dir, 'gateway', 'governance.json'), 'utf8')).chain as { document: GovernanceDocument; signatures: { admin: string; webauthn?: { authenticatorData: string } }[] }[];
    const current = chain.at(-1)!.document;
    const used = chain.at(-1)!.signatures.find((x) => x.admin === 'admin1')!.webauthn!;
    // What the gateway would like: one approval short of its quorum, admin2's alone.
    const next: GovernanceDocument = { ...current, version: current.version + 1, previous: toHex(governanceDigest(current)), quorum: { ...current.quorum, 'kms:DisableKey': 1 } };
    const approvalKey = (admin: string) => new Uint8Array(Buffer.from(readFileSync(path.join(tc!.dir, 'principals', `${admin}.approval.key`), 'utf8').trim(), 'hex'));
    const change = (admin1: object, doc = next) => ({ principal: 'admin2', operation: 'UpdateGovernance', parameters: { Governance: { document: doc, signatures: [signGovernance(doc, 'admin2', approvalKey('admin2')), { admin: 'admin1', ...admin1 }] }, Principals: [] } });
    const counterOf = (w: { authenticatorData: string }) => Buffer.from(w.authenticatorData, 'base64url').readUInt32BE(33);
    // Replayed: admin1's assertion over the version in force.
    for (const m of await refusedEverywhere(signers, keyId, change({ webauthn: used }))) expect(m).toMatch(/the approval by admin1 \(WebAuthn\) does not verify: its challenge is not this statement/);
    // A clone of admin1's key: the test reads the virtual authenticator's private key, as a clone would hold it.
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    const enrolled = current.administrators.find((a) => a.name === 'admin1')!.webauthn![0]! as WebAuthnCredential;
    const held = credentials.find((c) => Buffer.from(c.credentialId, 'base64').toString('base64url') === enrolled.id)!;
    const clone = new SoftAuthenticator(enrolled.alg, enrolled.rpId, enrolled.origin, { credential: enrolled, secret: createPrivateKey({ key: Buffer.from(held.privateKey, 'base64'), format: 'der', type: 'pkcs8' }) });
    // Altered: an assertion over this version with its counter raised, or carried to another document.
    const fresh = clone.assert(governanceDigest(next), { counter: counterOf(used) + 5 });
    const raised = Buffer.from(fresh.authenticatorData, 'base64url');
    raised.writeUInt32BE(counterOf(fresh) + 1000, 33);
    for (const m of await refusedEverywhere(signers, keyId, change({ webauthn: { ...fresh, authenticatorData: raised.toString('base64url') } }))) expect(m).toMatch(/\(WebAuthn\) does not verify: its signature does not verify/);
    const other: GovernanceDocument = { ...next, quorum: { ...next.quorum, 'kms:ScheduleKeyDeletion': 1 } };
    for (const m of await refusedEverywhere(signers, keyId, change({ webauthn: fresh }, other))) expect(m).toMatch(/\(WebAuthn\) does not verify: its challenge is not this statement/);
    // Made over the right version, with a counter the signers already passed: a cloned key, or one replayed from before.
    const stale = clone.assert(governanceDigest(next), { counter: counterOf(used) });
    for (const m of await refusedEverywhere(signers, keyId, change({ webauthn: stale }))) expect(m).toMatch(/\(WebAuthn\) does not verify: its signature counter \d+ is not above \d+/);
    // The same for a proposal's approval (here a key's deletion, 2 of 3): replayed, or with a passed counter.
    const proposal: Proposal = { id: `p-${randomUUID().slice(0, 16)}`, clusterId: current.clusterId, operation: 'kms:ScheduleKeyDeletion', parameters: { KeyId: keyId, PendingWindowInDays: 7 }, proposer: 'admin2', createdAt: Date.now(), expiresAt: Date.now() + 3600_000, governanceVersion: current.version };
    const deletion = (webauthn: object) => ({ keyId, operation: 'ScheduleKeyDeletion', parameters: proposal.parameters, proposal, approvals: [signApproval(proposal, 'admin2', approvalKey('admin2')), { proposalId: proposal.id, admin: 'admin1', webauthn }] });
    for (const m of await refusedEverywhere(signers, keyId, deletion(used))) expect(m).toMatch(/the approval by admin1 \(WebAuthn\) does not verify: its challenge is not this statement/);
    for (const m of await refusedEverywhere(signers, keyId, deletion(clone.assert(approvalDigest(proposal), { counter: counterOf(used) })))) expect(m).toMatch(/the approval by admin1 \(WebAuthn\) does not verify: its signature counter \d+ is not above \d+/);
    // (The same clone with a counter above would pass for the key itself: only the counter tells them apart.)
    expect(current.quorum['kms:DisableKey']).toBe(3);
  }, 120_000);
});
