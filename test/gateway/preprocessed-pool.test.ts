// The gateway's pool of material fetched ahead: refilled when low, one fetch at a time, each
// item handed out once, stale items dropped, failed fetches not retried at once.
import { describe, expect, it } from 'vitest';
import { PreprocessedPool } from '../../gateway/preprocessed-pool.js';

function pool(over: Partial<ConstructorParameters<typeof PreprocessedPool<number>>[0]> = {}) {
  let next = 0;
  const calls: string[] = [];
  const errors: unknown[] = [];
  const p = new PreprocessedPool<number>({
    batch: 3,
    lowWater: 2,
    maxAgeMs: 60_000,
    retryAfterMs: 60_000,
    fetch: async (scope, count) => {
      calls.push(scope);
      return Array.from({ length: count }, () => next++);
    },
    onError: (_s, e) => errors.push(e),
    ...over,
  });
  return { p, calls, errors };
}

describe('PreprocessedPool', () => {
  it('starts empty, refills in the background, hands each item out once, in order', async () => {
    const { p, calls } = pool();
    expect(p.take('s1')).toBeUndefined();
    await p.refill('s1');
    expect(calls).toEqual(['s1']);
    expect([p.take('s1'), p.take('s1')]).toEqual([0, 1]);
    // Below the low-water mark the take above started one more fetch.
    await p.refill('s1');
    expect(p.available('s1')).toBe(4);
    expect(p.take('s2')).toBeUndefined();
  });

  it('runs one fetch at a time per scope', async () => {
    const { p, calls } = pool();
    await Promise.all([p.refill('s'), p.refill('s'), p.refill('s')]);
    expect(calls).toEqual(['s']);
  });

  it('after a failed fetch, does not ask again until retryAfterMs', async () => {
    const { p, calls, errors } = pool({ fetch: async (s) => { calls.push(s); throw new Error('down'); } });
    await p.refill('s');
    await p.refill('s');
    expect(calls).toEqual(['s']);
    expect(errors).toHaveLength(1);
    const calls2: string[] = [];
    const q = new PreprocessedPool<number>({ batch: 1, lowWater: 0, maxAgeMs: 1000, retryAfterMs: 0, fetch: async (s) => { calls2.push(s); throw new Error('x'); }, onError: () => undefined });
    await q.refill('s');
    await q.refill('s');
    expect(calls2).toHaveLength(2);
  });

  it('drops items older than maxAgeMs, and scopes on request (a fetch running then is discarded)', async () => {
    const { p } = pool({ maxAgeMs: 20 });
    await p.refill('a');
    await new Promise((r) => setTimeout(r, 40));
    expect(p.available('a')).toBe(0);
    let release!: () => void;
    const slow = pool({ fetch: () => new Promise((r) => (release = () => r([7]))) });
    const f = slow.p.refill('x');
    slow.p.drop((s) => s === 'x');
    release();
    await f;
    expect(slow.p.available('x')).toBe(0);
  });
});
