// Per-signature approvals (code signing): a key whose policy asks k approvals per signature
// signs a digest through the KMS API only once k administrators approved that digest with
// `mpchsm approve-sign`; each approval is single-use, and the signers verify them and track
// the used nonces themselves.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SignCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignerClient } from '../../gateway/signer-client.js';
import type { TestCluster } from '../helpers/cluster.js';
import { appRequest, auditEntries, createKey, failure, kms, perSignaturePolicy, refusal, signUse, startWithSigners, stopWithSigners } from './helpers.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';

let tc: TestCluster;
let keyId: string;
let signers: SignerClient[];
/** The two approvals the successful signature used. */
let used: unknown[] = [];

const release = new TextEncoder().encode('release-1.2.3.tar.gz contents');
const digest = createHash('sha512').update(release).digest('hex');
const sign = (message = release) => kms(tc, 'app').send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: 'ED25519_SHA_512' }));
const approveSign = async (as: string, d = digest) =>
  JSON.parse((await tc.mpchsm('approve-sign', '--key', keyId, '--digest', d, '--algorithm', 'ED25519_SHA_512', '--as', as, '--dir', tc.dir, '--json')).stdout) as { Approvals: number; Required: number };

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY', Policy: perSignaturePolicy('111122223333', 2) });
}, 120_000);

afterAll(() => stopWithSigners(tc, signers));

describe('approvals per signature', () => {
  it('refuses the signature until two administrators approved its digest, then signs it once', async () => {
    const none = await failure(sign());
    expect(none.name).toBe('AccessDeniedException');
    expect(none.message).toMatch(/the signature needs approval by 2 distinct administrators; it has 0 \[missing: mpchsm:Approve\]/);
    expect(none.message).toContain(`mpchsm approve-sign --key ${keyId} --algorithm ED25519_SHA_512 --digest ${digest} --as <administrator>`);

    expect(await approveSign('admin1')).toMatchObject({ Approvals: 1, Required: 2 });
    expect((await failure(sign())).message).toMatch(/needs approval by 2 distinct administrators; it has 1 \(admin1\)/);
    // The same administrator twice is still one.
    expect(await approveSign('admin1')).toMatchObject({ Approvals: 1 });
    // An approval of another digest does not count for this one.
    await approveSign('admin3', createHash('sha512').update('another release').digest('hex'));
    expect((await failure(sign())).name).toBe('AccessDeniedException');

    expect(await approveSign('admin2')).toMatchObject({ Approvals: 2, Required: 2 });
    used = JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'proposals.json'), 'utf8')).signApprovals.filter((a: { digest: string }) => a.digest === digest);
    expect(used).toHaveLength(2);
    expect((await sign()).Signature!.length).toBe(64);
    // Single use: the next signature of the same digest needs new approvals.
    expect((await failure(sign())).message).toMatch(/needs approval by 2/);
  });

  it('signers verify the approvals themselves: without them, or with used ones, they refuse', async () => {
    const body = { KeyId: keyId, Message: Buffer.from(release).toString('base64'), SigningAlgorithm: 'ED25519_SHA_512' };
    const commit = async (c: SignerClient, extra: object) =>
      refusal(c.call(signerRoutes.frost.commit, { session: randomUUID(), keyId, signers: signers.map((s) => s.id), use: signUse(release, await appRequest(tc, 'TrentService.Sign', body), extra) }));
    for (const c of signers) expect((await commit(c, {})).message).toMatch(/access denied: .*needs approval by 2 distinct administrators; it has 0/);
    // The signers that made the signature (any two: the gateway spreads the load) consumed its approvals.
    const signed = auditEntries(tc, 'gateway').find((e) => e.op === 'Sign' && e.keyId === keyId && e.outcome === 'ok')!.signers as { name: string }[];
    expect(signed).toHaveLength(2);
    for (const c of signers.filter((s) => signed.some((x) => x.name === s.name))) expect((await commit(c, { signApprovals: used })).message).toMatch(/access denied: .*the signature approval by admin\d was already used \(nonce [0-9a-f]+\)/);
  });

  it('the application cannot approve signatures, and approvals do not outlive 24 hours', async () => {
    await expect(tc.mpchsm('approve-sign', '--key', keyId, '--digest', digest, '--algorithm', 'ED25519_SHA_512', '--as', 'app', '--dir', tc.dir)).rejects.toThrow(/app has no approval key/);
    await expect(tc.mpchsm('approve-sign', '--key', keyId, '--digest', digest, '--algorithm', 'ED25519_SHA_512', '--ttl', '2000', '--as', 'admin1', '--dir', tc.dir)).rejects.toThrow(/--ttl is 1 to 1440 minutes/);
  });
});
