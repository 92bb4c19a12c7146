// Issue #25, logs: a full run through `mpchsm up` (software seal: each operator's passphrase in
// DIR/operators) — RSA, P-256 and Ed25519 keys made; each signs through the KMS API and through
// the PKCS#11 module (the application's PIN), which is once refused; a symmetric key's
// GenerateDataKey and Decrypt; a signature approved per digest with `mpchsm approve-sign`; a key's
// shares refreshed — then every log file under DIR is read. The processes' logs (DIR/logs/*.log)
// and the PKCS#11 module's (principals/pkcs11.log) hold pino's JSON lines only. No line holds
// a passphrase, a PIN, a secret access key, an administrator's approval key, a data key's
// plaintext or a random output (base64 and hex), nor a JSON member named like a secret. And a
// request's log line correlates with the audit entries: `requestId` is the gateway entry's
// `detail.requestId`, `session` its `request` and the signers' entries' `request`; the module's
// line of a refusal names the gateway's requestId too (docs/operations.md, "Logs").
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { CreateKeyCommand, DecryptCommand, GenerateDataKeyCommand, GenerateRandomCommand, SignCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKM } from '../../contract/pkcs11/ck.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { signThroughModule } from '../p11/helpers.js';
import { auditEntries, createKey, createKeyTrio, kms, perSignaturePolicy, signsAndVerifies } from '../policy-cluster/helpers.js';

let tc: TestCluster;
/** Every secret value the run handled, as the test knows it. */
const secrets = new Map<string, string>();
/** The x-amzn-RequestId of a KMS Sign, and the id of a key signed with through the module. */
let kmsSignRequest: string;
let p11Key: string;

const keep = (what: string, value: string | Uint8Array | undefined) => {
  if (value === undefined) throw new Error(`${what}: no value`);
  if (typeof value === 'string') return void secrets.set(what, value);
  secrets.set(`${what} (base64)`, Buffer.from(value).toString('base64'));
  secrets.set(`${what} (hex)`, Buffer.from(value).toString('hex'));
};

/** Every file under `dir` whose name ends in .log. */
const logFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? logFiles(p) : f.endsWith('.log') ? [p] : [];
  });

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

/** A member name that would carry a secret, a share or a PIN. */
const SECRET_NAME = /share|secret|private|passphrase|password|^pin$|plaintext|seed|nonce/i;

/** Every member name in a parsed JSON value, at any depth. */
const names = (v: unknown): string[] =>
  v === null || typeof v !== 'object' ? [] : Object.entries(v).flatMap(([k, x]) => [...(Array.isArray(v) ? [] : [k]), ...names(x)]);

/** The JSON log lines of the processes `up` ran (DIR/logs), parsed. */
const processLog = (name: string): Record<string, unknown>[] => lines(path.join(tc.dir, 'logs', `${name}.log`)).map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  tc = await startCluster();
  for (const f of readdirSync(path.join(tc.dir, 'operators'))) keep(`operator passphrase ${f}`, readFileSync(path.join(tc.dir, 'operators', f), 'utf8').trim());
  for (const f of readdirSync(path.join(tc.dir, 'principals')).filter((n) => n.endsWith('.env'))) {
    const p = tc.principal(f.slice(0, -'.env'.length));
    keep(`${f} secret access key`, p.AWS_SECRET_ACCESS_KEY);
    keep(`${f} PIN`, p.MPCHSM_PKCS11_PIN);
  }
  for (const f of readdirSync(path.join(tc.dir, 'principals')).filter((n) => n.endsWith('.approval.key'))) keep(`${f}`, Buffer.from(readFileSync(path.join(tc.dir, 'principals', f), 'utf8').trim(), 'hex'));
  const app = kms(tc, 'app');

  // Keys of every family; each signs through the KMS API and through the module.
  const { keys, publicKeys } = await createKeyTrio(tc);
  const message = new TextEncoder().encode('logged, never its content');
  expect(await signsAndVerifies(tc, keys.ed, publicKeys[keys.ed]!, 'ED25519_SHA_512', message)).toBe(true);
  expect(await signsAndVerifies(tc, keys.ec, publicKeys[keys.ec]!, 'ECDSA_SHA_256', message)).toBe(true);
  expect(await signsAndVerifies(tc, keys.rsa, publicKeys[keys.rsa]!, 'RSASSA_PSS_SHA_256', message)).toBe(true);
  const signed = await app.send(new SignCommand({ KeyId: keys.ed, Message: message, SigningAlgorithm: 'ED25519_SHA_512' }));
  kmsSignRequest = signed.$metadata.requestId!;
  p11Key = keys.ec;
  const viaModule = signThroughModule(tc.principal('app'), [
    { keyId: keys.ed, mechanism: CKM.EDDSA, message },
    { keyId: keys.ec, mechanism: CKM.ECDSA_SHA256, message },
    { keyId: keys.rsa, mechanism: CKM.SHA256_RSA_PKCS, message },
  ]);
  expect(viaModule.every((s) => s.length > 0)).toBe(true);
  // A refusal: more than CKM_RSA_PKCS can sign with a 2048-bit key.
  expect(() => signThroughModule(tc.principal('app'), [{ keyId: keys.rsa, mechanism: CKM.RSA_PKCS, message: new Uint8Array(300) }])).toThrow(/CKR_DATA_LEN_RANGE/);

  // Data keys: the plaintexts GenerateDataKey and Decrypt answered, and random bytes.
  const sym = (await kms(tc, 'admin1').send(new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' }))).KeyMetadata!.KeyId!;
  const dataKey = await app.send(new GenerateDataKeyCommand({ KeyId: sym, KeySpec: 'AES_256' }));
  keep('data key', dataKey.Plaintext);
  const decrypted = await app.send(new DecryptCommand({ KeyId: sym, CiphertextBlob: dataKey.CiphertextBlob }));
  expect(Buffer.from(decrypted.Plaintext!).equals(Buffer.from(dataKey.Plaintext!))).toBe(true);
  keep('random bytes', (await app.send(new GenerateRandomCommand({ NumberOfBytes: 32 }))).Plaintext);

  // A signature approved per digest by an administrator.
  const release = new TextEncoder().encode('release contents');
  const approvedKey = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY', Policy: perSignaturePolicy('111122223333', 1) });
  await tc.mpchsm('approve-sign', '--key', approvedKey, '--digest', createHash('sha512').update(release).digest('hex'), '--algorithm', 'ED25519_SHA_512', '--as', 'admin1', '--dir', tc.dir, '--json');
  expect((await app.send(new SignCommand({ KeyId: approvedKey, Message: release, SigningAlgorithm: 'ED25519_SHA_512' }))).Signature).toHaveLength(64);

  // A refresh of a key's shares.
  await tc.mpchsm('key', 'refresh', keys.ec, '--as', 'admin1', '--dir', tc.dir, '--json');
  app.destroy();
  // Stopped, so that every process has written its last line.
  await tc.down();
}, 600_000);

afterAll(async () => {
  await tc?.destroy();
});

describe('the logs of a full run', () => {
  it('are the processes’ logs and the module’s, and each line is JSON in pino’s shape', () => {
    const files = logFiles(tc.dir).map((f) => path.relative(tc.dir, f)).sort();
    expect(files).toEqual(['logs/gateway.log', 'logs/signer1.log', 'logs/signer2.log', 'logs/signer3.log', 'principals/pkcs11.log']);
    for (const f of files) {
      const all = lines(path.join(tc.dir, f));
      expect(all.length, f).toBeGreaterThan(0);
      for (const line of all) {
        expect(JSON.parse(line), `${f}: ${line}`).toMatchObject({ level: expect.any(Number), time: expect.any(Number), msg: expect.any(String) });
      }
    }
  });

  it('hold no passphrase, PIN, secret access key, approval key, data key, random output, nor a member named like a secret', () => {
    // 4 operators, 5 principals' secret key and PIN, 3 approval keys, the data key and random bytes (base64, hex).
    expect(secrets.size).toBe(4 + 5 * 2 + 3 * 2 + 2 * 2);
    for (const [what, value] of secrets) expect(value.length, what).toBeGreaterThanOrEqual(8);
    for (const file of logFiles(tc.dir)) {
      for (const line of lines(file)) {
        for (const [what, value] of secrets) expect(line.includes(value), `${what} in ${file}: ${line}`).toBe(false);
        for (const name of names(JSON.parse(line))) expect(name, `${file}: ${line}`).not.toMatch(SECRET_NAME);
      }
    }
  });

  it('name each KMS and PKCS#11 request by the ids its audit entries carry, at the gateway and at the signers', () => {
    const gateway = processLog('gateway');
    const gatewayAudit = auditEntries(tc, 'gateway');
    const signerAudits = ['signer1', 'signer2', 'signer3'].map((s) => auditEntries(tc, s));
    const signerLogs = ['signer1', 'signer2', 'signer3'].map(processLog);
    const kmsLine = gateway.find((l) => l.msg === 'kms' && l.requestId === kmsSignRequest);
    const p11Line = gateway.find((l) => l.msg === 'pkcs11' && l.op === 'sign' && l.keyId === p11Key);
    for (const line of [kmsLine, p11Line]) {
      expect(line).toBeDefined();
      expect(line!.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(line!.session).toMatch(/^[0-9a-f-]{36}$/);
      // The gateway's entry: `request` is the session, `detail.requestId` the line's id.
      const entry = gatewayAudit.find((e) => (e.detail as { requestId?: string } | undefined)?.requestId === line!.requestId && e.outcome === 'ok');
      expect(entry, JSON.stringify(line)).toBeDefined();
      expect(entry!.request).toBe(line!.session);
      // The signers that signed recorded the same session, and logged a call under it.
      const signedBy = (entry!.signers as { name: string }[]).map((s) => s.name);
      expect(signedBy).toHaveLength(2);
      for (const name of signedBy) {
        const i = Number(name.slice('signer'.length)) - 1;
        expect(signerAudits[i]!.some((e) => e.request === line!.session && e.output === 'partial'), name).toBe(true);
        expect(signerLogs[i]!.some((l) => l.msg === 'call' && l.request === line!.session && l.outcome === 'ok'), name).toBe(true);
      }
    }
  });

  it('name, in the module’s line of a refusal, the request id of the gateway’s line and audit entry', () => {
    const refused = lines(path.join(tc.dir, 'principals', 'pkcs11.log'))
      .map((l) => JSON.parse(l) as { level: number; msg: string; requestId?: string })
      .find((l) => /^C_Sign: refused \(CKR 0x21\): /.test(l.msg));
    expect(refused).toMatchObject({ level: 40, requestId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(processLog('gateway').find((l) => l.msg === 'pkcs11' && l.requestId === refused!.requestId)).toMatchObject({ op: 'sign', rv: 0x21 });
    expect(auditEntries(tc, 'gateway').find((e) => (e.detail as { requestId?: string } | undefined)?.requestId === refused!.requestId)).toMatchObject({ op: 'pkcs11.sign' });
  });
});
