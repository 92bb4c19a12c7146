// Issue #20: with two of three signers SIGSTOPped, every KMS request that needs the signers
// fails within the documented bound (docs/operations.md "Liveness": quorumWaitMs 4 s + 0.5 s;
// README: 5 s) as DependencyTimeoutException (HTTP 503), with the SDK's retries off — also the
// first, whose new connections meet a hung signer's TLS handshake, CreateKey, which needs every
// signer, and GenerateRandom, which needs t; requests that need one signer only, to authenticate
// (GetPublicKey, DescribeKey, Verify), still answer at once.
import { CreateKeyCommand, DescribeKeyCommand, GenerateRandomCommand, GetPublicKeyCommand, SignCommand, VerifyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { createKey } from '../policy-cluster/helpers.js';
import { awsError, kmsClient } from './kms-client.js';

const BOUND_MS = 5000;
let tc: TestCluster;
const keys: Record<'ed' | 'ec' | 'rsa', string> = { ed: '', ec: '', rsa: '' };
let edSignature: Uint8Array;
const stopped: number[] = [];

const signerPid = (name: string) => tc.cluster().signers.find((s) => s.name === name)!.pid;

/** The call's AWS error and how long it took. */
async function timed(p: () => Promise<unknown>): Promise<{ name: string; status: number | undefined; ms: number }> {
  const started = Date.now();
  const e = await awsError(p());
  return { name: e.name, status: e.status, ms: Date.now() - started };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  tc = await startCluster();
  keys.ed = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  keys.ec = await createKey(tc, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
  keys.rsa = await createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
  const app = kmsClient(tc, 'app');
  edSignature = (await app.send(new SignCommand({ KeyId: keys.ed, Message: Buffer.from('before'), SigningAlgorithm: 'ED25519_SHA_512' }))).Signature!;
  app.destroy();
}, 180_000);

/**
 * Each case starts as fresh as it can: both signers resumed until a Sign is served again (the
 * gateway's marks cleared), then SIGSTOPped. The first request's calls go out on the gateway's
 * kept connections, which the hung signers leave unanswered; a connection left silent is then
 * closed, and later calls open new ones whose TLS handshake a hung signer never finishes
 * (either way each call must end at its own bound).
 */
async function hangTwo(client: KMSClient): Promise<void> {
  for (const pid of stopped.splice(0)) process.kill(pid, 'SIGCONT');
  const until = Date.now() + 20_000;
  for (;;) {
    const ok = await client.send(new SignCommand({ KeyId: keys.ed, Message: Buffer.from('resumed'), SigningAlgorithm: 'ED25519_SHA_512' })).then(() => true, () => false);
    if (ok) break;
    if (Date.now() > until) throw new Error('signing did not resume after SIGCONT');
    await sleep(500);
  }
  for (const name of ['signer1', 'signer3']) {
    const pid = signerPid(name);
    process.kill(pid, 'SIGSTOP');
    stopped.push(pid);
  }
  await sleep(4500);
}

afterAll(async () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
  await tc?.destroy();
});

describe('two of three signers hung (SIGSTOP), SDK retries off', () => {
  let app: KMSClient;
  let admin: KMSClient;
  beforeAll(() => {
    app = kmsClient(tc, 'app', { maxAttempts: 1 });
    admin = kmsClient(tc, 'admin1', { maxAttempts: 1 });
  });
  afterAll(() => {
    app.destroy();
    admin.destroy();
  });

  const cases = [
    ['Sign ED25519_SHA_512', 'ed', 'ED25519_SHA_512'],
    ['Sign ECDSA_SHA_256', 'ec', 'ECDSA_SHA_256'],
    ['Sign RSASSA_PSS_SHA_256', 'rsa', 'RSASSA_PSS_SHA_256'],
  ] as const;
  for (const [title, key, algorithm] of cases) {
    it(`${title}: DependencyTimeoutException (503) within ${BOUND_MS} ms, twice in a row`, async () => {
      await hangTwo(app);
      for (let i = 0; i < 2; i++) {
        const r = await timed(() => app.send(new SignCommand({ KeyId: keys[key], Message: Buffer.from(`two hung ${i}`), SigningAlgorithm: algorithm })));
        console.log(`${title} #${i}: ${r.name} ${r.status} after ${r.ms} ms`);
        expect(r.name).toBe('DependencyTimeoutException');
        expect(r.status).toBe(503);
        expect(r.ms).toBeLessThan(BOUND_MS);
      }
    }, 60_000);
  }

  it(`CreateKey: DependencyTimeoutException (503) within ${BOUND_MS} ms`, async () => {
    await hangTwo(app);
    const r = await timed(() => admin.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' })));
    console.log(`CreateKey: ${r.name} ${r.status} after ${r.ms} ms`);
    expect(r.name).toBe('DependencyTimeoutException');
    expect(r.status).toBe(503);
    expect(r.ms).toBeLessThan(BOUND_MS);
  }, 60_000);

  it(`GenerateRandom (t signers' contributions): DependencyTimeoutException (503) within ${BOUND_MS} ms`, async () => {
    await hangTwo(app);
    const r = await timed(() => app.send(new GenerateRandomCommand({ NumberOfBytes: 32 })));
    console.log(`GenerateRandom: ${r.name} ${r.status} after ${r.ms} ms`);
    expect(r.name).toBe('DependencyTimeoutException');
    expect(r.status).toBe(503);
    expect(r.ms).toBeLessThan(BOUND_MS);
  }, 60_000);

  it('GetPublicKey, DescribeKey and Verify answer from the gateway within the bound', async () => {
    for (const [name, call] of [
      ['GetPublicKey', () => app.send(new GetPublicKeyCommand({ KeyId: keys.ed }))],
      ['DescribeKey', () => app.send(new DescribeKeyCommand({ KeyId: keys.ed }))],
      ['Verify', () => app.send(new VerifyCommand({ KeyId: keys.ed, Message: Buffer.from('before'), Signature: edSignature, SigningAlgorithm: 'ED25519_SHA_512' }))],
    ] as const) {
      const started = Date.now();
      const out = await (call as () => Promise<unknown>)().then(
        () => 'ok',
        (e: Error) => e.name,
      );
      const ms = Date.now() - started;
      console.log(`${name}: ${out} after ${ms} ms`);
      expect(ms, name).toBeLessThan(BOUND_MS);
      if (out !== 'ok') expect(out, name).toBe('DependencyTimeoutException');
    }
  }, 30_000);
});
