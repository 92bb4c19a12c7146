// Deterministic RNG for tests: SHA-256 in counter mode over a seed. Never used outside tests.
import { sha256 } from '@noble/hashes/sha2.js';
import type { Rng } from '../../contract/bytes.js';

export function seededRng(seed: string): Rng {
  let counter = 0;
  let pool = new Uint8Array(0);
  const enc = new TextEncoder();
  return (n: number) => {
    while (pool.length < n) {
      const block = sha256(enc.encode(`${seed}/${counter++}`));
      const next = new Uint8Array(pool.length + block.length);
      next.set(pool);
      next.set(block, pool.length);
      pool = next;
    }
    const out = pool.slice(0, n);
    pool = pool.slice(n);
    return out;
  };
}
