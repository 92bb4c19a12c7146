// Shares in use (issue #24): keys of every kind are made, the cluster restarts (so a share can
// reach a signer's memory only from its sealed record), every key is used, and then neither a
// heap snapshot of a running signer (live objects) nor its whole writable memory (/proc/PID/mem:
// what the collector freed but nothing overwrote yet) holds any share's secret part as a string
// — hex (either case), base64 (standard or URL-safe) or decimal. The true secrets are read from
// the signer's own store with its operator secret, decoded as the signer decodes them.
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EncryptCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex } from '../../contract/bytes.js';
import { decodeRecord } from '../../signers/node/key-records.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { createKey, createKeyTrio, kms, signerRecord, signsAndVerifies } from '../policy-cluster/helpers.js';

let tc: TestCluster;
let diagDir: string;
const keys: Record<string, string> = {};
const publicKeys: Record<string, Uint8Array> = {};

/** The members of a decoded share that are secret (DKG/FROST, DKLs23 and RSA shares). */
const SECRET_FIELDS = new Set(['secretShare', 'zeroSeed', 'keys0', 'keys1', 'delta', 'keys', 's']);

/** Every secret byte string in a decoded record, whatever form it is held in (bytes, hex, bigint). */
function secretsIn(v: unknown, name = '', out: { name: string; bytes: Uint8Array; integer: boolean }[] = []): typeof out {
  if (SECRET_FIELDS.has(name.split('.').at(-1)!)) {
    const integer = name.endsWith('secretShare') || name.endsWith('.s');
    if (v instanceof Uint8Array) out.push({ name, bytes: Uint8Array.from(v), integer });
    else if (typeof v === 'string') out.push({ name, bytes: fromHex(v), integer });
    else if (typeof v === 'bigint') out.push({ name, bytes: fromHex(v.toString(16).padStart(2 * Math.ceil(v.toString(16).length / 2), '0')), integer });
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) secretsIn(x, `${name}.${k}`, out);
    return out;
  }
  if (v instanceof Map) for (const [k, x] of v) secretsIn(x, `${name}.${String(k)}`, out);
  else if (v && typeof v === 'object' && !(v instanceof Uint8Array)) for (const [k, x] of Object.entries(v)) secretsIn(x, name ? `${name}.${k}` : k, out);
  return out;
}

/** The string forms a secret could take: hex (both cases), base64, base64url, and decimal (both byte orders). */
function encodings(bytes: Uint8Array, integer: boolean): string[] {
  const b = Buffer.from(bytes.subarray(0, Math.min(bytes.length, 48))); // a long secret's prefix is enough (and aligned for base64)
  const forms = [b.toString('hex'), b.toString('hex').toUpperCase(), b.toString('base64').replace(/=+$/, ''), b.toString('base64url')];
  if (integer) {
    const be = BigInt('0x' + Buffer.from(bytes).toString('hex'));
    const le = BigInt('0x' + Buffer.from(bytes).reverse().toString('hex'));
    forms.push(be.toString(), le.toString());
  }
  return forms;
}

/** A heap snapshot of `pid`, written on SIGUSR2 (`--heapsnapshot-signal`) into the diagnostic directory. */
async function heapSnapshot(pid: number): Promise<string> {
  const before = new Set(readdirSync(diagDir));
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    const file = readdirSync(diagDir).find((f) => !before.has(f) && f.includes(`.${pid}.`) && f.endsWith('.heapsnapshot'));
    if (!file) continue;
    const text = readFileSync(path.join(diagDir, file), 'utf8');
    // Written in pieces: complete once it parses.
    try {
      JSON.parse(text);
      return text;
    } catch {
      /* still being written */
    }
  }
  throw new Error(`no heap snapshot from ${pid} within 60 s`);
}

/** Every writable private mapping of `pid`, read through /proc/PID/mem, in overlapping pieces. */
function* writableMemory(pid: number): Generator<Buffer> {
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
      const [range, perms, , , , file] = line.trim().split(/\s+/);
      if (!range || !perms?.startsWith('rw') || (file && !file.startsWith('['))) continue;
      const [start, end] = range.split('-').map((h) => parseInt(h, 16)) as [number, number];
      const PIECE = 16 << 20;
      for (let at = start; at < end; at += PIECE) {
        const buf = Buffer.alloc(Math.min(PIECE + 512, end - at));
        try {
          yield buf.subarray(0, readSync(fd, buf, 0, buf.length, at));
        } catch {
          /* a page the kernel will not read: nothing of ours */
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Starts the cluster's processes with heap snapshots on SIGUSR2 (NODE_OPTIONS is inherited by every process `mpchsm up` starts). */
async function withSnapshots<T>(start: () => Promise<T>): Promise<T> {
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${diagDir}`.trim();
  try {
    return await start();
  } finally {
    delete process.env.NODE_OPTIONS;
  }
}

beforeAll(async () => {
  diagDir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-heap-'));
  tc = await withSnapshots(() => startCluster());
  const trio = await createKeyTrio(tc);
  Object.assign(keys, trio.keys);
  Object.assign(publicKeys, trio.publicKeys);
  keys.sym = await createKey(tc, { KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' });
  // Key generation made the shares in these processes; from here on a share comes only from a record.
  await tc.down();
  await withSnapshots(() => tc.up());
}, 300_000);

afterAll(async () => {
  await tc?.destroy();
  if (diagDir) rmSync(diagDir, { recursive: true, force: true });
});

describe('shares in memory', () => {
  it('a running signer holds no share as a string after keys of every kind were made and used', async () => {
    expect(await signsAndVerifies(tc, keys.ed!, publicKeys[keys.ed!]!, 'ED25519_SHA_512', Buffer.from('one'))).toBe(true);
    expect(await signsAndVerifies(tc, keys.ec!, publicKeys[keys.ec!]!, 'ECDSA_SHA_256', Buffer.from('two'))).toBe(true);
    expect(await signsAndVerifies(tc, keys.rsa!, publicKeys[keys.rsa!]!, 'RSASSA_PSS_SHA_256', Buffer.from('three'))).toBe(true);
    await kms(tc, 'app').send(new EncryptCommand({ KeyId: keys.sym!, Plaintext: Buffer.from('four') }));

    const signer = tc.cluster().signers[0]!;
    const secrets: { key: string; name: string; bytes: Uint8Array; integer: boolean }[] = [];
    await signerRecord(tc, signer.name, async (store) => {
      for (const [kind, id] of Object.entries(keys)) {
        const raw = await store.get(`key.${id}`);
        expect(raw, `${signer.name} holds key ${kind}`).toBeDefined();
        for (const s of secretsIn(decodeRecord(raw!))) secrets.push({ key: kind, ...s });
      }
    });
    // Every kind of key contributes its secrets: the Shamir share, and DKLs23's pairwise seeds.
    expect(new Set(secrets.map((s) => s.key))).toEqual(new Set(Object.keys(keys)));
    expect(secrets.some((s) => s.name.includes('keys0'))).toBe(true);

    const forms = secrets.flatMap((s) => encodings(s.bytes, s.integer).map((f) => ({ what: `${s.key} ${s.name}`, f, bytes: Buffer.from(f, 'latin1') })));
    const heap = await heapSnapshot(signer.pid);
    expect(forms.filter((x) => heap.includes(x.f)).map((x) => `heap snapshot: ${x.what} as ${x.f.slice(0, 12)}…`)).toEqual([]);
    const inMemory = new Set<string>();
    for (const piece of writableMemory(signer.pid)) for (const x of forms) if (piece.includes(x.bytes)) inMemory.add(`process memory: ${x.what} as ${x.f.slice(0, 12)}…`);
    expect([...inMemory]).toEqual([]);
  }, 240_000);
});
