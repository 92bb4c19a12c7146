// The signer's table of material made ahead of requests: each item taken once, bounded, expiring.
import { describe, expect, it } from 'vitest';
import { Preprocessed } from '../../signers/node/preprocessed.js';
import { RpcError } from '../../signers/node/rpc.js';

const code = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return e instanceof RpcError ? e.code : 'other';
  }
  return undefined;
};

describe('Preprocessed', () => {
  it('hands an item out once: a second take, or a racing one, finds nothing', () => {
    const t = new Preprocessed<number>(10, 60_000);
    t.add([['a', 1], ['b', 2]]);
    expect(t.take('a')).toBe(1);
    expect(code(() => t.take('a'))).toBe('not-preprocessed');
    expect(t.size).toBe(1);
  });

  it('refuses a batch that would not fit, whole, and an id already held', () => {
    const t = new Preprocessed<number>(2, 60_000);
    t.add([['a', 1]]);
    expect(code(() => t.add([['b', 2], ['c', 3]]))).toBe('preprocessed-full');
    expect(t.size).toBe(1);
    expect(code(() => t.add([['a', 9]]))).toBe('session-exists');
    expect(t.take('a')).toBe(1);
  });

  it('an expired item is not handed out and frees its room', async () => {
    const t = new Preprocessed<number>(1, 20);
    t.add([['a', 1]]);
    await new Promise((r) => setTimeout(r, 40));
    expect(code(() => t.take('a'))).toBe('not-preprocessed');
    t.add([['b', 2]]);
    expect(() => t.checkRoom(0)).not.toThrow();
  });

  it('drops what a predicate selects', () => {
    const t = new Preprocessed<{ key: string }>(10, 60_000);
    t.add([['a', { key: 'k1' }], ['b', { key: 'k2' }]]);
    t.drop((v) => v.key === 'k1');
    expect(code(() => t.take('a'))).toBe('not-preprocessed');
    expect(t.take('b')).toEqual({ key: 'k2' });
  });
});
