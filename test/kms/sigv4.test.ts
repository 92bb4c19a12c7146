import { describe, expect, it } from 'vitest';
import { KmsError } from '../../gateway/kms/errors.js';
import { SigV4Error, amzDate, verifySigV4, type ReceivedRequest } from '../../policy/sigv4.js';
import { signRequest, type SignOptions } from './sign-request.js';

const creds = { accessKeyId: 'MPCTESTKEY0000000001', secretAccessKey: 'test-secret-access-key-0123456789' };
const HOST = '127.0.0.1:4600';
const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);

function verifier(now = NOW) {
  const secretFor = (id: string) => (id === creds.accessKeyId ? { principal: 'app', secret: creds.secretAccessKey } : undefined);
  return { verify: async (req: ReceivedRequest) => (await verifySigV4(req, { region: 'us-east-1', secretFor, now })).accessKeyId };
}

/** What the server would receive for a signed request (header names lower-cased, as node gives them). */
async function received(o: Partial<SignOptions> = {}, c = creds): Promise<ReceivedRequest> {
  const signed = await signRequest(c, { host: HOST, target: 'TrentService.ListKeys', date: new Date(NOW), ...o });
  const headers: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(signed.headers)) headers[k.toLowerCase()] = [v];
  return { method: 'POST', path: '/', query: {}, headers, body: signed.body };
}

async function rejection(p: Promise<unknown>): Promise<SigV4Error> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SigV4Error);
  return e as SigV4Error;
}

describe('SigV4 verification', () => {
  it('accepts a correctly signed request and returns its access key id', async () => {
    expect(await verifier().verify(await received())).toBe(creds.accessKeyId);
  });

  it('accepts requests signed up to 5 minutes either side of now', async () => {
    expect(await verifier(NOW + 299_000).verify(await received())).toBe(creds.accessKeyId);
    expect(await verifier(NOW - 299_000).verify(await received())).toBe(creds.accessKeyId);
  });

  it('refuses an unknown access key with UnrecognizedClientException', async () => {
    const e = await rejection(verifier().verify(await received({}, { ...creds, accessKeyId: 'MPCUNKNOWNKEY0000001' })));
    expect(e.type).toBe('UnrecognizedClientException');
    // The gateway answers it as this KMS error (gateway/governance.ts authenticate).
    expect(new KmsError(e.type, e.message).status).toBe(400);
  });

  it('refuses a wrong secret, a changed body and a changed signed header', async () => {
    const v = verifier();
    const wrongSecret = await received({}, { ...creds, secretAccessKey: 'not-the-secret-000000000000' });
    expect((await rejection(v.verify(wrongSecret))).type).toBe('InvalidSignatureException');

    const body = await received({ body: '{"Limit":1}' });
    body.body = new TextEncoder().encode('{"Limit":2}');
    const e = await rejection(v.verify(body));
    expect(e.type).toBe('InvalidSignatureException');
    expect(e.message).toMatch(/x-amz-content-sha256|signature we calculated/);

    const target = await received();
    target.headers['x-amz-target'] = ['TrentService.ScheduleKeyDeletion'];
    const e2 = await rejection(v.verify(target));
    expect(e2.type).toBe('InvalidSignatureException');
    expect(e2.message).toMatch(/signature we calculated does not match/);
  });

  it('a signed header that was not sent fails verification', async () => {
    const r = await received({ body: '{"Limit":1}' });
    delete r.headers['x-amz-content-sha256'];
    // The client signed the header; dropping it changes the canonical request.
    expect((await rejection(verifier().verify(r))).type).toBe('InvalidSignatureException');
  });

  it('refuses an x-amz-content-sha256 that is not the body hash', async () => {
    const r = await received({ headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    const e = await rejection(verifier().verify(r));
    expect(e.type).toBe('InvalidSignatureException');
    expect(e.message).toMatch(/x-amz-content-sha256/);
  });

  it("refuses expired and future requests with AWS's wording", async () => {
    const old = await rejection(verifier(NOW + 301_000).verify(await received()));
    expect(old.type).toBe('InvalidSignatureException');
    expect(old.message).toBe(`Signature expired: ${amzDate(NOW)} is now earlier than ${amzDate(NOW + 1000)} (${amzDate(NOW + 301_000)} - 5 min.)`);
    const future = await rejection(verifier(NOW - 301_000).verify(await received()));
    expect(future.type).toBe('InvalidSignatureException');
    expect(future.message).toMatch(/^Signature not yet current: /);
  });

  it('authenticates a byte-identical repeat within the window, as AWS does', async () => {
    const v = verifier();
    const r = await received();
    await v.verify(r);
    expect(await v.verify(r)).toBe(creds.accessKeyId);
    // Another request (new signature) from the same principal is fine.
    expect(await v.verify(await received({ body: '{"Limit":5}' }))).toBe(creds.accessKeyId);
  });

  it('checks region, service and terminator of the credential scope', async () => {
    const region = await rejection(verifier().verify(await received({ region: 'eu-west-1' })));
    expect(region.type).toBe('InvalidSignatureException');
    expect(region.message).toMatch(/region/);
    const service = await rejection(verifier().verify(await received({ service: 's3' })));
    expect(service.type).toBe('InvalidSignatureException');
    expect(service.message).toMatch(/service: 'kms'/);
    const r = await received();
    r.headers.authorization = [r.headers.authorization![0]!.replace('/aws4_request', '/aws5_request')];
    expect((await rejection(verifier().verify(r))).message).toMatch(/terminator/);
  });

  it('requires the scope date to be the X-Amz-Date day', async () => {
    const r = await received();
    r.headers.authorization = [r.headers.authorization![0]!.replace(/\/\d{8}\//, '/20250114/')];
    const e = await rejection(verifier().verify(r));
    expect(e.type).toBe('InvalidSignatureException');
    expect(e.message).toMatch(/Date in Credential scope/);
  });

  it('names missing and malformed authorization', async () => {
    const r = await received();
    delete r.headers.authorization;
    expect((await rejection(verifier().verify(r))).type).toBe('MissingAuthenticationTokenException');

    for (const bad of ['Bearer abc', 'AWS4-HMAC-SHA256 Credential=x/y', 'AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=' + '0'.repeat(64)]) {
      const q = await received();
      q.headers.authorization = [bad];
      expect((await rejection(verifier().verify(q))).type).toBe('IncompleteSignatureException');
    }
    const noDate = await received();
    delete noDate.headers['x-amz-date'];
    expect((await rejection(verifier().verify(noDate))).type).toBe('IncompleteSignatureException');
    const twice = await received();
    twice.headers.authorization = [twice.headers.authorization![0]!, twice.headers.authorization![0]!];
    expect((await rejection(verifier().verify(twice))).type).toBe('IncompleteSignatureException');
  });

  it('refuses session tokens (mpchsm issues none)', async () => {
    const e = await rejection(verifier().verify(await received({ sessionToken: 'FwoGZXIvYXdzE' })));
    expect(e.type).toBe('UnrecognizedClientException');
  });

  it('requires host to be signed', async () => {
    const r = await received();
    r.headers.authorization = [r.headers.authorization![0]!.replace('SignedHeaders=', 'SignedHeaders=').replace(/host;/, '')];
    expect((await rejection(verifier().verify(r))).message).toMatch(/'Host' must be a 'SignedHeader'/);
  });

  it('honours headers the client chose to sign, even ones SDKs normally leave out', async () => {
    // A client (e.g. another SigV4 library) may sign user-agent, which smithy skips by default.
    const r = await received({ headers: { 'user-agent': 'custom-client/1.0' }, signHeaders: ['user-agent'] });
    expect(r.headers.authorization![0]).toMatch(/SignedHeaders=[^,]*user-agent/);
    expect(await verifier().verify(r)).toBe(creds.accessKeyId);
    const changed = await received({ headers: { 'user-agent': 'custom-client/1.0' }, signHeaders: ['user-agent'], body: '{"Limit":3}' });
    changed.headers['user-agent'] = ['custom-client/2.0'];
    expect((await rejection(verifier().verify(changed))).type).toBe('InvalidSignatureException');
  });
});
