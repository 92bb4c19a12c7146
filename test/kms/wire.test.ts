// The KMS API on the wire, with raw fetch and hand-made SigV4: malformed bodies, bad
// signatures, clock skew, replays and unknown operations each get AWS's error name and shape,
// the gateway keeps serving after every one, the log holds one line per request and no body,
// and a lost quorum is the retryable DependencyTimeoutException. The application's requests are
// authenticated by a signer (the gateway holds no application secret) with the same answers.
// Requests here are ListKeys, which an application may call without the signers.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ListKeysCommand, SignCommand, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { createKey } from '../policy-cluster/helpers.js';
import { awsError, kmsClient } from './kms-client.js';
import { signRequest, type Credentials, type SignOptions } from './sign-request.js';

let tc: TestCluster;
let app: KMSClient;
let creds: Credentials;
let host: string;
let keyId: string;

interface Answer {
  status: number;
  contentType: string | null;
  body: Record<string, unknown>;
}

async function post(headers: Record<string, string>, body: Uint8Array | string): Promise<Answer> {
  const { host: _signedHost, ...rest } = headers; // fetch sets Host from the URL, as signed
  const res = await fetch(`${tc.endpoint}/`, { method: 'POST', headers: rest, body });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

let limit = 0;
/** Signs and sends (a ListKeys of its own, so no two requests sign alike); `bend` may alter the signed headers before sending. */
async function send(o: Partial<SignOptions> & { as?: Credentials; bend?: (h: Record<string, string>) => void } = {}): Promise<Answer> {
  const signed = await signRequest(o.as ?? creds, { host, target: 'TrentService.ListKeys', body: JSON.stringify({ Limit: 1 + (limit++ % 1000) }), ...o });
  o.bend?.(signed.headers);
  return post(signed.headers, signed.body);
}

function expectError(a: Answer, type: string, status = 400): void {
  expect(a.status, JSON.stringify(a.body)).toBe(status);
  expect(a.contentType).toBe('application/x-amz-json-1.1');
  expect(Object.keys(a.body).sort()).toEqual(['__type', 'message']);
  expect(a.body.__type).toBe(type);
  expect(String(a.body.message)).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/); // no stack trace
}


async function expectServing(): Promise<void> {
  expect((await app.send(new ListKeysCommand({}))).Keys).toBeDefined();
}

beforeAll(async () => {
  tc = await startCluster();
  app = kmsClient(tc, 'app');
  const p = tc.principal('app');
  creds = { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY };
  host = new URL(tc.endpoint).host;
  keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
}, 120_000);

afterAll(async () => {
  await tc?.destroy();
});

describe('a well-formed signed request', () => {
  it('gets a JSON 1.1 answer', async () => {
    const a = await send();
    expect(a.status).toBe(200);
    expect(a.contentType).toBe('application/x-amz-json-1.1');
    expect(a.body.Keys).toEqual([{ KeyId: keyId, KeyArn: expect.stringMatching(new RegExp(`:key/${keyId}$`)) }]);
  });
});

describe('bodies', () => {
  it('malformed JSON → SerializationException', async () => {
    expectError(await send({ body: '{"NumberOfBytes": 8,' }), 'SerializationException');
    expectError(await send({ body: '[8]' }), 'SerializationException');
    await expectServing();
  });

  it('wrong types → SerializationException; unknown fields, missing or out-of-range values → ValidationException', async () => {
    // Validation comes before authorisation: GenerateRandom's parameters are checked for anyone.
    const random = (o: Partial<SignOptions>) => send({ target: 'TrentService.GenerateRandom', ...o });
    expectError(await random({ body: '{"NumberOfBytes":"8"}' }), 'SerializationException');
    expectError(await send({ target: 'TrentService.DescribeKey', body: '{"KeyId":{"id":1}}' }), 'SerializationException');
    const unknown = await random({ body: '{"NumberOfBytes":8,"NumberOfByte":8}' });
    expectError(unknown, 'ValidationException');
    expect(unknown.body.message).toMatch(/'NumberOfByte'/);
    const missing = await send({ target: 'TrentService.DescribeKey', body: '{}' });
    expectError(missing, 'ValidationException');
    expect(missing.body.message).toMatch(/Value null at 'KeyId'/);
    expectError(await random({ body: '{"NumberOfBytes":2000}' }), 'ValidationException');
    await expectServing();
  });

  it('bad base64 → SerializationException', async () => {
    const a = await send({ target: 'TrentService.Sign', body: JSON.stringify({ KeyId: keyId, Message: 'SGVsbG8@@', SigningAlgorithm: 'ED25519_SHA_512' }) });
    expectError(a, 'SerializationException');
    expect(a.body.message).toMatch(/'Message' is not valid base64/);
    await expectServing();
  });

  it('an oversized body is refused before it is buffered (413)', async () => {
    const big = JSON.stringify({ NumberOfBytes: 8, pad: 'x'.repeat(300 * 1024) });
    expectError(await send({ body: big }), 'ValidationException', 413);
    await expectServing();
  });

  it('wrong Content-Type, unknown or missing operations, other paths', async () => {
    expectError(await send({ headers: { 'content-type': 'application/json' } }), 'SerializationException');
    for (const target of ['TrentService.Frobnicate', 'TrentService.toString', 'TrentService.__proto__', 'DynamoDB_20120810.GetItem', '']) {
      expectError(await send({ target }), 'UnknownOperationException');
    }
    const get = await fetch(`${tc.endpoint}/`);
    expect(get.status).toBe(404);
    expect(((await get.json()) as { __type: string }).__type).toBe('UnknownOperationException');
    await expectServing();
  });
});

describe('authentication', () => {
  it('no Authorization → MissingAuthenticationTokenException', async () => {
    expectError(await send({ bend: (h) => delete h.authorization }), 'MissingAuthenticationTokenException');
  });

  it('unknown access key → UnrecognizedClientException', async () => {
    expectError(await send({ as: { accessKeyId: 'MPC00000000000000000', secretAccessKey: creds.secretAccessKey } }), 'UnrecognizedClientException');
  });

  it('a session token or an oversized header from a known principal → a 4xx naming it, never a signer fault', async () => {
    expectError(await send({ sessionToken: 'x'.repeat(9000) }), 'UnrecognizedClientException');
    const big = await send({ headers: { 'x-custom': 'y'.repeat(9000) }, signHeaders: ['x-custom'] });
    expectError(big, 'ValidationException');
    expect(String(big.body.message)).toMatch(/x-custom/);
    await expectServing();
  });

  it('headers beyond the listener\'s limit (16 KiB) or unparsable HTTP → a 4xx in AWS\'s shape, never a 500 or a reset', async () => {
    for (const o of [{ sessionToken: 'x'.repeat(17_000) }, { sessionToken: 'x'.repeat(100_000) }, { headers: { 'x-custom': 'y'.repeat(70_000) } }]) {
      const a = await send(o);
      expectError(a, 'ValidationException', 431);
      expect(String(a.body.message)).toMatch(/headers exceed 16384 bytes/);
    }
    const raw = await new Promise<string>((resolve, reject) => {
      const s = net.connect(tc.port, '127.0.0.1', () => s.write('POST / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n'));
      let text = '';
      s.on('data', (d) => (text += d));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    const [head, body] = raw.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1.1 400 /);
    expect(head).toMatch(/content-type: application\/x-amz-json-1.1/i);
    expect(JSON.parse(body!)).toMatchObject({ __type: 'SerializationException' });
    await expectServing();
  });

  it('bad signature, wrong secret, tampered body → InvalidSignatureException', async () => {
    const flipped = await send({ bend: (h) => (h.authorization = h.authorization!.replace(/Signature=(.)/, (_, c: string) => `Signature=${c === '0' ? '1' : '0'}`)) });
    expectError(flipped, 'InvalidSignatureException');
    expect(flipped.body.message).toMatch(/signature we calculated does not match/);
    expectError(await send({ as: { ...creds, secretAccessKey: 'x'.repeat(40) } }), 'InvalidSignatureException');
    const signed = await signRequest(creds, { host, target: 'TrentService.GenerateRandom', body: '{"NumberOfBytes":8}' });
    expectError(await post(signed.headers, '{"NumberOfBytes":9}'), 'InvalidSignatureException');
    await expectServing();
  });

  it('a credential scope for another region or service → InvalidSignatureException', async () => {
    expectError(await send({ region: 'eu-central-1' }), 'InvalidSignatureException');
    expectError(await send({ service: 'sts' }), 'InvalidSignatureException');
  });

  it('outside ±5 minutes → InvalidSignatureException, "Signature expired" / "not yet current"', async () => {
    const old = await send({ date: new Date(Date.now() - 6 * 60_000) });
    expectError(old, 'InvalidSignatureException');
    expect(old.body.message).toMatch(/^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)$/);
    const future = await send({ date: new Date(Date.now() + 6 * 60_000) });
    expectError(future, 'InvalidSignatureException');
    expect(future.body.message).toMatch(/^Signature not yet current: /);
    expect((await send({ date: new Date(Date.now() - 4 * 60_000) })).status).toBe(200);
  });

  it('a byte-identical repeat is the same request: answered as the first was', async () => {
    const signed = await signRequest(creds, { host, target: 'TrentService.ListKeys', body: '{"Limit":16}' });
    const first = await post(signed.headers, signed.body);
    expect(first.status).toBe(200);
    const again = await post(signed.headers, signed.body);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    // The same signature over another body is not a repeat: it does not authenticate.
    expectError(await post(signed.headers, '{"Limit":17}'), 'InvalidSignatureException');
    await expectServing();
  });
});

describe('the request log', () => {
  it('has one line per request with principal, operation, key and outcome, and no bodies or secrets', async () => {
    const marker = `PLAINTEXT-MARKER-${Date.now()}`;
    await app.send(new SignCommand({ KeyId: keyId, Message: new TextEncoder().encode(marker), SigningAlgorithm: 'ED25519_SHA_512' }));
    await awsError(app.send(new SignCommand({ KeyId: keyId, Message: new TextEncoder().encode(marker), SigningAlgorithm: 'RSASSA_PSS_SHA_256' })));
    const logFile = path.join(tc.dir, 'logs', 'gateway.log');
    let lines: Record<string, unknown>[] = [];
    const signOutcomes = () => lines.filter((l) => l.operation === 'Sign' && l.principal === 'app' && l.keyId === keyId).map((l) => l.outcome);
    for (let i = 0; i < 50 && !signOutcomes().includes('InvalidKeyUsageException'); i++) {
      await new Promise((r) => setTimeout(r, 100)); // the gateway's log may lag a little
      lines = readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"msg":"kms"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    }
    expect(signOutcomes()).toEqual(expect.arrayContaining(['ok', 'InvalidKeyUsageException']));
    expect(lines.some((l) => l.outcome === 'InvalidSignatureException')).toBe(true);
    expect(lines.some((l) => l.outcome === 'UnrecognizedClientException' && l.principal === undefined)).toBe(true);
    const text = readFileSync(logFile, 'utf8');
    for (const secret of [marker, Buffer.from(marker).toString('base64'), creds.secretAccessKey, tc.principal('admin1').AWS_SECRET_ACCESS_KEY]) {
      expect(text.includes(secret), 'log must not contain bodies or secrets').toBe(false);
    }
  });
});

describe('quorum loss', () => {
  it('is DependencyTimeoutException (503), which the SDK retries', async () => {
    // Last in this file: it stops two of the three signers of this test's own cluster.
    for (const s of tc.cluster().signers.slice(0, 2)) process.kill(s.pid, 'SIGKILL');
    const once = await awsError(app.send(new SignCommand({ KeyId: keyId, Message: new Uint8Array([1]), SigningAlgorithm: 'ED25519_SHA_512' })));
    expect([once.name, once.status]).toEqual(['DependencyTimeoutException', 503]);
    const retrying = kmsClient(tc, 'app', { maxAttempts: 3 });
    const e = await retrying.send(new SignCommand({ KeyId: keyId, Message: new Uint8Array([2]), SigningAlgorithm: 'ED25519_SHA_512' })).catch((err: { name: string; $metadata: { attempts?: number } }) => err);
    expect((e as { name: string }).name).toBe('DependencyTimeoutException');
    expect((e as { $metadata: { attempts?: number } }).$metadata.attempts).toBe(3);
    await expectServing();
  });
});
