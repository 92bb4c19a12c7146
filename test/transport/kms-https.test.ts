// The KMS endpoint over HTTPS: given a certificate in its configuration (`tls`, files relative
// to the gateway directory), the gateway serves the KMS API over TLS; the AWS SDK, trusting
// that certificate, lists keys and signs; plain HTTP to the same port gets no answer.
import { execFileSync } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { CreateKeyCommand, GetPublicKeyCommand, KMSClient, ListKeysCommand, SignCommand } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { killGateway, restartGateway } from '../faults/gateway-restart.js';

let tc: TestCluster;
let cert: Buffer;
let endpoint: string;
const agents: https.Agent[] = [];

beforeAll(async () => {
  tc = await startCluster();
  // A certificate for 127.0.0.1, as an operator would bring one; the gateway is restarted on it.
  const tlsDir = path.join(tc.dir, 'gateway', 'tls');
  mkdirSync(tlsDir, { mode: 0o700 });
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(tlsDir, 'kms.key'), '-out', path.join(tlsDir, 'kms.crt'),
  ], { stdio: 'ignore' });
  cert = readFileSync(path.join(tlsDir, 'kms.crt'));
  await killGateway(tc);
  const file = path.join(tc.dir, 'gateway', 'config.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), tls: { cert: 'tls/kms.crt', key: 'tls/kms.key' } }, null, 2));
  endpoint = `https://127.0.0.1:${tc.port}`;
  await restartGateway(tc, endpoint);
}, 180_000);

afterAll(async () => {
  for (const a of agents) a.destroy();
  await tc?.destroy();
}, 120_000);

/** A KMS client for a principal that trusts the gateway's certificate (and nothing else). */
function client(name: string): KMSClient {
  const p = tc.principal(name);
  const httpsAgent = new https.Agent({ ca: cert, keepAlive: true });
  agents.push(httpsAgent);
  return new KMSClient({
    endpoint,
    region: p.AWS_REGION,
    credentials: { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY },
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ httpsAgent }),
  });
}

describe('the KMS endpoint with a certificate', () => {
  it('serves the SDK over HTTPS: ListKeys and a Sign that verifies', async () => {
    const keyId = (await client('admin1').send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
    const app = client('app');
    expect((await app.send(new ListKeysCommand({}))).Keys?.map((k) => k.KeyId)).toContain(keyId);
    const message = Buffer.from('signed over HTTPS');
    const { Signature } = await app.send(new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }));
    const { PublicKey } = await app.send(new GetPublicKeyCommand({ KeyId: keyId }));
    expect(verify('sha256', message, createPublicKey({ key: Buffer.from(PublicKey!), format: 'der', type: 'spki' }), Signature!)).toBe(true);
  });

  it('is refused by a client that does not trust the certificate', async () => {
    const p = tc.principal('app');
    const untrusting = new KMSClient({ endpoint, region: p.AWS_REGION, credentials: { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY }, maxAttempts: 1 });
    await expect(untrusting.send(new ListKeysCommand({}))).rejects.toThrow(/self[- ]signed|certificate/i);
    untrusting.destroy();
  });

  it('answers nothing to plain HTTP on the same port', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get(`http://127.0.0.1:${tc.port}/health`, { agent: false }, (res) => resolve(`HTTP ${res.statusCode}`));
      req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
      req.on('error', (e) => resolve(`error: ${e.message}`));
    });
    expect(outcome).toMatch(/^error: /);
  });
});
