// Byte-identical requests (same payload, same X-Amz-Date, one signature), as a script that signs
// the same digest twice within a second sends them: AWS serves each, and so does mpchsm — as the
// same request, answered once.
import { createPublicKey, randomUUID, verify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { auditEntries, createKey, publicKeyOf } from '../policy-cluster/helpers.js';
import { signRequest, type Signed } from './sign-request.js';

let tc: TestCluster;
let keyId: string;

beforeAll(async () => {
  tc = await startCluster();
  keyId = await createKey(tc, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
}, 180_000);
afterAll(() => tc?.destroy());

/** One request signed once, at one date, by `as`. */
async function signedOnce(as: string, target: string, body: object): Promise<Signed> {
  const p = tc.principal(as);
  return signRequest({ accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY }, { host: new URL(tc.endpoint).host, target, body: JSON.stringify(body), date: new Date() });
}

async function send(s: Signed): Promise<{ status: number; body: Record<string, unknown> }> {
  const { host: _host, ...headers } = s.headers;
  const res = await fetch(`${tc.endpoint}/`, { method: 'POST', headers, body: s.body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('repeats of a signed request', () => {
  it('10 byte-identical Sign requests, in parallel and one after another, get 10 valid signatures', async () => {
    const message = Buffer.from(`digest me ${randomUUID()}`);
    const s = await signedOnce('app', 'TrentService.Sign', { KeyId: keyId, Message: message.toString('base64'), MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' });
    const answers = [...(await Promise.all(Array.from({ length: 5 }, () => send(s))))];
    for (let i = 0; i < 5; i++) answers.push(await send(s));
    const key = createPublicKey({ key: Buffer.from(await publicKeyOf(tc, keyId)), format: 'der', type: 'spki' });
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    for (const a of answers) expect(verify('sha256', message, key, Buffer.from(String(a.body.Signature), 'base64'))).toBe(true);
    // One signature was made; the gateway's transcript records the others as repeats of it.
    const entries = auditEntries(tc, 'gateway').filter((e) => e.op === 'Sign' && e.keyId === keyId && e.outcome === 'ok').slice(-10);
    expect(entries.filter((e) => e.output === 'signature')).toHaveLength(1);
    expect(entries.filter((e) => (e.detail as { repeatOf?: string }).repeatOf)).toHaveLength(9);
  });

  it('an identical CreateKey repeated returns the same key', async () => {
    const s = await signedOnce('admin1', 'TrentService.CreateKey', { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY', Description: `once ${randomUUID()}` });
    const [a, b] = await Promise.all([send(s), send(s)]);
    const c = await send(s);
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    const id = (a.body.KeyMetadata as { KeyId: string }).KeyId;
    for (const r of [b, c]) expect((r.body.KeyMetadata as { KeyId: string }).KeyId).toBe(id);
  });
});
