import { KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { CKM } from '../../contract/pkcs11/ck.js';
import { encodeValue } from '../../contract/pkcs11/wire.js';
import {
  derivePinKeys,
  loginKeyHash,
  macP11Request,
  sigv4Evidence,
  verifyEvidence,
  verifyP11Request,
  verifySigV4Request,
  type EvidenceExpectation,
  type P11Evidence,
} from '../../policy/evidence.js';
import type { ForwardedHttpRequest } from '../../policy/sigv4.js';
import { toHex } from '../../contract/bytes.js';
import { resolveKeyRef } from '../../policy/key-refs.js';
import { ACCOUNT, KEY_ARN, KEY_ID, NOW, REGION } from './fixtures.js';

const OTHER_KEY_ID = '0b5e7f3a-9c1d-4e2f-8a6b-3c4d5e6f7a8b';

const ACCESS_KEY = 'MPCAPPTESTKEY000001';
const SECRET = 'app-secret-access-key-0123456789';
const secretFor = (id: string) => (id === ACCESS_KEY ? { principal: 'app', secret: SECRET } : undefined);
const message = new TextEncoder().encode('hello, signers');
const aliases: Record<string, string> = { 'alias/release': KEY_ID, 'alias/else': OTHER_KEY_ID };
const resolveKey = (ref: string) => resolveKeyRef(ref, { region: REGION, account: ACCOUNT, aliasTarget: (a) => aliases[a] });
const expectSign: EvidenceExpectation = { operation: 'Sign', keyId: KEY_ID, resolveKey, keySpec: 'ECC_NIST_P256', algorithm: 'ECDSA_SHA_256', payload: message, messageType: 'RAW' };

async function signedRequest(opts: { target?: string; body?: Record<string, unknown>; at?: number; checksum?: boolean } = {}): Promise<ForwardedHttpRequest> {
  const body = new TextEncoder().encode(
    JSON.stringify(opts.body ?? { KeyId: KEY_ID, Message: Buffer.from(message).toString('base64'), MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }),
  );
  const signer = new SignatureV4({
    service: 'kms',
    region: REGION,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
    sha256: Hash.bind(null, 'sha256'),
    applyChecksum: opts.checksum ?? true,
  });
  const signed = await signer.sign(
    {
      method: 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 4600,
      path: '/',
      headers: { host: '127.0.0.1:4600', 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': opts.target ?? 'TrentService.Sign' },
      body,
    },
    { signingDate: new Date(opts.at ?? NOW) },
  );
  return { method: 'POST', path: '/', headers: signed.headers as Record<string, string>, body };
}
const verify = (req: ForwardedHttpRequest, over: Partial<Parameters<typeof verifySigV4Request>[1]> = {}) =>
  verifySigV4Request(req, { region: REGION, secretFor, expect: expectSign, now: NOW, seen: new Set(), ...over });

describe('SigV4 evidence', () => {
  it('verifies a real SigV4-signed Sign request and names the principal', async () => {
    const r = await verify(await signedRequest());
    expect(r).toMatchObject({ ok: true, principal: 'app', replayUntil: NOW + 301_000 });
    expect(r.ok && r.replayId).toMatch(/^sigv4:[0-9a-f]{64}$/);
    // Through the wire form and the common entry point too.
    const wire = JSON.parse(JSON.stringify(sigv4Evidence(await signedRequest())));
    expect(await verifyEvidence(wire, { region: REGION, secretFor, requestKeyFor: () => undefined, expect: expectSign, now: NOW, seen: new Set() })).toMatchObject({ ok: true, principal: 'app' });
  });

  it('verifies a request made by the AWS SDK (KMSClient) itself', async () => {
    let captured: ForwardedHttpRequest | undefined;
    const client = new KMSClient({
      region: REGION,
      endpoint: 'http://127.0.0.1:4600',
      credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
      requestHandler: {
        handle: async (req: { method: string; path: string; headers: Record<string, string>; body: string | Uint8Array }) => {
          captured = { method: req.method, path: req.path, headers: { ...req.headers }, body: typeof req.body === 'string' ? new TextEncoder().encode(req.body) : req.body };
          const out = JSON.stringify({ KeyId: KEY_ARN, Signature: 'AAAA', SigningAlgorithm: 'ECDSA_SHA_256' });
          return { response: { statusCode: 200, headers: { 'content-type': 'application/x-amz-json-1.1' }, body: Readable.from([Buffer.from(out)]) } };
        },
      } as never,
    });
    await client.send(new SignCommand({ KeyId: 'alias/release', Message: message, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect(captured).toBeDefined();
    const r = await verify(captured!, { now: Date.now() });
    expect(r).toMatchObject({ ok: true, principal: 'app' });
    const body = new TextEncoder().encode(new TextDecoder().decode(captured!.body).replace('ECDSA_SHA_256', 'ECDSA_SHA_384'));
    expect(await verify({ ...captured!, body }, { now: Date.now() })).toEqual({ ok: false, reason: 'x-amz-content-sha256 does not match the body' });
  });

  it('refuses an altered body, date, key, target or signature', async () => {
    const req = await signedRequest();
    const otherBody = new TextEncoder().encode(new TextDecoder().decode(req.body).replace(Buffer.from(message).toString('base64'), Buffer.from('evil').toString('base64')));
    // The signed x-amz-content-sha256 catches it first; without that header, the HMAC does.
    expect(await verify({ ...req, body: otherBody })).toEqual({ ok: false, reason: 'x-amz-content-sha256 does not match the body' });
    const bare = await signedRequest({ checksum: false });
    expect(bare.headers['x-amz-content-sha256']).toBeUndefined();
    expect(await verify(bare)).toMatchObject({ ok: true });
    expect(await verify({ ...bare, body: otherBody })).toEqual({ ok: false, reason: 'the SigV4 signature does not verify' });
    const h = req.headers as Record<string, string>;
    expect(await verify({ ...req, headers: { ...h, 'x-amz-date': h['x-amz-date']!.replace(/\d\dZ$/, '59Z') } })).toEqual({ ok: false, reason: 'the SigV4 signature does not verify' });
    expect(await verify({ ...req, headers: { ...h, 'x-amz-target': 'TrentService.Verify' } })).toEqual({ ok: false, reason: 'the SigV4 signature does not verify' });
    const flipped = h.authorization!.replace(/Signature=(.)/, (_m, c: string) => `Signature=${c === '0' ? '1' : '0'}`);
    expect(await verify({ ...req, headers: { ...h, authorization: flipped } })).toEqual({ ok: false, reason: 'the SigV4 signature does not verify' });
    // A request for another key, properly signed, is not evidence for this one.
    const other = await signedRequest({ body: { KeyId: 'alias/other', Message: Buffer.from(message).toString('base64'), SigningAlgorithm: 'ECDSA_SHA_256' } });
    expect(await verify(other)).toEqual({ ok: false, reason: 'the request names key "alias/other", not this key' });
    expect(await verify(await signedRequest(), { secretFor: () => ({ principal: 'app', secret: 'wrong-secret-0123456789' }) })).toEqual({ ok: false, reason: 'the SigV4 signature does not verify' });
  });

  it('refuses what differs from what the signer is asked to do', async () => {
    const req = await signedRequest();
    expect(await verify(req, { expect: { ...expectSign, payload: new TextEncoder().encode('other') } })).toEqual({ ok: false, reason: 'the request signs a different message' });
    expect(await verify(req, { expect: { ...expectSign, algorithm: 'ECDSA_SHA_384' } })).toMatchObject({ ok: false, reason: expect.stringContaining('algorithm ECDSA_SHA_256, not ECDSA_SHA_384') });
    expect(await verify(req, { expect: { ...expectSign, messageType: 'DIGEST' } })).toMatchObject({ ok: false, reason: expect.stringContaining("MessageType is RAW") });
    expect(await verify(req, { expect: { ...expectSign, keyId: OTHER_KEY_ID } })).toMatchObject({ ok: false, reason: expect.stringContaining('not this key') });
    // A signed Verify (same body shape) is not a Sign.
    const verifyReq = await signedRequest({ target: 'TrentService.Verify' });
    expect(await verify(verifyReq)).toEqual({ ok: false, reason: 'the signed request is TrentService.Verify, not TrentService.Sign' });
    expect(await verify(await signedRequest({ body: { KeyId: KEY_ID, Message: Buffer.from(message).toString('base64'), SigningAlgorithm: 'ECDSA_SHA_256', DryRun: true } }))).toMatchObject({
      ok: false,
      reason: 'the request is a dry run',
    });
  });

  it('refuses stale, unknown, wrong-region and replayed requests', async () => {
    const req = await signedRequest();
    expect(await verify(req, { now: NOW + 5 * 60_000 + 1000 })).toMatchObject({ ok: false, reason: expect.stringContaining('more than 5 minutes') });
    expect(await verify(await signedRequest({ at: NOW + 6 * 60_000 }))).toMatchObject({ ok: false, reason: expect.stringContaining('more than 5 minutes') });
    expect(await verify(req, { secretFor: () => undefined })).toMatchObject({ ok: false, reason: expect.stringContaining('is not registered at this signer') });
    expect(await verify(req, { region: 'eu-west-1' })).toMatchObject({ ok: false, reason: expect.stringContaining('not eu-west-1/kms') });
    const first = await verify(req);
    if (!first.ok) throw new Error(first.reason);
    expect(await verify(req, { seen: new Set([first.replayId]) })).toEqual({ ok: false, reason: 'this signed request was already used (replay)' });
    const { authorization: _a, ...unsigned } = req.headers as Record<string, string>;
    expect(await verify({ ...req, headers: unsigned })).toMatchObject({ ok: false, reason: expect.stringContaining('Authorization') });
  });

  it('checks Decrypt bodies against the ciphertext and encryption algorithm', async () => {
    const ct = new Uint8Array(256).fill(7);
    const req = await signedRequest({ target: 'TrentService.Decrypt', body: { KeyId: KEY_ARN, CiphertextBlob: Buffer.from(ct).toString('base64'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' } });
    const expectDecrypt: EvidenceExpectation = { operation: 'Decrypt', keyId: KEY_ID, resolveKey, keySpec: 'RSA_2048', algorithm: 'RSAES_OAEP_SHA_256', payload: ct };
    expect(await verify(req, { expect: expectDecrypt })).toMatchObject({ ok: true });
    expect(await verify(req, { expect: { ...expectDecrypt, payload: new Uint8Array(256) } })).toEqual({ ok: false, reason: 'the request decrypts a different ciphertext' });
    expect(await verify(req)).toMatchObject({ ok: false, reason: expect.stringContaining('TrentService.Decrypt, not TrentService.Sign') });
  });
});

describe('PKCS#11 evidence', () => {
  const kdf = { salt: '5a'.repeat(16), iterations: 1000 };
  const { loginKey, requestKey } = derivePinKeys('123456', kdf);
  const digest = createHash('sha256').update(message).digest();
  // What the module sends for C_Sign with CKM_ECDSA_SHA256 after hashing the data itself.
  const request = (over: Partial<P11Evidence> = {}): Omit<P11Evidence, 'mac'> => ({
    kind: 'p11',
    operation: 'Sign',
    principal: 'app',
    timestamp: NOW,
    nonce: '01'.repeat(16),
    key: `k:${KEY_ID}:priv`,
    mechanism: CKM.ECDSA_SHA256,
    params: encodeValue([]).toString('hex'),
    input: digest.toString('hex'),
    isDigest: 1,
    ...over,
  });
  const expectDigest: EvidenceExpectation = { ...expectSign, messageType: 'DIGEST', payload: digest };
  const opts = (over: Partial<Parameters<typeof verifyP11Request>[1]> = {}) => ({
    requestKeyFor: (p: string) => (p === 'app' ? requestKey : undefined),
    expect: expectDigest,
    now: NOW,
    seen: new Set<string>(),
    ...over,
  });

  it("derives two unrelated keys from PIN and salt; the gateway keeps only the login key's hash", () => {
    const again = derivePinKeys('123456', kdf);
    expect(again.loginKey).toEqual(loginKey);
    expect(again.requestKey).toEqual(requestKey);
    expect(toHex(loginKey)).not.toBe(toHex(requestKey));
    expect(derivePinKeys('123457', kdf).requestKey).not.toEqual(requestKey);
    expect(derivePinKeys('123456', { ...kdf, salt: '5b'.repeat(16) }).requestKey).not.toEqual(requestKey);
    expect(derivePinKeys('123456', { ...kdf, iterations: 1001 }).requestKey).not.toEqual(requestKey);
    expect(loginKeyHash(loginKey)).toBe(createHash('sha256').update(loginKey).digest('hex'));
    expect(() => derivePinKeys('123456', { ...kdf, iterations: 999 })).toThrow();
    expect(() => derivePinKeys('123456', { ...kdf, salt: 'ab' })).toThrow();
  });

  it("verifies a MAC'd request, reading its mechanism itself, and refuses it under another PIN", () => {
    const ev = macP11Request(request(), requestKey);
    expect(verifyP11Request(ev, opts())).toEqual({ ok: true, principal: 'app', keyRef: ev.key, replayId: `p11:app:${'01'.repeat(16)}`, replayUntil: NOW + 301_000 });
    expect(verifyP11Request(macP11Request(request(), derivePinKeys('000000', kdf).requestKey), opts())).toEqual({ ok: false, reason: 'the PKCS#11 request MAC of app does not verify' });
    // The login key — all a gateway ever sees — makes no valid request.
    expect(verifyP11Request(macP11Request(request(), loginKey), opts())).toMatchObject({ ok: false, reason: expect.stringContaining('does not verify') });
    // The raw data under CKM_ECDSA_SHA256, hashed by the signer: the same digest.
    expect(verifyP11Request(macP11Request(request({ input: toHex(message), isDigest: 0 }), requestKey), opts())).toMatchObject({ ok: true });
  });

  it('refuses tampering, mismatches, staleness, replays, strangers', () => {
    const ev = macP11Request(request(), requestKey);
    const forged = (over: Partial<P11Evidence>) => verifyP11Request({ ...ev, ...over }, opts());
    expect(forged({ input: '00'.repeat(32) })).toMatchObject({ ok: false, reason: expect.stringContaining('does not verify') });
    expect(forged({ mechanism: CKM.ECDSA })).toMatchObject({ ok: false, reason: expect.stringContaining('does not verify') });
    expect(forged({ timestamp: NOW + 1 })).toMatchObject({ ok: false, reason: expect.stringContaining('does not verify') });
    const mac = (over: Partial<P11Evidence>) => verifyP11Request(macP11Request(request(over), requestKey), opts());
    expect(mac({ key: `k:00000000-0000-4000-8000-000000000000:priv` })).toMatchObject({ ok: false, reason: expect.stringContaining('not this key') });
    expect(mac({ key: `k:${KEY_ID}:pub` })).toMatchObject({ ok: false, reason: expect.stringContaining('not this key') });
    expect(mac({ input: '00'.repeat(32) })).toMatchObject({ ok: false, reason: 'the request signs a different message' });
    expect(mac({ mechanism: CKM.ECDSA_SHA384, input: '00'.repeat(48) })).toMatchObject({ ok: false, reason: expect.stringContaining('different message') });
    expect(mac({ mechanism: CKM.RSA_PKCS })).toMatchObject({ ok: false, reason: expect.stringContaining('mechanism does not apply') });
    expect(mac({ operation: 'Decrypt' })).toMatchObject({ ok: false, reason: expect.stringContaining('is a Decrypt, not a Sign') });
    expect(verifyP11Request(ev, opts({ now: NOW + 301_000 }))).toMatchObject({ ok: false, reason: expect.stringContaining('more than 5 minutes') });
    expect(verifyP11Request(ev, opts({ seen: new Set([`p11:app:${'01'.repeat(16)}`]) }))).toMatchObject({ ok: false, reason: expect.stringContaining('replay') });
    expect(mac({ principal: 'mallory' })).toMatchObject({ ok: false, reason: expect.stringContaining('not enrolled') });
    // Parameters that are not one canonical list cannot mean two things.
    expect(forged({ params: encodeValue(7).toString('hex') })).toMatchObject({ ok: false, reason: expect.stringContaining('one wire-encoded list') });
    expect(verifyP11Request({ kind: 'p11', principal: 'app', mac: '' }, opts())).toMatchObject({ ok: false, reason: expect.stringContaining('malformed') });
  });

  it('goes through the common entry point', async () => {
    const ev = JSON.parse(JSON.stringify(macP11Request(request(), requestKey)));
    expect(await verifyEvidence(ev, { ...opts(), region: REGION, secretFor })).toMatchObject({ ok: true, principal: 'app' });
    expect(await verifyEvidence({ kind: 'carrier-pigeon' }, { ...opts(), region: REGION, secretFor })).toMatchObject({ ok: false, reason: expect.stringContaining('malformed evidence') });
  });
});
