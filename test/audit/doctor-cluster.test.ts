// doctor against a real local cluster started with `mpchsm up`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../cli/cluster-dir.js';
import { doctor } from '../../cli/doctor.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';

describe('mpchsm doctor on a running dev cluster', () => {
  let tc: TestCluster;
  beforeAll(async () => {
    tc = await startCluster();
  }, 180_000);
  afterAll(async () => {
    await tc?.destroy();
  });

  it('reports the dev cluster as a single administrative domain with every signer reachable', async () => {
    const lines: string[] = [];
    const io: Io = { out: (l) => lines.push(l), err: (l) => lines.push(`ERR ${l}`) };
    expect(await doctor(tc.dir, { strict: false }, io)).toBe(0);
    const text = lines.join('\n');
    expect(text).toMatch(/3 signers, threshold 2, 3 reachable/);
    expect(text).not.toContain('[too-few-reachable]');
    expect(text).toContain('[same-process-user]');
    expect(text).toContain('[software-sealing]');
    expect(text).toContain('SINGLE ADMINISTRATIVE DOMAIN');
    expect(await doctor(tc.dir, { strict: true }, { out: () => undefined, err: () => undefined })).toBe(1);
  });
});
