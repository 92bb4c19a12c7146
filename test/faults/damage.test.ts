// Damage an operator may find on disk, on a real cluster (issue #18, item 6): each damaged file
// is refused naming the file (by `mpchsm up`, which reports a process that exits at once), or is
// a finding of `mpchsm audit verify` or `mpchsm doctor` naming it; none is silent and none
// crashes a command. Each case damages one file of the stopped cluster, runs the commands that
// must notice, and puts the file back. Damage only the signers can see is tested where it is
// caught: the gateway audit log cut short in audit-crash.test.ts, a deleted gateway key file or
// signer key record in create-key-crash.test.ts.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mpchsmBin, repoRoot, startCluster, type TestCluster } from '../helpers/cluster.js';
import { createKey } from '../policy-cluster/helpers.js';

const run = promisify(execFile);

let tc: TestCluster;
let keyId: string;

interface Outcome {
  code: number;
  out: string;
  ms: number;
}

/** `mpchsm ARGS --dir DIR`: its exit status, stdout and stderr together, and how long it took. */
async function mpchsm(...args: string[]): Promise<Outcome> {
  const started = Date.now();
  try {
    const { stdout, stderr } = await run(process.execPath, [mpchsmBin, ...args, '--dir', tc.dir], { cwd: repoRoot, timeout: 90_000 });
    return { code: 0, out: stdout + stderr, ms: Date.now() - started };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}`, ms: Date.now() - started };
  }
}

const up = () => mpchsm('up', '--detach');
const down = () => mpchsm('down');
const file = (...parts: string[]) => path.join(tc.dir, ...parts);

/** Runs `check` with `name` damaged by `damage`, then restores the file's bytes (or its absence). */
async function damaged(name: string, damage: (bytes: Buffer) => Uint8Array | string, check: (f: string) => Promise<void>): Promise<void> {
  const f = file(name);
  const before = existsSync(f) ? readFileSync(f) : undefined;
  writeFileSync(f, damage(Buffer.from(before ?? [])));
  try {
    await check(f);
  } finally {
    await down();
    if (before) writeFileSync(f, before);
    else rmSync(f);
  }
}

/** The first `n` characters: a file cut short, as a crash during a non-atomic copy leaves it. */
const cut = (n: number) => (bytes: Buffer) => bytes.subarray(0, n);

/** `up` fails within `withinMs`, its message naming `f`. */
async function upRefuses(f: string, withinMs = 15_000): Promise<Outcome> {
  const o = await up();
  expect(o.code, o.out).not.toBe(0);
  expect(o.out).toContain(f);
  expect(o.ms, `up took ${o.ms} ms to report it`).toBeLessThan(withinMs);
  return o;
}

beforeAll(async () => {
  tc = await startCluster();
  keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  await tc.down();
}, 240_000);

afterAll(() => tc?.destroy(), 120_000);

describe('a damaged file is refused naming it when the cluster starts', () => {
  const refusedAtUp: [string, () => string][] = [
    ['settings.json', () => 'settings.json'],
    ['the gateway config', () => path.join('gateway', 'config.json')],
    ['the gateway governance chain', () => path.join('gateway', 'governance.json')],
    ['the gateway principal registry', () => path.join('gateway', 'principals.json')],
    ['the gateway PIN key derivation', () => path.join('gateway', 'pin-kdf.json')],
    ['the gateway KMS state', () => path.join('gateway', 'kms-state.json')],
    ['a gateway key record', () => path.join('gateway', 'keys', `${keyId}.json`)],
    ['the gateway store sealing', () => path.join('gateway', 'store', 'sealer.json')],
    ['a signer config', () => path.join('signers', 'signer2', 'config.json')],
  ];
  for (const [what, name] of refusedAtUp) {
    it(`${what}, cut short`, () => damaged(name(), cut(20), (f) => upRefuses(f).then((o) => expect(o.out).toMatch(/not valid JSON \(/))), 60_000);
  }

  it('the PKCS#11 object store, not JSON', () => damaged(path.join('gateway', 'p11', 'store.json'), () => '{"certificates": [', (f) => upRefuses(f).then(() => undefined)), 60_000);

  it("a signer's sealed key record with one bit flipped fails its integrity check, named", () =>
    damaged(path.join('signers', 'signer1', 'store', `key.${keyId}.rec`), (bytes) => bytes.map((b, i) => (i === bytes.length >> 1 ? b ^ 0x01 : b)), async (f) => {
      const o = await upRefuses(f);
      expect(o.out).toMatch(/failed its integrity check/);
    }), 60_000);

  it('a signer whose store sealing is refused is reported as soon as it exits, with its log', () =>
    damaged(path.join('signers', 'signer2', 'store', 'sealer.json'), cut(20), async (f) => {
      const o = await upRefuses(f, 10_000);
      expect(o.out).toMatch(/signer2 did not start: it exited with status \d+/);
    }), 60_000);

  it('an audit log whose first entry is damaged: up refuses to append to it, audit verify names it', () =>
    damaged(path.join('signers', 'signer3', 'audit.jsonl'), (bytes) => `#${bytes.toString('utf8').slice(1)}`, async (f) => {
      await upRefuses(f);
      const v = await mpchsm('audit', 'verify');
      expect(v.code, v.out).toBe(1);
      expect(v.out).toMatch(/signer3/);
    }), 60_000);

  it('a signer replay ledger with a damaged line before its end (a torn last line is a crash, and dropped)', () =>
    damaged(path.join('signers', 'signer1', 'replays.jsonl'), (bytes) => `{"id":"sigv4:x"#\n${bytes.toString('utf8')}`, async (f) => {
      const o = await upRefuses(f);
      expect(o.out).toContain(`${f}: line 1 is damaged`);
    }), 60_000);
});

describe('a damaged public file the processes do not read is a finding of audit verify or doctor', () => {
  for (const [who, name] of [
    ['a signer', path.join('signers', 'signer2', 'identity.json')],
    ['the gateway', path.join('gateway', 'identity.json')],
  ] as const) {
    it(`${who}'s identity.json, cut short: audit verify names it (a finding, not "Unexpected end of JSON input" as a crash)`, () =>
      damaged(name, cut(40), async (f) => {
        const v = await mpchsm('audit', 'verify');
        expect(v.code, v.out).toBe(1);
        expect(v.out).toContain(`[unreadable] ${f}: not valid JSON (`);
        expect(v.out).toMatch(/audit verify: FAILED/);
      }), 60_000);
  }

  it("a signer's store sealing: doctor names it", () =>
    damaged(path.join('signers', 'signer1', 'store', 'sealer.json'), cut(20), async (f) => {
      const d = await mpchsm('doctor');
      expect(d.code, d.out).not.toBe(0);
      expect(d.out).toContain(`[damaged-file] ${f}: not valid JSON (`);
    }), 60_000);
});

it('the cluster starts and verifies clean after every damage was put back', async () => {
  const o = await up();
  expect(o.code, o.out).toBe(0);
  const v = await mpchsm('audit', 'verify');
  expect(v.code, v.out).toBe(0);
}, 120_000);
