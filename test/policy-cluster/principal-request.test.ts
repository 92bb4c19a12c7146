// Newcomers make their own secrets: `mpchsm principal request` in the newcomer's own directory,
// `mpchsm principal propose` by an administrator from the public request file. The proposer's
// directory never holds the newcomer's secret, PIN or approval key.
import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../cli/env-file.js';
import type { TestCluster } from '../helpers/cluster.js';
import { startCluster } from '../helpers/cluster.js';
import { approve, createKey, publicKeyOf } from './helpers.js';

let tc: TestCluster;
let home: string;

beforeAll(async () => {
  tc = await startCluster();
  home = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-newcomer-'));
}, 120_000);
afterAll(async () => {
  rmSync(home, { recursive: true, force: true });
  await tc?.destroy();
});

/** Every file under `dir`, read as text (what an administrator's directory holds). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => readFileSync(path.join(d.parentPath, d.name), 'latin1'));
}

const json = async (...args: string[]) => JSON.parse((await tc.mpchsm(...args, '--json')).stdout) as Record<string, unknown>;

describe('principal request and propose', () => {
  it('an application: its own secrets, proposed from the public file, usable once approved', async () => {
    const p = path.join(home, 'app2');
    const made = await json('principal', 'request', '--name', 'app2', '--role', 'app', '--genesis', tc.dir, '--dir', p);
    expect(made).toMatchObject({ Name: 'app2', Role: 'app' });
    expect(statSync(path.join(p, 'app2.env')).mode & 0o777).toBe(0o600);
    const env = parseEnvFile(readFileSync(path.join(p, 'app2.env'), 'utf8'));
    const request = readFileSync(path.join(p, 'app2.request.json'), 'utf8');
    for (const secret of [env.AWS_SECRET_ACCESS_KEY!, env.MPCHSM_PKCS11_PIN!]) expect(request).not.toContain(secret);

    const proposed = await json('principal', 'propose', path.join(p, 'app2.request.json'), '--as', 'admin1', '--dir', tc.dir);
    expect(proposed.proposal).toMatch(/^p-[0-9a-f]+$/);
    expect(proposed.Status).toBe('Pending');
    expect((await approve(tc, String(proposed.proposal), 'admin2')).Status).toBe('Executed');
    // Neither the administrators' directory nor the gateway's holds the newcomer's secrets.
    for (const text of filesUnder(tc.dir)) for (const secret of [env.AWS_SECRET_ACCESS_KEY!, env.MPCHSM_PKCS11_PIN!]) expect(text).not.toContain(secret);

    const keyId = await createKey(tc, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    const app2 = new KMSClient({ endpoint: env.MPCHSM_KMS_ENDPOINT, region: env.AWS_REGION, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! }, maxAttempts: 1 });
    const message = new TextEncoder().encode('signed by a newcomer');
    const r = await app2.send(new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect(verify('sha256', message, createPublicKey({ key: Buffer.from(await publicKeyOf(tc, keyId)), format: 'der', type: 'spki' }), r.Signature!)).toBe(true);
  });

  it('an administrator: its own approval key, a governance version it signed, then it approves with its own directory', async () => {
    const p = path.join(home, 'admin4');
    await json('principal', 'request', '--name', 'admin4', '--role', 'admin', '--genesis', tc.dir, '--dir', p);
    const key = readFileSync(path.join(p, 'admin4.approval.key'), 'utf8').trim();
    const proposed = await json('principal', 'propose', path.join(p, 'admin4.request.json'), '--as', 'admin1', '--dir', tc.dir);
    expect(proposed.Status).toBe('Pending');
    expect((await approve(tc, String(proposed.proposal), 'admin3')).Status).toBe('Executed');
    for (const text of filesUnder(tc.dir)) expect(text).not.toContain(key);
    // admin4 now proposes and approves from its own directory, with its own key.
    const env = parseEnvFile(readFileSync(path.join(p, 'admin4.env'), 'utf8'));
    const admin4 = new KMSClient({ endpoint: env.MPCHSM_KMS_ENDPOINT, region: env.AWS_REGION, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! }, maxAttempts: 1 });
    const e = await admin4.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' })).then(
      (r) => ({ id: r.KeyMetadata?.KeyId, proposal: undefined as string | undefined }),
      (err: Error) => ({ id: undefined, proposal: /Proposal (p-[0-9a-f]+)/.exec(err.message)?.[1] }),
    );
    if (e.proposal) expect((await json('approve', e.proposal, '--as', 'admin4', '--dir', p)).Status).toBe('Executed');
    else expect(e.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses a stale or altered administrator request, and a request for a name in use', async () => {
    // An attacker edits the public file: the version it asks for is no longer exactly "add admin5".
    const p = path.join(home, 'admin5');
    await json('principal', 'request', '--name', 'admin5', '--role', 'admin', '--genesis', tc.dir, '--dir', p);
    const file = path.join(p, 'admin5.request.json');
    const r = JSON.parse(readFileSync(file, 'utf8'));
    r.Governance.Document.quorum['kms:CreateKey'] = 3;
    const altered = path.join(p, 'altered.request.json');
    writeFileSync(altered, JSON.stringify(r));
    await expect(tc.mpchsm('principal', 'propose', altered, '--as', 'admin1', '--dir', tc.dir)).rejects.toThrow(/asks for a governance version other than/);
    await expect(tc.mpchsm('principal', 'request', '--name', 'admin5', '--role', 'admin', '--genesis', tc.dir, '--dir', p)).rejects.toThrow(/exists/);
  });
});
