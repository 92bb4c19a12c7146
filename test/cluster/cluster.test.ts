// The running system: signer processes, the gateway, `mpchsm up/down/status`, restarts,
// dead and slow signers, tampered stores, and no share bytes outside the signers.
import { createPublicKey, verify } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../contract/bytes.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import { DRAWN_SECRET_SCRYPT, SEALER_HEADER_FILE } from '../../contract/io/seal.js';
import { decodeRecord } from '../../signers/node/key-records.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { createKey } from '../policy-cluster/helpers.js';
import { coreLimits } from '../../contract/io/core-dumps.js';

let tc: TestCluster;
let kms: KMSClient;
const keys: Record<'ed25519' | 'rsa', string> = { ed25519: '', rsa: '' };

function client(t: TestCluster, name = 'app'): KMSClient {
  const p = t.principal(name);
  return new KMSClient({
    endpoint: p.MPCHSM_KMS_ENDPOINT,
    region: p.AWS_REGION,
    credentials: { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY },
    maxAttempts: 1,
  });
}

async function signAndCheck(keyId: string): Promise<void> {
  const message = Buffer.from(`hello ${Math.random()}`);
  const rsa = keyId === keys.rsa;
  const algorithm = rsa ? 'RSASSA_PKCS1_V1_5_SHA_256' : 'ED25519_SHA_512';
  const out = await kms.send(new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm }));
  const pub = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
  const key = createPublicKey({ key: Buffer.from(pub.PublicKey!), format: 'der', type: 'spki' });
  expect(verify(rsa ? 'sha256' : null, message, key, Buffer.from(out.Signature!))).toBe(true);
}

const kill = (pid: number, signal: NodeJS.Signals) => process.kill(pid, signal);

beforeAll(async () => {
  tc = await startCluster();
  kms = client(tc);
  // CreateKey is an administrator's, approved by one administrator (test/policy-cluster/).
  keys.ed25519 = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  keys.rsa = await createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
}, 180_000);

afterAll(async () => {
  await tc?.destroy();
});

describe('local cluster', () => {
  it('writes cluster.json and principals as the contract says', () => {
    const c = tc.cluster();
    expect(c.threshold).toBe(2);
    expect(c.signers_total).toBe(3);
    expect(c.signers).toHaveLength(3);
    expect(c.gateway.url).toBe(tc.endpoint);
    for (const name of ['admin1', 'admin2', 'admin3', 'app', 'auditor']) {
      const p = tc.principal(name);
      expect(p.AWS_ACCESS_KEY_ID).toMatch(/^[A-Z0-9]{16,}$/);
      expect(p.MPCHSM_PKCS11_MODULE).toMatch(/libmpchsm-pkcs11\.so$/);
      expect(statSync(path.join(tc.dir, 'principals', `${name}.env`)).mode & 0o077).toBe(0);
    }
  });

  it("seals each party's store under the secret up drew, at scrypt's least cost (a typed passphrase keeps the default: deployment/ceremony)", () => {
    const header = (store: string) => JSON.parse(readFileSync(path.join(tc.dir, store, 'store', SEALER_HEADER_FILE), 'utf8'));
    for (const store of ['signers/signer1', 'signers/signer2', 'signers/signer3', 'gateway']) {
      expect(header(store).kdf, store).toMatchObject(DRAWN_SECRET_SCRYPT);
      expect(readFileSync(path.join(tc.dir, 'operators', `${path.basename(store)}.secret`), 'utf8')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
  });

  it('status shows every process healthy with its key count', async () => {
    const { stdout } = await tc.mpchsm('status', '--dir', tc.dir, '--json');
    const s = JSON.parse(stdout);
    expect(s.running).toBe(true);
    expect(s.processes).toHaveLength(4);
    for (const p of s.processes) expect(p.state).toBe('healthy');
    for (const p of s.processes.filter((x: { name: string }) => x.name !== 'gateway')) expect(p.keys).toBe(2);
  });

  it('every process runs with core dumps off, soft and hard, whatever limit it was started under', () => {
    const c = tc.cluster();
    const pids = [c.gateway.pid, ...c.signers.map((s) => s.pid)];
    expect(pids).toHaveLength(4);
    for (const pid of pids) expect(coreLimits(pid)).toEqual({ soft: 0, hard: 0 });
  });

  it('signs with Ed25519 (FROST) and RSA (Shoup) keys', async () => {
    await signAndCheck(keys.ed25519);
    await signAndCheck(keys.rsa);
  });

  it('keeps every key across a restart', async () => {
    await tc.down();
    await tc.up();
    await signAndCheck(keys.ed25519);
    await signAndCheck(keys.rsa);
  }, 120_000);

  it('a slow signer costs a bounded timeout; the request succeeds with the others', async () => {
    const slow = tc.cluster().signers[0]!.pid;
    kill(slow, 'SIGSTOP');
    try {
      const started = Date.now();
      await signAndCheck(keys.ed25519);
      await signAndCheck(keys.rsa);
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      kill(slow, 'SIGCONT');
    }
  }, 60_000);

  it('one signer killed: requests still succeed; two killed: a clear error within seconds', async () => {
    const [a, b] = tc.cluster().signers;
    const pending = signAndCheck(keys.rsa);
    kill(a!.pid, 'SIGKILL'); // possibly mid-session
    await pending;
    await signAndCheck(keys.ed25519);
    kill(b!.pid, 'SIGKILL');
    const started = Date.now();
    await expect(signAndCheck(keys.ed25519)).rejects.toThrow(/reachable|signer/i);
    expect(Date.now() - started).toBeLessThan(15_000);
    await tc.down();
    await tc.up();
    await signAndCheck(keys.ed25519);
  }, 120_000);

  it('the gateway never holds share bytes: not in its files, not in its log', async () => {
    // Read the shares the way only the signers can (with their operator secrets).
    const secrets: string[] = [];
    for (const s of tc.cluster().signers) {
      const store = await ShareStore.open(path.join(tc.dir, 'signers', s.name, 'store'), readFileSync(path.join(tc.dir, 'operators', `${s.name}.secret`), 'utf8'));
      for (const name of (await store.list()).filter((n) => n.startsWith('key.'))) {
        // Decoded as the signer decodes it: the share's secret as bytes (an RSA share's integer as hex).
        const held = decodeRecord((await store.get(name))!);
        secrets.push('ec' in held ? toHex(held.ec.secretShare) : held.rsa.share.s.toString(16).padStart(2 * Math.ceil(held.rsa.share.s.toString(16).length / 2), '0'));
      }
      store.close();
    }
    expect(secrets).toHaveLength(6);
    const forms = secrets.flatMap((h: string) => [h, Buffer.from(h, 'hex').toString('base64'), BigInt('0x' + h).toString(10)]);
    const files = [...walk(path.join(tc.dir, 'gateway')), path.join(tc.dir, 'logs', 'gateway.log'), path.join(tc.dir, 'cluster.json')];
    for (const f of files) {
      const text = readFileSync(f).toString('latin1');
      for (const s of forms) expect(text.includes(s), `${f} contains share bytes`).toBe(false);
    }
  });

  it('a signer whose store was tampered with refuses to start, naming the file', async () => {
    await tc.down();
    const store = path.join(tc.dir, 'signers', 'signer2', 'store');
    const victim = path.join(store, readdirSync(store).find((f) => f.startsWith('key.'))!);
    const original = readFileSync(victim);
    const bad = Buffer.from(original);
    bad[bad.length - 5]! ^= 0x01;
    writeFileSync(victim, bad);
    try {
      const started = Date.now();
      await expect(tc.up()).rejects.toThrow(/signer2 did not start: it exited with status 1; the last lines of .*signer2\.log:\n.*identity|key\./s);
      expect(Date.now() - started).toBeLessThan(10_000); // reported as it exits, not after the 30 s health wait
      expect(readFileSync(path.join(tc.dir, 'logs', 'signer2.log'), 'utf8')).toContain(victim);
    } finally {
      writeFileSync(victim, original);
    }
    await tc.up();
    await signAndCheck(keys.rsa);
  }, 120_000);
});

function* walk(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}
