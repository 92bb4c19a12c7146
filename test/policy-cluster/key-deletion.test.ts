// A scheduled key deletion is carried out when its window ends (as AWS KMS does), on a real
// cluster: before then every signer refuses to destroy its share, whatever the gateway asks;
// restarted with every process's clock eight days on (libfaketime), the gateway's sweep has
// each holder destroy its share and forgets the key, its alias and its policy.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateAliasCommand, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignerClient } from '../../gateway/signer-client.js';
import { mpchsmBin, repoRoot, type TestCluster } from '../helpers/cluster.js';
import { approved, auditEntries, createKey, kms, refusal, signerRecord, startWithSigners, stopWithSigners } from './helpers.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';

const run = promisify(execFile);
const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

let tc: TestCluster;
let signers: SignerClient[];
const keys: Record<'ed' | 'rsa' | 'kept', string> = { ed: '', rsa: '', kept: '' };
const keyFile = (id: string) => path.join(tc.dir, 'gateway', 'keys', `${id}.json`);
const stored = (signer: string, record: string) => signerRecord(tc, signer, async (s) => (await s.get(record)) !== undefined);

describe.skipIf(!existsSync(FAKETIME))('ScheduleKeyDeletion, when the window ends', () => {
  beforeAll(async () => {
    ({ tc, signers } = await startWithSigners());
    keys.ed = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
    keys.rsa = await createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
    keys.kept = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
    await kms(tc, 'admin1').send(new CreateAliasCommand({ AliasName: 'alias/doomed', TargetKeyId: keys.ed }));
    for (const id of [keys.ed, keys.rsa]) await approved(tc, kms(tc, 'admin1').send(new ScheduleKeyDeletionCommand({ KeyId: id, PendingWindowInDays: 7 })), ['admin1', 'admin2']);
  }, 240_000);

  afterAll(() => stopWithSigners(tc, signers));

  it('before the window ends, every signer refuses to destroy a share, and a key not pending deletion is never destroyed', async () => {
    for (const c of signers) {
      expect((await refusal(c.call(signerRoutes.keys.destroy, { keyId: keys.ed }))).message).toContain('is pending deletion until');
      expect((await refusal(c.call(signerRoutes.keys.destroy, { keyId: keys.kept }))).message).toContain('is Enabled here, not pending deletion');
    }
    expect(await stored('signer1', `key.${keys.ed}`)).toBe(true);
  }, 60_000);

  it('eight days on, every holder destroys its shares and the gateway forgets the keys', async () => {
    await tc.down();
    const env = { ...process.env, LD_PRELOAD: FAKETIME, FAKETIME: '+8d', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
    await run(process.execPath, [mpchsmBin, 'up', '--dir', tc.dir, '--detach'], { cwd: repoRoot, env, timeout: 120_000 });
    for (let i = 0; i < 100 && (existsSync(keyFile(keys.ed)) || existsSync(keyFile(keys.rsa))); i++) await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(keyFile(keys.ed))).toBe(false);
    expect(existsSync(keyFile(keys.rsa))).toBe(false);
    expect(existsSync(keyFile(keys.kept))).toBe(true);
    for (const s of ['signer1', 'signer2', 'signer3']) {
      for (const id of [keys.ed, keys.rsa]) {
        expect(await stored(s, `key.${id}`), `${s}'s share of ${id}`).toBe(false);
        expect(await stored(s, `policy.key.${id}`), `${s}'s policy record of ${id}`).toBe(false);
      }
      expect(await stored(s, `key.${keys.kept}`)).toBe(true);
      expect(auditEntries(tc, s).filter((e) => e.op === 'keys.destroy' && e.outcome === 'ok').map((e) => e.keyId)).toEqual(expect.arrayContaining([keys.ed, keys.rsa]));
      const aliases = await signerRecord(tc, s, async (st) => JSON.parse(Buffer.from((await st.get('policy.aliases'))!).toString('utf8')) as Record<string, string>);
      expect(aliases['alias/doomed']).toBeUndefined();
    }
    expect(auditEntries(tc, 'gateway').filter((e) => e.op === 'DeleteKey').map((e) => e.keyId)).toEqual(expect.arrayContaining([keys.ed, keys.rsa]));
  }, 180_000);
});
