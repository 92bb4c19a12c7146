import { describe, expect, it } from 'vitest';
import { takeToken, type BucketState } from '../../policy/rate-limit.js';

describe('takeToken', () => {
  it('allows a burst of perMinute, then refuses until tokens refill', () => {
    const limit = { perMinute: 3 };
    let state: BucketState | undefined;
    for (let i = 0; i < 3; i++) {
      const d = takeToken(limit, state, 1000);
      expect(d.allowed).toBe(true);
      state = d.state;
    }
    const refused = takeToken(limit, state, 1000);
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 20_000 });
    expect(takeToken(limit, refused.state, 1000 + 19_999).allowed).toBe(false);
    const later = takeToken(limit, refused.state, 1000 + 20_000);
    expect(later.allowed).toBe(true);
    expect(takeToken(limit, later.state, 1000 + 20_000).allowed).toBe(false);
  });

  it('says when a bucket is full again: a burst above perMinute takes longer than a minute', () => {
    const limit = { perMinute: 2, burst: 10 };
    let s: BucketState | undefined;
    for (let i = 0; i < 10; i++) s = takeToken(limit, s, 0).state;
    expect(s).toEqual({ tokens: 0, at: 0, fullAt: 5 * 60_000 });
    expect(takeToken(limit, s, 5 * 60_000 - 30_000).state.tokens).toBe(9 - 1);
    expect(takeToken(limit, s, 5 * 60_000).state).toEqual({ tokens: 9, at: 5 * 60_000, fullAt: 5 * 60_000 + 30_000 });
    // Refused, the state it answers says the same.
    expect(takeToken(limit, s, 0)).toMatchObject({ allowed: false, state: { tokens: 0, fullAt: 5 * 60_000 } });
  });

  it('never holds more than the burst, and a clock stepping back neither refills nor breaks it', () => {
    const limit = { perMinute: 60, burst: 2 };
    let s = takeToken(limit, undefined, 0).state;
    s = takeToken(limit, s, 0).state;
    expect(takeToken(limit, s, -60_000).allowed).toBe(false);
    // An hour later: still only 2 tokens.
    let t = takeToken(limit, s, 3600_000);
    expect(t.allowed).toBe(true);
    t = takeToken(limit, t.state, 3600_000);
    expect(t.allowed).toBe(true);
    expect(takeToken(limit, t.state, 3600_000)).toMatchObject({ allowed: false, retryAfterMs: 1000 });
  });
});
