// Key creation as a journaled transaction, against a real cluster: the gateway is killed (-9) at
// random points inside CreateKey and restarted; every creation is then completed or rolled back
// at every signer, so `mpchsm doctor`'s inventory comparison is clean and `mpchsm audit verify`
// finds no tampering, and a CreateKey under a proposal interrupted at any point can be approved
// again and completes. Doctor names a deleted gateway key file and a deleted signer key record.
// And a gateway that lies cannot make a signer forget a committed key's share.
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateKeyCommand, DescribeKeyCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import type { CreationRecord } from '../../gateway/create-journal.js';
import { relayRounds } from '../../gateway/relay.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import { signApproval, type Proposal } from '../../policy/index.js';
import type { TestCluster } from '../helpers/cluster.js';
import { killGateway as killGatewayOf, restartGateway as restartGatewayOf, runDoctor as doctorOf } from './gateway-restart.js';
import { appRequest, approve, auditEntries, failure, kms, proposalIn, refusal, startWithSigners, stopWithSigners } from '../policy-cluster/helpers.js';

let tc: TestCluster;
let signers: SignerClient[];
/** Keys whose CreateKey was answered: none may ever be lost. */
const acknowledged: string[] = [];
const ED = { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' } as const;

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
}, 120_000);

afterAll(() => stopWithSigners(tc, signers));

const killGateway = () => killGatewayOf(tc);
const restartGateway = () => restartGatewayOf(tc);
const runDoctor = () => doctorOf(tc);
const auditVerify = () => tc.mpchsmStatus('audit', 'verify', '--dir', tc.dir);

async function expectInventoriesAgree(): Promise<void> {
  const d = await runDoctor();
  expect(d.text).toContain('the inventories agree');
  expect(d.code, d.text).toBe(0);
}

async function expectAcknowledgedKeys(): Promise<void> {
  for (const keyId of acknowledged) expect((await kms(tc, 'admin1').send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState, keyId).toBe('Enabled');
}

const gatewayFile = (...p: string[]) => path.join(tc.dir, 'gateway', ...p);
const storedProposal = (id: string): { proposal: Proposal; evidence?: unknown; status: string } =>
  JSON.parse(readFileSync(gatewayFile('proposals.json'), 'utf8')).proposals.find((p: { proposal: Proposal }) => p.proposal.id === id);
const approvalKey = (admin: string) => new Uint8Array(Buffer.from(readFileSync(path.join(tc.dir, 'principals', `${admin}.approval.key`), 'utf8').trim(), 'hex'));

/** The journal record the gateway writes before a creation's first keygen call. */
function journal(keyId: string, session: string, proposal?: string): void {
  const r: CreationRecord = { keyId, session, scheme: 'frost-ed25519', keySpec: ED.KeySpec, keyUsage: ED.KeyUsage, origin: 'AWS_KMS', description: '', creationDate: Date.now(), participants: signers.map((s) => s.id), threshold: 2, ...(proposal ? { proposal } : {}) };
  writeFileSync(gatewayFile('create-journal', `${keyId}.json`), JSON.stringify(r) + '\n');
}

const dkgStart = (keyId: string, session: string, creation: unknown) => ({ session, keyId, suite: 'ed25519', participants: signers.map((s) => s.id), threshold: 2, creation });
const holding = async (keyId: string) => (await Promise.all(signers.map((c) => c.call(signerRoutes.keys.inventory, { keyId })))).map((a) => a.keys[0]?.state ?? 'none');

describe('kill -9 of the gateway inside CreateKey', () => {
  it('at random points: after a restart every creation is completed or rolled back everywhere, and nothing acknowledged is lost', async () => {
    const specs = ['ECC_NIST_EDWARDS25519', 'ECC_NIST_P256', 'RSA_2048'] as const;
    // How long one CreateKey of each spec takes here: the kills land anywhere inside one.
    const took = new Map<string, number>();
    for (const spec of specs) {
      const started = Date.now();
      acknowledged.push((await kms(tc, 'admin1').send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!);
      took.set(spec, Date.now() - started);
    }
    let resumedBefore = 0;
    for (let trial = 0; trial < 9; trial++) {
      const spec = specs[trial % specs.length]!;
      const delay = Math.floor(Math.random() * took.get(spec)!);
      const creating = kms(tc, 'admin1')
        .send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: 'SIGN_VERIFY' }))
        .then((r) => r.KeyMetadata!.KeyId!, () => undefined);
      await sleep(delay);
      await killGateway();
      const answered = await creating;
      if (answered) acknowledged.push(answered);
      await restartGateway();
      const resumed = auditEntries(tc, 'gateway').filter((e) => e.op === 'CreateKey' && (e.detail as { resumed?: boolean } | undefined)?.resumed).length;
      console.log(`trial ${trial}: ${spec}, gateway killed after ${delay} ms; CreateKey ${answered ? 'answered' : 'interrupted'}; ${resumed - resumedBefore} creation(s) finished at the restart`);
      resumedBefore = resumed;
      await expectInventoriesAgree();
      await expectAcknowledgedKeys();
      // A crash is not tampering: what the restart finished closes what the crash left open.
      const audit = await auditVerify();
      expect(audit.code, `trial ${trial}:\n${audit.out}`).toBe(0);
    }
  }, 300_000);
});

describe('the gateway lies', () => {
  it('a committed key is not forgotten on its word; a pending one is, and gives back the request that made it', async () => {
    const committed = (await kms(tc, 'admin1').send(new CreateKeyCommand(ED))).KeyMetadata!.KeyId!;
    acknowledged.push(committed);
    expect(await holding(committed)).toEqual(['committed', 'committed', 'committed']);
    for (const c of signers) expect((await refusal(c.call(signerRoutes.keys.forget, { keyId: committed }))).message).toMatch(/was committed: it is in use; keys are deleted by an approved ScheduleKeyDeletion/);
    await expectAcknowledgedKeys();

    // A key generation the gateway never commits: pending at every signer, then rolled back.
    const creation = { keySpec: ED.KeySpec, keyUsage: ED.KeyUsage, origin: 'AWS_KMS', evidence: await appRequest(tc, 'TrentService.CreateKey', ED, 'admin1') };
    const pending = randomUUID();
    await relayRounds(signers, signerRoutes.dkg, dkgStart(pending, randomUUID(), creation), 2);
    expect(await holding(pending)).toEqual(['pending', 'pending', 'pending']);
    // While it is pending, its request makes no second key.
    for (const c of signers) expect((await refusal(c.call(signerRoutes.dkg.start, dkgStart(randomUUID(), randomUUID(), creation)))).message).toMatch(/this signed request was already used/);
    for (const c of signers) expect(await c.call(signerRoutes.keys.forget, { keyId: pending })).toMatchObject({ existed: true });
    // Forgotten, it gives the request back: the same creation can be made again.
    const again = randomUUID();
    await relayRounds(signers, signerRoutes.dkg, dkgStart(again, randomUUID(), creation), 2);
    // Left pending, with no journal record (as if it were lost): doctor names the orphan share at every signer.
    const d = await runDoctor();
    expect(d.code).toBe(1);
    for (const name of ['signer1', 'signer2', 'signer3']) expect(d.text).toContain(`[orphan-share] ${name} holds a share of key ${again} (pending) that the gateway has no record of`);
    // The gateway's next start sweeps pending shares: one whose key it has no record of is forgotten.
    await killGateway();
    await restartGateway();
    expect(await holding(again)).toEqual(['none', 'none', 'none']);
    await expectInventoriesAgree();
  }, 120_000);
});

describe('doctor compares key inventories', () => {
  it('names a deleted gateway key file and a deleted signer key record, and exits 1', async () => {
    const [keyId] = acknowledged;
    const file = gatewayFile('keys', `${keyId}.json`);
    const saved = readFileSync(file);
    rmSync(file);
    let d = await runDoctor();
    expect(d.code).toBe(1);
    expect(d.text).toContain(`[gateway-key-missing] every signer holds key ${keyId} (committed), but the gateway has no record of it: its key file ${file} was deleted or lost`);
    writeFileSync(file, saved);

    const store = path.join(tc.dir, 'signers', 'signer2', 'store');
    const share = path.join(store, `key.${keyId}.rec`);
    const policy = path.join(store, `policy.key.${keyId}.rec`);
    const [savedShare, savedPolicy] = [readFileSync(share), readFileSync(policy)];
    rmSync(share);
    d = await runDoctor();
    expect(d.code).toBe(1);
    expect(d.text).toContain(`[signer-share-missing] signer2 keeps key ${keyId}'s policy record but not its share`);
    rmSync(policy);
    d = await runDoctor();
    // signer2's guard still has the policy record in memory until it restarts; its store does not.
    expect(d.code).toBe(1);
    expect(d.text).toMatch(/\[signer-(key|share)-missing\] signer2/);
    writeFileSync(share, savedShare, { mode: 0o600 });
    writeFileSync(policy, savedPolicy, { mode: 0o600 });
  }, 60_000);
});

describe('an interrupted CreateKey under a proposal', () => {
  beforeAll(async () => {
    // CreateKey needs two administrators from now on.
    const edit = path.join(tc.dir, 'create-quorum.json');
    writeFileSync(edit, JSON.stringify({ quorum: { 'kms:CreateKey': 2 } }));
    const out = JSON.parse((await tc.mpchsm('governance', 'propose', '--file', edit, '--as', 'admin1', '--dir', tc.dir, '--json')).stdout);
    expect((await approve(tc, out.Proposal.id, 'admin3')).Status).toBe('Executed');
  }, 60_000);

  const propose = async (spec: string = ED.KeySpec) => proposalIn(await failure(kms(tc, 'admin1').send(new CreateKeyCommand({ KeySpec: spec as 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }))));
  const creationFor = (id: string) => {
    const s = storedProposal(id);
    return { keySpec: ED.KeySpec, keyUsage: ED.KeyUsage, origin: 'AWS_KMS', evidence: s.evidence, proposal: s.proposal, approvals: [signApproval(s.proposal, 'admin2', approvalKey('admin2'))] };
  };

  it('killed after every signer started its keygen: rolled back at the restart, then approved again and completed', async () => {
    const id = await propose();
    const [keyId, session] = [randomUUID(), randomUUID()];
    journal(keyId, session, id);
    // What the gateway does on the executing approval, up to the crash: each signer takes the proposal for this key.
    for (const c of signers) await c.call(signerRoutes.dkg.start, dkgStart(keyId, session, creationFor(id)));
    await killGateway();
    await restartGateway();
    expect(await holding(keyId)).toEqual(['none', 'none', 'none']);
    const out = await approve(tc, id, 'admin2');
    expect(out.Status).toBe('Executed');
    acknowledged.push((out.Result as { KeyMetadata: { KeyId: string } }).KeyMetadata.KeyId);
    await expectAcknowledgedKeys();
    await expectInventoriesAgree();
  }, 60_000);

  it('killed after every signer stored its share: completed at the restart, the proposal executed', async () => {
    const id = await propose();
    const [keyId, session] = [randomUUID(), randomUUID()];
    journal(keyId, session, id);
    await relayRounds(signers, signerRoutes.dkg, dkgStart(keyId, session, creationFor(id)), 2);
    expect(await holding(keyId)).toEqual(['pending', 'pending', 'pending']);
    await killGateway();
    await restartGateway();
    expect(await holding(keyId)).toEqual(['committed', 'committed', 'committed']);
    expect(storedProposal(id).status).toBe('executed');
    acknowledged.push(keyId);
    await expectAcknowledgedKeys();
    await expectInventoriesAgree();
  }, 60_000);

  it('killed at random points of the approval that executes it: approved again if need be, it completes', async () => {
    for (let trial = 0; trial < 2; trial++) {
      const id = await propose('RSA_2048');
      const delay = 500 + Math.floor(Math.random() * 8000);
      const approving = approve(tc, id, 'admin2').catch(() => undefined);
      await sleep(delay);
      await killGateway();
      await approving;
      await restartGateway();
      const status = storedProposal(id).status;
      console.log(`proposal trial ${trial}: gateway killed after ${delay} ms; proposal ${status} after the restart`);
      if (status === 'open') expect((await approve(tc, id, 'admin2')).Status).toBe('Executed');
      else expect(status).toBe('executed');
      await expectInventoriesAgree();
      await expectAcknowledgedKeys();
    }
  }, 120_000);
});
