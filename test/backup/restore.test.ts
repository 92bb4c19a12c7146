// Restoring lost signers from their backups (issue #23), on a real cluster through the `mpchsm`
// command: EC P-256, Ed25519 and RSA-2048 keys; each signer backed up to its own custodian and
// verified; two of the three signers' directories destroyed; both restored on new directories
// (`signer restore`), started, proposed (`signer rejoin`) and approved by a second administrator;
// with the third signer stopped, the two restored ones sign every key through KMS and PKCS#11
// under the same public keys; the audit shows the restorations and their approvals; after a
// refresh with the restored signers, signing still holds. A tampered backup, one of another
// cluster and a stale one are each refused by `signer restore` with their verdict, writing
// nothing; a stale backup restored where the cluster cannot be compared is refused by the
// signers themselves when the restoration is approved. Two signers lost after a refresh their
// backups predate come back with --revive-epoch, and the key is refreshed from the revived
// sharing; a key made after a backup is reshared to its restored signer at its next refresh.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateKeyCommand, GetPublicKeyCommand, SignCommand, type KMSClient } from '@aws-sdk/client-kms';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { createPublicKey, createVerify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKM } from '../../contract/pkcs11/ck.js';
import { auditVerifyAtRest, startCluster, type TestCluster } from '../helpers/cluster.js';
import { kmsClient } from '../kms/kms-client.js';
import { signThroughModule } from '../p11/helpers.js';
import { approve, auditEntries } from '../policy-cluster/helpers.js';
import { mpchsmIn } from './run.js';

const LONG = 300_000;
const PASS = 'custodian passphrase for tests';
const SIGNERS = ['signer1', 'signer2', 'signer3'];
const LOST = ['signer1', 'signer2'];

let tc: TestCluster;
let other: TestCluster | undefined;
let work: string;
const keys: Record<'ec' | 'ed' | 'rsa', string> = { ec: '', ed: '', rsa: '' };
const publicKeys: Record<string, Uint8Array> = {};
const secrets: Record<string, string> = {};
const backupOf = (signer: string) => path.join(work, `${signer}.backup`);
const custodianDir = (signer: string) => path.join(work, `custodian-${signer}`);
const signerDir = (signer: string) => path.join(tc.dir, 'signers', signer);
const genesis = () => path.join(tc.dir, 'genesis.json');

const restore = async (signer: string, dir: string, from = backupOf(signer), ...more: string[]) => {
  const r = await mpchsmIn(`${PASS}\n${secrets[signer]}\n`, 'signer', 'restore', '--dir', dir, '--from', from, '--custodian-dir', custodianDir(signer), '--json', ...more);
  return { code: r.code, out: JSON.parse(r.stdout.trim() || '{}') as Record<string, unknown>, stderr: r.stderr };
};
const startSigner = async (signer: string) => {
  const r = await mpchsmIn(secrets[signer]!, 'signer', 'start', '--dir', signerDir(signer), '--genesis', genesis(), '--detach', '--json');
  expect(r.code, r.stderr + r.stdout).toBe(0);
};
const stopSigner = (signer: string) => tc.mpchsm('signer', 'stop', '--dir', signerDir(signer));

/** Each lost signer's restoration proposed by admin1 and approved by admin2; then the first one, enrolled once the second is back. */
async function rejoinBoth(): Promise<string[]> {
  const proposals: string[] = [];
  for (const s of LOST) {
    const { stdout } = await tc.mpchsm('signer', 'rejoin', path.join(signerDir(s), `${s}.restore.json`), '--as', 'admin1', '--dir', tc.dir, '--json');
    const proposed = JSON.parse(stdout) as { Proposal?: { id: string }; proposal?: string; Status: string };
    const id = proposed.Proposal?.id ?? proposed.proposal!;
    expect(proposed.Status).toBe('Pending');
    proposals.push(id);
    const done = await approve(tc, id, 'admin2');
    expect(done.Status, JSON.stringify(done)).toBe('Executed');
    expect(done.Signers?.find((x) => x.signer === 'signer3')).toMatchObject({ applied: true });
  }
  // The first restored signer could not be enrolled while the second was still lost (its state is
  // asked of every signer it pins); once both were restored, it is.
  const admitted = JSON.parse((await tc.mpchsm('signer', 'admit', 'signer1', '--as', 'admin1', '--dir', tc.dir, '--json')).stdout);
  expect(admitted.Signer).toMatchObject({ Name: 'signer1', Admitted: true });
  return proposals;
}

/** Signs `message` with `key` through KMS as the application and checks it under the public key GetPublicKey gave before the loss. */
async function signsAsBefore(app: KMSClient, key: 'ec' | 'ed' | 'rsa', message: Uint8Array): Promise<void> {
  const SigningAlgorithm = key === 'ec' ? 'ECDSA_SHA_256' : key === 'ed' ? 'ED25519_SHA_512' : 'RSASSA_PKCS1_V1_5_SHA_256';
  const r = await app.send(new SignCommand({ KeyId: keys[key], Message: message, MessageType: 'RAW', SigningAlgorithm }));
  expect(verifies(key, message, r.Signature!), key).toBe(true);
}

function verifies(key: 'ec' | 'ed' | 'rsa', message: Uint8Array, signature: Uint8Array): boolean {
  const spki = createPublicKey({ key: Buffer.from(publicKeys[key]!), format: 'der', type: 'spki' });
  if (key === 'ed') return ed25519.verify(signature, message, Buffer.from(publicKeys.ed!).subarray(-32));
  if (key === 'rsa') return createVerify('sha256').update(message).verify(spki, Buffer.from(signature));
  const raw = spki.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(raw.x!, 'base64url'), Buffer.from(raw.y!, 'base64url')]);
  const der = signature.length === 64 ? signature : p256.Signature.fromBytes(signature, 'der').toBytes('compact');
  // ECDSA as PKCS#11 and KMS define it: any S (noble asks low S by default).
  return p256.verify(der, message, point, { prehash: true, format: 'compact', lowS: false });
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-test-restore-'));
  tc = await startCluster();
  const admin = kmsClient(tc, 'admin1');
  keys.ec = (await admin.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
  keys.ed = (await admin.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
  keys.rsa = (await admin.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
  for (const k of ['ec', 'ed', 'rsa'] as const) publicKeys[k] = (await admin.send(new GetPublicKeyCommand({ KeyId: keys[k] }))).PublicKey!;
  for (const s of SIGNERS) {
    secrets[s] = readFileSync(path.join(tc.dir, 'operators', `${s}.secret`), 'utf8');
    expect((await mpchsmIn(PASS, 'custodian', 'init', '--dir', custodianDir(s), '--name', `custodian-${s}`)).code).toBe(0);
    const made = await mpchsmIn(secrets[s]!, 'signer', 'backup', '--dir', signerDir(s), '--custodian', path.join(custodianDir(s), 'custodian.json'), '--out', backupOf(s));
    expect(made.code, made.stderr).toBe(0);
    const verified = await mpchsmIn(PASS, 'backup', 'verify', backupOf(s), '--custodian-dir', custodianDir(s), '--dir', tc.dir);
    expect(verified.code, verified.stdout).toBe(0);
  }
}, LONG);

afterAll(async () => {
  for (const s of SIGNERS) if (tc && existsSync(path.join(signerDir(s), 'signer.pid'))) await stopSigner(s).catch(() => undefined);
  await other?.destroy();
  await tc?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
}, LONG);

describe('signer restore refuses what it must not take back', () => {
  it('a tampered backup: refused as tampered, nothing written', async () => {
    const doc = JSON.parse(readFileSync(backupOf('signer1'), 'utf8'));
    const payload = Buffer.from(doc.payload, 'base64');
    payload[10]! ^= 0x01;
    const tampered = path.join(work, 'tampered.backup');
    writeFileSync(tampered, JSON.stringify({ ...doc, payload: payload.toString('base64') }));
    const dir = path.join(work, 'from-tampered');
    const r = await restore('signer1', dir, tampered);
    expect([r.code, r.out.Verdict]).toEqual([1, 'tampered']);
    expect(existsSync(dir) && readdirSync(dir).length > 0).toBe(false);
  }, LONG);

  it('a backup of another cluster: refused as other-cluster', async () => {
    other = await startCluster({ signers: 2, threshold: 2 });
    const dir = path.join(other.dir, 'signers', 'restored');
    const r = await restore('signer1', dir);
    expect([r.code, r.out.Verdict]).toEqual([1, 'other-cluster']);
    expect(existsSync(dir)).toBe(false);
    await other.destroy();
    other = undefined;
  }, LONG);
});

describe('two of three signers lost and restored from their backups', () => {
  it('destroys two signers’ directories; each is restored on a new directory with a new identity', async () => {
    const before = Object.fromEntries(LOST.map((s) => [s, JSON.parse(readFileSync(path.join(signerDir(s), 'identity.json'), 'utf8')).signPublicKey]));
    for (const s of LOST) {
      await stopSigner(s);
      rmSync(signerDir(s), { recursive: true, force: true });
    }
    for (const s of LOST) {
      const r = await restore(s, signerDir(s));
      expect(r.code, r.stderr + JSON.stringify(r.out)).toBe(0);
      expect(r.out).toMatchObject({ Name: s, Shares: 3, ComparedWithCluster: true, Dropped: [] });
      const now = JSON.parse(readFileSync(path.join(signerDir(s), 'identity.json'), 'utf8'));
      expect(now.signPublicKey).not.toBe(before[s]);
      await startSigner(s);
    }
  }, LONG);

  it('a quorum of administrators approves each restoration; the restored signers are enrolled', async () => {
    const proposals = await rejoinBoth();
    const gw = auditEntries(tc, 'gateway');
    for (const id of proposals) {
      const restored = gw.find((e) => e.op === 'RestoreSigner' && (e.detail as { proposal?: string })?.proposal === id);
      expect(restored, id).toMatchObject({ outcome: 'ok' });
      expect((restored!.policy as { approvals: string[] }).approvals.sort()).toEqual(['admin1', 'admin2']);
    }
    expect(gw.filter((e) => e.op === 'AdmitSigner' && e.outcome === 'ok').map((e) => (e.detail as { signer: string }).signer)).toEqual(expect.arrayContaining(LOST));
    const at3 = auditEntries(tc, 'signer3').filter((e) => e.op === 'policy.RestoreSigner' && e.outcome === 'ok');
    expect(at3.map((e) => (e.detail as { member: string }).member).sort()).toEqual(LOST);
  }, LONG);

  it('with the third signer stopped, the restored two sign every key through KMS under the same public keys', async () => {
    await stopSigner('signer3');
    const app = kmsClient(tc, 'app');
    for (const k of ['ec', 'ed', 'rsa'] as const) {
      expect((await app.send(new GetPublicKeyCommand({ KeyId: keys[k] }))).PublicKey).toEqual(publicKeys[k]);
      await signsAsBefore(app, k, new TextEncoder().encode(`restored ${k}`));
    }
  }, LONG);

  it('and through the PKCS#11 module', () => {
    const uses = ([['ec', CKM.ECDSA_SHA256], ['ed', CKM.EDDSA], ['rsa', CKM.SHA256_RSA_PKCS]] as const).map(([k, mechanism]) => ({ k, keyId: keys[k], mechanism, message: Buffer.from(`pkcs#11 after restore ${k}`) }));
    const signatures = signThroughModule(tc.principal('app'), uses);
    uses.forEach((u, i) => expect(verifies(u.k, u.message, signatures[i]!), u.k).toBe(true));
  }, LONG);

  it('a refresh after the restore involves the restored signers; every key still signs', async () => {
    await startSigner('signer3');
    await tc.mpchsm('key', 'refresh', keys.ec, '--as', 'admin1', '--dir', tc.dir, '--json');
    await stopSigner('signer1');
    const app = kmsClient(tc, 'app');
    for (const k of ['ec', 'ed', 'rsa'] as const) await signsAsBefore(app, k, new TextEncoder().encode(`after refresh ${k}`));
    await startSigner('signer1');
  }, LONG);
});

describe('the restored cluster at rest', () => {
  it('audit verify holds over every log, and mpchsm up starts the restored signers as its own', async () => {
    for (const s of SIGNERS) await stopSigner(s);
    const r = await auditVerifyAtRest(tc);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/restor/i);
    await signsAsBefore(kmsClient(tc, 'app'), 'rsa', new TextEncoder().encode('after up'));
  }, LONG);
});

describe('a backup older than a refresh', () => {
  it('is refused by signer restore as stale, where the cluster can be compared', async () => {
    const dir = path.join(tc.dir, 'signers', 'spare');
    const r = await restore('signer3', dir);
    expect([r.code, r.out.Verdict]).toEqual([1, 'stale']);
    expect(String(r.out.Problem)).toContain(`key.${keys.ec}`);
    expect(existsSync(dir)).toBe(false);
  }, LONG);

  it('and by every signer when a restoration from it is approved anyway', async () => {
    // Restored where no running cluster is in sight, the shares are not compared by the command.
    const dir = path.join(work, 'elsewhere', 'signer3');
    const r = await restore('signer3', dir);
    expect(r.code, JSON.stringify(r.out)).toBe(0);
    expect(r.out.ComparedWithCluster).toBe(false);
    const { stdout } = await tc.mpchsm('signer', 'rejoin', path.join(dir, 'signer3.restore.json'), '--as', 'admin1', '--dir', tc.dir, '--json');
    const proposed = JSON.parse(stdout) as { Proposal?: { id: string }; proposal?: string };
    const id = proposed.Proposal?.id ?? proposed.proposal!;
    const out = await tc.mpchsmStatus('approve', id, '--as', 'admin2', '--dir', tc.dir, '--json');
    expect(out.code).not.toBe(0);
    expect(out.out).toMatch(/stale/);
    // signer3 keeps its identity: it still signs with the restored two.
    await signsAsBefore(kmsClient(tc, 'app'), 'ed', new TextEncoder().encode('signer3 kept'));
  }, LONG);
});

describe('reviving an older sharing, approved by the quorum', () => {
  it('two signers lost after a refresh their backups predate: restored with --revive-epoch, the key is refreshed from the revived sharing and signs again', async () => {
    const second = (s: string) => path.join(work, `${s}.second.backup`);
    for (const s of LOST) {
      const made = await mpchsmIn(secrets[s]!, 'signer', 'backup', '--dir', signerDir(s), '--custodian', path.join(custodianDir(s), 'custodian.json'), '--out', second(s));
      expect(made.code, made.stderr).toBe(0);
    }
    // After the backups, ed's shares are refreshed; then both backed-up signers are lost: one current share of ed is left.
    await tc.mpchsm('key', 'refresh', keys.ed, '--as', 'admin1', '--dir', tc.dir, '--json');
    for (const s of LOST) {
      await stopSigner(s);
      rmSync(signerDir(s), { recursive: true, force: true });
    }
    const refused = await restore('signer1', signerDir('signer1'), second('signer1'));
    expect([refused.code, refused.out.Verdict]).toEqual([1, 'stale']);
    for (const s of LOST) {
      const r = await restore(s, signerDir(s), second(s), '--revive-epoch');
      expect(r.code, r.stderr + JSON.stringify(r.out)).toBe(0);
      expect(r.out.ReviveEpoch).toBe(true);
      await startSigner(s);
    }
    await rejoinBoth();
    await tc.mpchsm('key', 'refresh', keys.ed, '--as', 'admin1', '--dir', tc.dir, '--json');
    const app = kmsClient(tc, 'app');
    await stopSigner('signer3');
    for (const k of ['ec', 'ed', 'rsa'] as const) await signsAsBefore(app, k, new TextEncoder().encode(`revived ${k}`));
    await startSigner('signer3');
    await stopSigner('signer1');
    await signsAsBefore(app, 'ed', new TextEncoder().encode('revived, with signer3'));
    await startSigner('signer1');
  }, LONG);
});

describe('a key made after the backup', () => {
  it('the restored signer holds no share of it until its next refresh, which reshares one to it', async () => {
    const third = path.join(work, 'signer1.third.backup');
    const made = await mpchsmIn(secrets.signer1!, 'signer', 'backup', '--dir', signerDir('signer1'), '--custodian', path.join(custodianDir('signer1'), 'custodian.json'), '--out', third);
    expect(made.code, made.stderr).toBe(0);
    const admin = kmsClient(tc, 'admin1');
    const late = (await admin.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
    const latePublic = (await admin.send(new GetPublicKeyCommand({ KeyId: late }))).PublicKey!;
    await stopSigner('signer1');
    rmSync(signerDir('signer1'), { recursive: true, force: true });
    const r = await restore('signer1', signerDir('signer1'), third);
    expect(r.code, r.stderr + JSON.stringify(r.out)).toBe(0);
    await startSigner('signer1');
    const { stdout } = await tc.mpchsm('signer', 'rejoin', path.join(signerDir('signer1'), 'signer1.restore.json'), '--as', 'admin1', '--dir', tc.dir, '--json');
    const proposed = JSON.parse(stdout) as { Proposal?: { id: string }; proposal?: string };
    const done = await approve(tc, proposed.Proposal?.id ?? proposed.proposal!, 'admin2');
    expect(done.Status, JSON.stringify(done)).toBe('Executed');
    expect(done.Result).toMatchObject({ KeysToRefresh: [late], Signer: { Name: 'signer1', Admitted: true } });
    await tc.mpchsm('key', 'refresh', late, '--as', 'admin1', '--dir', tc.dir, '--json');
    await stopSigner('signer3');
    const app = kmsClient(tc, 'app');
    const message = new TextEncoder().encode('a key made after the backup');
    const signature = (await app.send(new SignCommand({ KeyId: late, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ED25519_SHA_512' }))).Signature!;
    expect(ed25519.verify(signature, message, Buffer.from(latePublic).subarray(-32))).toBe(true);
    await startSigner('signer3');
  }, LONG);
});
