// cli/approve.ts call() — how doctor, audit verify and the administrators' commands reach the
// gateway — over HTTPS: it trusts the certificate its env file names (AWS_CA_BUNDLE), as the AWS
// SDKs do, and refuses an endpoint whose certificate it was not given.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../../cli/approve.js';
import { formatEnvFile } from '../../cli/env-file.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-test-https-call-'));
let server: https.Server;
let endpoint: string;
const seen: { target?: string; auth?: string }[] = [];

beforeAll(async () => {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'kms.key'), '-out', path.join(dir, 'kms.crt'),
  ], { stdio: 'ignore' });
  server = https.createServer({ key: readFileSync(path.join(dir, 'kms.key')), cert: readFileSync(path.join(dir, 'kms.crt')) }, (req, res) => {
    seen.push({ target: req.headers['x-amz-target'] as string, auth: req.headers.authorization });
    req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify({ ok: true })));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const env = (name: string, extra: Record<string, string>) =>
  writeFileSync(path.join(dir, `${name}.env`), formatEnvFile({ AWS_ACCESS_KEY_ID: 'AKIATEST', AWS_SECRET_ACCESS_KEY: 's'.repeat(40), AWS_REGION: 'eu-west-1', MPCHSM_KMS_ENDPOINT: endpoint, ...extra }));

describe('call() to an HTTPS gateway', () => {
  it('trusts the certificate AWS_CA_BUNDLE names, and signs the request', async () => {
    env('trusting', { AWS_CA_BUNDLE: path.join(dir, 'kms.crt') });
    expect(await call(dir, 'trusting', 'MpcHsm.Posture', { Nonce: 'ab'.repeat(16) })).toEqual({ ok: true });
    expect(seen.at(-1)).toMatchObject({ target: 'MpcHsm.Posture', auth: expect.stringMatching(/^AWS4-HMAC-SHA256 Credential=AKIATEST\//) });
  });

  it('refuses the endpoint without it', async () => {
    env('untrusting', {});
    await expect(call(dir, 'untrusting', 'MpcHsm.Posture', { Nonce: 'ab'.repeat(16) })).rejects.toThrow(/self[- ]signed|certificate/i);
  });
});
