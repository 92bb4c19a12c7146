// A committed key whose gateway key file was deleted, against a real cluster: doctor names it,
// the gateway's next start recovers its record from the signers (which only read: their
// inventories are unchanged), the key is listed and signs again under the same public key, doctor
// is clean, and it is removed the usual way, by a ScheduleKeyDeletion approved by a quorum of
// administrators; a holder that cannot be asked at the time stays a holder. A key held committed
// by fewer signers than its threshold is not recovered, and doctor keeps naming it.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DescribeKeyCommand, ListKeysCommand, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { relayRounds } from '../../gateway/relay.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import type { TestCluster } from '../helpers/cluster.js';
import { appRequest, approved, auditEntries, createKey, kms, publicKeyOf, signsAndVerifies, startWithSigners, stopWithSigners } from '../policy-cluster/helpers.js';
import { killGateway, restartGateway, runDoctor } from './gateway-restart.js';

let tc: TestCluster;
let signers: SignerClient[];
const ED = { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' } as const;
const keyFile = (keyId: string) => path.join(tc.dir, 'gateway', 'keys', `${keyId}.json`);
const inventories = async () => Promise.all(signers.map(async (c) => (await c.call(signerRoutes.keys.inventory, {})).keys));
const listed = async () => (await kms(tc, 'admin1').send(new ListKeysCommand({}))).Keys!.map((k) => k.KeyId);

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
}, 120_000);

afterAll(() => stopWithSigners(tc, signers));

describe('a committed key whose gateway key file was deleted', () => {
  it('is named by doctor, recovered at the next start from the signers alone, signs again, and is deleted under governance', async () => {
    const keys = { ed: await createKey(tc, ED), ec: await createKey(tc, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }) };
    const publicKeys = { ed: await publicKeyOf(tc, keys.ed), ec: await publicKeyOf(tc, keys.ec) };
    const saved = JSON.parse(readFileSync(keyFile(keys.ed), 'utf8'));
    for (const id of Object.values(keys)) rmSync(keyFile(id));
    await killGateway(tc);
    const before = await inventories();

    let d = await runDoctor(tc);
    expect(d.code, d.text).toBe(1);
    for (const id of Object.values(keys)) {
      expect(d.text).toContain(`[gateway-key-missing] every signer holds key ${id} (committed), but the gateway has no record of it`);
      expect(d.text).toContain('restart the gateway (`mpchsm down`, then `mpchsm up`): its start recovers its record of the key from the signers');
    }

    await restartGateway(tc);
    // Recovery only reads at the signers.
    expect(await inventories()).toEqual(before);
    const recovered = JSON.parse(readFileSync(keyFile(keys.ed), 'utf8'));
    // The record as it was, but for what only the gateway knew (the description, tags) and the creation date, which is the signers'.
    expect({ ...recovered, creationDate: 0 }).toEqual({ ...saved, creationDate: 0 });
    expect(await listed()).toEqual(expect.arrayContaining(Object.values(keys)));
    expect(await publicKeyOf(tc, keys.ed)).toEqual(publicKeys.ed);
    expect(await publicKeyOf(tc, keys.ec)).toEqual(publicKeys.ec);
    expect(await signsAndVerifies(tc, keys.ed, publicKeys.ed, 'ED25519_SHA_512', Buffer.from('after recovery'))).toBe(true);
    expect(await signsAndVerifies(tc, keys.ec, publicKeys.ec, 'ECDSA_SHA_256', Buffer.from('after recovery'))).toBe(true);
    const audited = auditEntries(tc, 'gateway').filter((e) => e.op === 'RecoverKey');
    expect(audited.map((e) => e.keyId).sort()).toEqual(Object.values(keys).sort());
    for (const e of audited) {
      expect(e).toMatchObject({ outcome: 'ok', detail: { recovered: true } });
      expect((e.signers as { name: string }[]).map((s) => s.name)).toEqual(['signer1', 'signer2', 'signer3']);
    }
    d = await runDoctor(tc);
    expect(d.text).toContain('the inventories agree');
    expect(d.code, d.text).toBe(0);

    // Removed the usual way: one administrator's request is held as a proposal, a second one's approval executes it.
    await approved(tc, kms(tc, 'admin1').send(new ScheduleKeyDeletionCommand({ KeyId: keys.ed, PendingWindowInDays: 7 })), ['admin1', 'admin2']);
    expect((await kms(tc, 'admin1').send(new DescribeKeyCommand({ KeyId: keys.ed }))).KeyMetadata?.KeyState).toBe('PendingDeletion');
    for (const c of signers) expect((await c.call(signerRoutes.keys.inventory, { keyId: keys.ed })).keys[0]?.key?.state).toBe('PendingDeletion');

    const audit = await tc.mpchsmStatus('audit', 'verify', '--dir', tc.dir);
    expect(audit.code, audit.out).toBe(0);
  }, 240_000);

  it('with a holder that cannot be asked (stopped): recovered from the others, that holder kept among the holders', async () => {
    const keyId = await createKey(tc, ED);
    const publicKey = await publicKeyOf(tc, keyId);
    rmSync(keyFile(keyId));
    await killGateway(tc);
    const signer3 = tc.cluster().signers.find((s) => s.name === 'signer3')!.pid;
    process.kill(signer3, 'SIGSTOP');
    try {
      await restartGateway(tc);
    } finally {
      process.kill(signer3, 'SIGCONT');
    }
    expect(JSON.parse(readFileSync(keyFile(keyId), 'utf8')).holders).toEqual(signers.map((s) => s.id));
    const [entry] = auditEntries(tc, 'gateway').filter((e) => e.op === 'RecoverKey' && e.keyId === keyId);
    expect((entry!.signers as { name: string }[]).map((s) => s.name)).toEqual(['signer1', 'signer2']);
    expect(await signsAndVerifies(tc, keyId, publicKey, 'ED25519_SHA_512', Buffer.from('recovered without signer3'))).toBe(true);
    const d = await runDoctor(tc);
    expect(d.code, d.text).toBe(0);
  }, 120_000);

  it('held committed by fewer signers than its threshold: not recovered, and doctor keeps naming it', async () => {
    // A 2-of-3 key committed at signer1 alone, never recorded by the gateway (nor journaled).
    const creation = { keySpec: ED.KeySpec, keyUsage: ED.KeyUsage, origin: 'AWS_KMS', evidence: await appRequest(tc, 'TrentService.CreateKey', ED, 'admin1') };
    const keyId = randomUUID();
    await relayRounds(signers, signerRoutes.dkg, { session: randomUUID(), keyId, suite: 'ed25519', participants: signers.map((s) => s.id), threshold: 2, creation }, 2);
    expect(await signers[0]!.call(signerRoutes.keys.commit, { keyId })).toMatchObject({ committed: true });
    await killGateway(tc);
    await restartGateway(tc);
    // The pending shares at signer2 and signer3 were swept; signer1's committed one stays, and is not enough.
    expect((await Promise.all(signers.map((c) => c.call(signerRoutes.keys.inventory, { keyId })))).map((a) => a.keys[0]?.state ?? 'none')).toEqual(['committed', 'none', 'none']);
    expect(existsSync(keyFile(keyId))).toBe(false);
    expect(await listed()).not.toContain(keyId);
    expect(auditEntries(tc, 'gateway').filter((e) => e.op === 'RecoverKey' && e.keyId === keyId)).toEqual([]);
    const d = await runDoctor(tc);
    expect(d.code).toBe(1);
    expect(d.text).toContain(`[orphan-share] signer1 holds a share of key ${keyId} (committed) that the gateway has no record of`);
  }, 120_000);
});
