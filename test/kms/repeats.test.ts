import { describe, expect, it } from 'vitest';
import { RepeatAnswers, type Answer } from '../../gateway/kms/repeats.js';
import type { ReceivedRequest } from '../../policy/sigv4.js';

const amzDate = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');
const request = (body: string, at: number, extra: Record<string, string[]> = {}): ReceivedRequest => ({
  method: 'POST',
  path: '/',
  query: {},
  headers: {
    authorization: ['AWS4-HMAC-SHA256 Credential=MPCAPP/20260101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=' + 'ab'.repeat(32)],
    host: ['127.0.0.1:4600'],
    'x-amz-date': [amzDate(at)],
    'x-amz-target': ['TrentService.Sign'],
    ...extra,
  },
  body: Buffer.from(body),
});
const answer = (requestId: string, operation = 'Sign'): Answer => ({ requestId, operation, keyId: 'k', body: `{"r":"${requestId}"}` });

describe('repeat answers', () => {
  it('a byte-identical request waits for the first and gets its answer; others run', async () => {
    let now = Date.UTC(2026, 0, 1);
    const r = new RepeatAnswers(() => now);
    const first = await r.claim(request('{"a":1}', now));
    if (!('settle' in first)) throw new Error('the first request has no slot');
    const waiting = r.claim(request('{"a":1}', now));
    // Unsigned headers do not make another request; another body or date does.
    expect('settle' in (await r.claim(request('{"a":2}', now)))).toBe(true);
    expect('settle' in (await r.claim(request('{"a":1}', now + 1000)))).toBe(true);
    first.settle(answer('r1'));
    expect(await waiting).toEqual({ earlier: answer('r1') });
    expect(await r.claim(request('{"a":1}', now, { 'user-agent': ['other'] }))).toEqual({ earlier: answer('r1') });
    // Past the request's window, nothing is answered from memory.
    now += 5 * 60_000 + 1;
    expect('settle' in (await r.claim(request('{"a":1}', Date.UTC(2026, 0, 1))))).toBe(true);
  });

  it('a failed first request leaves its repeats to run; plaintext answers are not kept', async () => {
    const now = Date.UTC(2026, 0, 1);
    const r = new RepeatAnswers(() => now);
    const first = await r.claim(request('{"b":1}', now));
    const waiting = r.claim(request('{"b":1}', now));
    if (!('settle' in first)) throw new Error('no slot');
    first.settle(undefined);
    const second = await waiting;
    expect('settle' in second).toBe(true);
    if (!('settle' in second)) return;
    second.settle(answer('r2', 'Decrypt'));
    expect('settle' in (await r.claim(request('{"b":1}', now)))).toBe(true);
  });
});
