// Per-signer backups on a real cluster, through the `mpchsm` command (shared/CONTRACT.md,
// "Operations"): EC P-256, Ed25519, RSA-2048 and a symmetric key (rotated once); three custodians; each signer
// backed up (while running) to its own custodian; `backup verify` checks every share against its
// key's public commitments, alone and against the running cluster. A backup whose sealed
// payload or header was altered is named tampered; one verified against another cluster, or with
// another custodian's key, is named as such; after `mpchsm key refresh` the refreshed key's
// backed-up share is named stale — against the cluster's directory and from another host (the
// signers' signed reports, relayed by the gateway). Each of these exits non-zero.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateKeyCommand, RotateKeyOnDemandCommand, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { mpchsmIn } from './run.js';
import { kmsClient } from '../kms/kms-client.js';
import { openCustodian } from '../../cli/backup/custodian.js';
import { fromHex } from '../../contract/bytes.js';
import { decodeRecord, encodeRecord } from '../../signers/node/key-records.js';
import type { DkgKeyShare } from '../../signers/protocols/dkg.js';
import { openBackup, parseBackup, sealBackup } from '../../cli/backup/format.js';

const LONG = 300_000;
const PASS = 'custodian passphrase for tests';
const SIGNERS = ['signer1', 'signer2', 'signer3'];

let tc: TestCluster;
let other: TestCluster | undefined;
let work: string;
const keys: Record<string, string> = {};
const backupOf = (signer: string) => path.join(work, `${signer}.backup`);
const custodianDir = (i: number) => path.join(work, `custodian${i}`);
const operatorSecret = (signer: string) => readFileSync(path.join(tc.dir, 'operators', `${signer}.secret`), 'utf8');

async function verify(file: string, custodian: number, ...more: string[]) {
  const r = await mpchsmIn(PASS, 'backup', 'verify', file, '--custodian-dir', custodianDir(custodian), '--json', ...more);
  return { code: r.code, out: JSON.parse(r.stdout.trim() || '{}') as { Verdict: string; Problem?: string; Shares?: { KeyId: string; Status: string; Reason?: string }[] }, stderr: r.stderr };
}

/** `--genesis … --as auditor --dir A` of an auditor on another host: copies of its env file and the genesis only. */
function fromElsewhere(): string[] {
  const asker = path.join(work, 'asker');
  mkdirSync(asker, { recursive: true });
  copyFileSync(path.join(tc.dir, 'principals', 'auditor.env'), path.join(asker, 'auditor.env'));
  copyFileSync(path.join(tc.dir, 'genesis.json'), path.join(asker, 'genesis.json'));
  return ['--genesis', path.join(asker, 'genesis.json'), '--as', 'auditor', '--dir', asker];
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-test-backup-'));
  tc = await startCluster();
  const admin: KMSClient = kmsClient(tc, 'admin1');
  keys.ec = (await admin.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
  keys.ed = (await admin.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
  keys.rsa = (await admin.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
  keys.sym = (await admin.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
  // A rotated material is its own share record (material.ID.N): backed up and verified too.
  await admin.send(new RotateKeyOnDemandCommand({ KeyId: keys.sym }));
  for (const i of [1, 2, 3]) {
    const r = await mpchsmIn(PASS, 'custodian', 'init', '--dir', custodianDir(i), '--name', `custodian${i}`, '--json');
    expect(r.code, r.stderr).toBe(0);
  }
}, LONG);

afterAll(async () => {
  await other?.destroy();
  await tc?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
}, LONG);

describe('mpchsm signer backup and backup verify', () => {
  it('custodian init seals the private key (K 0700) and writes the public custodian.json', () => {
    expect(statSync(custodianDir(1)).mode & 0o777).toBe(0o700);
    const pub = JSON.parse(readFileSync(path.join(custodianDir(1), 'custodian.json'), 'utf8'));
    expect(pub).toMatchObject({ Custodian: 'mpchsm-custodian-v1', Name: 'custodian1' });
    expect(pub.Fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(pub)).not.toMatch(/private|secret/i);
  });

  it('backs up each running signer to its own custodian; every share verifies, alone and against the cluster', async () => {
    for (const [i, s] of SIGNERS.entries()) {
      const r = await mpchsmIn(operatorSecret(s), 'signer', 'backup', '--dir', path.join(tc.dir, 'signers', s), '--custodian', path.join(custodianDir(i + 1), 'custodian.json'), '--out', backupOf(s), '--json');
      expect(r.code, r.stderr).toBe(0);
      const made = JSON.parse(r.stdout);
      expect(made).toMatchObject({ Signer: s, Keys: 4 });
      // No share in clear: the header names packages only, the payload is sealed.
      const file = JSON.parse(readFileSync(backupOf(s), 'utf8'));
      expect(JSON.stringify(file.header)).not.toMatch(/secretShare|"s":/);
      expect(statSync(backupOf(s)).mode & 0o077).toBe(0);
    }
    for (const [i, s] of SIGNERS.entries()) {
      const alone = await verify(backupOf(s), i + 1);
      expect(alone.code, JSON.stringify(alone.out)).toBe(0);
      expect(alone.out.Verdict).toBe('verified');
      expect(new Set(alone.out.Shares!.map((x) => x.KeyId))).toEqual(new Set(Object.values(keys)));
      expect(alone.out.Shares!.every((x) => x.Status === 'verified')).toBe(true);
      expect(alone.out.Shares!.filter((x) => (x as { Record?: string }).Record?.startsWith(`material.${keys.sym}.`))).toHaveLength(1);
      const current = await verify(backupOf(s), i + 1, '--dir', tc.dir);
      expect(current.code, JSON.stringify(current.out)).toBe(0);
    }
    // From another host: the keys' packages and the epoch from the signers' signed reports, through the gateway.
    const far = await verify(backupOf('signer2'), 2, ...fromElsewhere());
    expect(far.code, JSON.stringify(far.out) + far.stderr).toBe(0);
    expect(far.out.Verdict).toBe('verified');
    const text = await mpchsmIn(PASS, 'backup', 'verify', backupOf('signer1'), '--custodian-dir', custodianDir(1));
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`verified +key\\.${keys.rsa} \\(RSA_2048\\)`));
    expect(text.stdout.trim().split('\n').at(-1)).toBe('verified');
  }, LONG);

  it('names a backup whose sealed payload or header was altered tampered', async () => {
    const doc = JSON.parse(readFileSync(backupOf('signer1'), 'utf8'));
    const payload = Buffer.from(doc.payload, 'base64');
    payload[Math.floor(payload.length / 2)]! ^= 0x01;
    const flipped = path.join(work, 'flipped.backup');
    writeFileSync(flipped, JSON.stringify({ ...doc, payload: payload.toString('base64') }));
    const a = await verify(flipped, 1);
    expect([a.code, a.out.Verdict]).toEqual([1, 'tampered']);
    const edited = path.join(work, 'edited.backup');
    writeFileSync(edited, JSON.stringify({ ...doc, header: { ...doc.header, signer: { ...doc.header.signer, name: 'signer9' } } }));
    const b = await verify(edited, 1);
    expect([b.code, b.out.Verdict]).toEqual([1, 'tampered']);
  }, LONG);

  it('a share that does not match its public commitments, sealed anew to the custodian, is named bad', async () => {
    // What a signer with a damaged share, or a custodian's copy decrypted and re-sealed wrongly, would produce.
    const parsed = parseBackup(readFileSync(backupOf('signer3')));
    const { custodian, privateKey } = await openCustodian(custodianDir(3), new TextEncoder().encode(PASS));
    const records = await openBackup(parsed, privateKey);
    const name = `key.${keys.ed}`;
    const held = decodeRecord(records.get(name)!) as { ec: DkgKeyShare };
    held.ec.secretShare[0]! ^= 1; // the scalar's lowest bit (little-endian)
    records.set(name, encodeRecord(held));
    const bad = path.join(work, 'bad-share.backup');
    writeFileSync(bad, await sealBackup(parsed.header, records, fromHex(custodian.PublicKey)));
    const r = await verify(bad, 3);
    expect([r.code, r.out.Verdict]).toEqual([1, 'bad']);
    const byKey = new Map(r.out.Shares!.map((x) => [x.KeyId, x]));
    expect(byKey.get(keys.ed!)).toMatchObject({ Status: 'bad', Reason: expect.stringMatching(/verifying share/) });
    expect(byKey.get(keys.ec!)?.Status).toBe('verified');
  }, LONG);

  it('names a backup verified with another custodian\'s key, and one for another cluster', async () => {
    const wrong = await verify(backupOf('signer1'), 2);
    expect([wrong.code, wrong.out.Verdict]).toEqual([1, 'other-custodian']);
    other = await startCluster({ signers: 2, threshold: 2 });
    const elsewhere = await verify(backupOf('signer1'), 1, '--dir', other.dir);
    expect([elsewhere.code, elsewhere.out.Verdict]).toEqual([1, 'other-cluster']);
    await other.destroy();
    other = undefined;
  }, LONG);

  it('after mpchsm key refresh, the refreshed key\'s backed-up share is stale against the cluster', async () => {
    await tc.mpchsm('key', 'refresh', keys.ec!, '--as', 'admin1', '--dir', tc.dir, '--json');
    const alone = await verify(backupOf('signer2'), 2);
    expect(alone.code).toBe(0); // still a sound share of the key as it was
    const r = await verify(backupOf('signer2'), 2, '--dir', tc.dir);
    expect(r.code).toBe(1);
    expect(r.out.Verdict).toBe('stale');
    const byKey = new Map(r.out.Shares!.map((x) => [x.KeyId, x]));
    expect(byKey.get(keys.ec!)).toMatchObject({ Status: 'stale' });
    expect(byKey.get(keys.ed!)?.Status).toBe('verified');
    const far = await verify(backupOf('signer2'), 2, ...fromElsewhere());
    expect([far.code, far.out.Verdict]).toEqual([1, 'stale']);
    expect(new Map(far.out.Shares!.map((x) => [x.KeyId, x.Status])).get(keys.ec!)).toBe('stale');
  }, LONG);
});
