// One signer's directory on a small filesystem that fills up (root only: it mounts a tmpfs): the
// signer answers "internal error" to whatever it must record, the gateway serves every Sign with
// the other two within the same request (FROST, ECDSA and RSA alike), the signer's /health, the
// gateway's /health and `mpchsm status` name the full disk, and once space is freed the signer
// serves again.
import { execFileSync } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, openSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../../cli/processes.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { auditEntries, createKeyTrio, signsAndVerifies } from '../policy-cluster/helpers.js';

const ROOT = process.getuid?.() === 0;
let tc: TestCluster;
let keys: Record<'ed' | 'ec' | 'rsa', string>;
let publicKeys: Record<string, Uint8Array>;
let mountPoint = '';
let mounted = false;
let skipReason = ROOT ? '' : 'not root: mounting the small filesystem needs root (CI runs as root)';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ALGORITHMS = { ed: 'ED25519_SHA_512', ec: 'ECDSA_SHA_256', rsa: 'RSASSA_PSS_SHA_256' } as const;

/** Writes zeros into `file` until the filesystem refuses with ENOSPC. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  try {
    for (const size of [1 << 20, 4096, 1]) {
      const chunk = Buffer.alloc(size);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

const gatewayHealth = async () => (await (await fetch(`${tc.endpoint}/health`)).json()) as { signers: { name: string; healthy: boolean; detail: string }[] };
const signer2Health = async () => (await getJson(`${tc.cluster().signers.find((s) => s.name === 'signer2')!.url}/health`)) as { status: string; store: string };
const partialsBy = (signer: string) => auditEntries(tc, signer).filter((e) => e.output === 'partial' && e.outcome === 'ok').length;

beforeAll(async () => {
  if (!ROOT) return;
  tc = await startCluster();
  ({ keys, publicKeys } = await createKeyTrio(tc));
  await tc.down();
  // signer2's whole directory moves onto a 4 MiB tmpfs.
  mountPoint = path.join(tc.dir, 'signers', 'signer2');
  renameSync(mountPoint, `${mountPoint}.orig`);
  mkdirSync(mountPoint);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', mountPoint], { stdio: 'pipe' });
    mounted = true;
  } catch (e) {
    skipReason = `mount -t tmpfs failed (${(e as Error).message.split('\n')[0]}): no small filesystem to fill here`;
    rmSync(mountPoint, { recursive: true });
    renameSync(`${mountPoint}.orig`, mountPoint);
  }
  if (mounted) cpSync(`${mountPoint}.orig`, mountPoint, { recursive: true, preserveTimestamps: true });
  await tc.up();
}, 180_000);

afterAll(async () => {
  if (!tc) return;
  await tc.down().catch(() => undefined);
  if (mounted) execFileSync('umount', ['-l', mountPoint]);
  await tc.destroy();
});

describe('one signer on a full disk', () => {
  it('signing goes on through the others with no error a client sees, and every health report names the full disk', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const filler = path.join(mountPoint, 'filler');
    fill(filler);
    try {
      const before = partialsBy('signer2');
      // Sequential and concurrent: every request that picks signer2 first must go on without it.
      for (let round = 0; round < 4; round++) {
        const results = await Promise.all(
          (['ed', 'ec', 'rsa'] as const).flatMap((k) => [0, 1].map((i) => signsAndVerifies(tc, keys[k], publicKeys[keys[k]]!, ALGORITHMS[k], Buffer.from(`full disk ${round} ${k} ${i}`)))),
        );
        expect(results.every(Boolean), `round ${round}: every signature verifies`).toBe(true);
      }
      expect(partialsBy('signer2'), 'signer2 recorded no release on a full disk').toBe(before);

      const own = await until('signer2 to report its store not writable', async () => ((await signer2Health()).store.startsWith('not writable') ? signer2Health() : undefined), 15_000);
      expect(own).toMatchObject({ status: 'degraded', store: expect.stringContaining('ENOSPC') });
      const gateway = await until('the gateway to name signer2 unhealthy', async () => (await gatewayHealth()).signers.find((s) => s.name === 'signer2' && !s.healthy), 15_000);
      expect(gateway.detail).toMatch(/store not writable: ENOSPC/);
      const status = await tc.mpchsm('status', '--dir', tc.dir, '--json').then(
        (r) => r.stdout,
        (e: { stdout: string }) => e.stdout,
      );
      const row = (JSON.parse(status) as { processes: { name: string; state: string }[] }).processes.find((p) => p.name === 'signer2');
      expect(row?.state).toMatch(/^unhealthy: store not writable: ENOSPC/);
    } finally {
      unlinkSync(filler);
    }

    // Space freed: the store check and the gateway's probe bring signer2 back into use.
    await until('signer2 to report its store writable', async () => ((await signer2Health()).store === 'writable' ? true : undefined), 15_000);
    const before = partialsBy('signer2');
    await until(
      'signer2 to serve again',
      async () => {
        expect(await signsAndVerifies(tc, keys.ed, publicKeys[keys.ed]!, ALGORITHMS.ed, Buffer.from(`space freed ${Date.now()}`))).toBe(true);
        return partialsBy('signer2') > before ? true : undefined;
      },
      20_000,
    );
  }, 120_000);
});
