// A resharing that could not run when a signer was removed (a holder was down) is retried by the
// gateway on its own once the holder is back (gateway/holder-repair.ts): the retired signer's
// share stops counting without an operator running `mpchsm key refresh`. A resharing left
// between its adopts is finished by the same sweep, without a gateway restart.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestCluster } from '../helpers/cluster.js';
import { appRequest, approve, auditEntries, createKey, publicKeyOf, signsAndVerifies, startWithSigners, stopWithSigners } from './helpers.js';
import { relayRounds } from '../../gateway/relay.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import { canonicalJson } from '../../contract/canonical.js';
import { isAlive } from '../../cli/processes.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';

let tc: TestCluster;
let signers: SignerClient[];
let keyId: string;

const holdersOf = (id: string): number[] => JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${id}.json`), 'utf8')).holders;

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 250))) if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
}

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
}, 240_000);

afterAll(() => stopWithSigners(tc, signers));

describe('holder repair', () => {
  it('a removal whose resharing fails because a holder is down leaves the key on its old holders', async () => {
    const signer2 = tc.cluster().signers.find((s) => s.name === 'signer2')!;
    process.kill(signer2.pid);
    await until('signer2 has stopped', () => !isAlive(signer2.pid), 10_000);
    const proposed = JSON.parse((await tc.mpchsm('signer', 'remove', 'signer3', '--as', 'admin1', '--dir', tc.dir, '--json')).stdout);
    const done = await approve(tc, proposed.Proposal.id, 'admin2');
    expect(done.Status).toBe('Executed');
    expect((done.Result as { Failed: { KeyId: string }[] }).Failed.map((f) => f.KeyId)).toEqual([keyId]);
    expect(holdersOf(keyId)).toEqual([1, 2, 3]);
  }, 120_000);

  it('is reshared by the gateway itself once the holder is back, recorded as the gateway’s', async () => {
    await tc.down();
    const config = path.join(tc.dir, 'gateway', 'config.json');
    writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), repairIntervalMs: 1000 }, null, 2));
    await tc.up();
    await until('the key is held by signers 1 and 2 only', () => holdersOf(keyId).join() === '1,2', 60_000);
    // The outcome entry follows the key record's update (its intent preceded the resharing).
    const repairs = () => auditEntries(tc, 'gateway').filter((e) => e.op === 'ReshareKey' && e.keyId === keyId && e.outcome === 'ok');
    await until('the repair is recorded', () => repairs().length > 0, 10_000);
    const repaired = repairs();
    expect(repaired).toMatchObject([{ principal: { name: 'gateway' }, detail: { repair: true }, output: 'key' }]);
    const publicKey = await publicKeyOf(tc, keyId);
    expect(await signsAndVerifies(tc, keyId, publicKey, 'ED25519_SHA_512', Buffer.from('after the repair'))).toBe(true);
  }, 120_000);

  it('a resharing left between its adopts is finished by the sweep, recorded as the gateway’s', async () => {
    // The rounds of a refresh run by hand as the gateway would (with admin1's request); only signer1 adopts before the "crash".
    const session = randomUUID();
    const holders = signers.slice(0, 2);
    const authority = { parameters: { KeyId: keyId }, evidence: await appRequest(tc, 'MpcHsm.RefreshKeyShares', { KeyId: keyId }, 'admin1') };
    const done = await relayRounds(holders, signerRoutes.reshare, { session, keyId, participants: [1, 2], threshold: 2, authority }, 2);
    const publicPackage = done[0]!.publicPackage;
    await holders[0]!.call(signerRoutes.reshare.adopt, { session, keyId, publicPackage });
    const journal = path.join(tc.dir, 'gateway', 'reshare-journal', `${keyId}.json`);
    writeFileSync(journal, JSON.stringify({ keyId, session, publicPackage, holders: [1, 2] }));
    await until('the sweep finished the resharing', () => !existsSync(journal), 60_000);
    expect(canonicalJson(JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${keyId}.json`), 'utf8')).frost)).toBe(canonicalJson(publicPackage));
    // The outcome entry is written after the journal is cleared (under load, a moment later).
    const resumed = () => auditEntries(tc, 'gateway').filter((e) => e.request === session && e.kind === 'event');
    await until('the resumed resharing is recorded', () => resumed().length > 0, 10_000);
    expect(resumed()).toMatchObject([{ op: 'ReshareKey', principal: { name: 'gateway' }, outcome: 'ok', detail: { resumed: true } }]);
    expect(await signsAndVerifies(tc, keyId, await publicKeyOf(tc, keyId), 'ED25519_SHA_512', Buffer.from('after the resumed resharing'))).toBe(true);
  }, 120_000);
});
