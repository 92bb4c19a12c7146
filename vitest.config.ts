import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two files at a time, also on a 2-core machine (vitest would run one there): most of a
    // cluster test's time is spent waiting on its processes, not on the test's own CPU.
    maxWorkers: 2,
  },
});
