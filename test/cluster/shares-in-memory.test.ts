// Shares in use (issue #24): keys of every kind are made, the cluster restarts (so a share can
// reach a signer's memory only from its sealed record), every key is used, and then neither a
// heap snapshot of a running signer (live objects) nor its whole writable memory (/proc/PID/mem:
// what the collector freed but nothing overwrote yet) holds any share's secret part as a string
// — hex (either case), base64 (standard or URL-safe) or decimal. The true secrets are read from
// the signer's own store with its operator secret, decoded as the signer decodes them.
// Then keys of every kind are made and refreshed within the searched signer's lifetime: neither
// their shares before and after the refresh, nor any other signer's (what an RSA dealer or a
// resharing dealer sends), may be there as a string either. And while a key generation waits
// between its rounds, the signer's secret polynomial and the shares it sent and received — which
// this test, playing a compromised gateway holding the other signers' stores, can work out — are
// not there as strings either.
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { EncryptCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex } from '../../contract/bytes.js';
import { openEnvelope } from '../../contract/identity/envelope.js';
import { loadIdentity, type IdentitySecrets } from '../../contract/identity/identity.js';
import type { Relayed } from '../../contract/signer-rpc/relayed.js';
import type { Route } from '../../contract/signer-rpc/route.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { decodeSecretful, inboxOf, isSecretful } from '../../signers/protocols/common.js';
import { decodeRecord } from '../../signers/node/key-records.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { appRequest, createKey, createKeyTrio, gatewayCall, gatewayIdentity, kms, signerClients, signerRecord, signsAndVerifies } from '../policy-cluster/helpers.js';

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
    const secrets = await storedSecrets([signer.name], keys);
    // Every kind of key contributes its secrets: the Shamir share, and DKLs23's pairwise seeds.
    expect(new Set(secrets.map((s) => s.key))).toEqual(new Set(Object.keys(keys)));
    expect(secrets.some((s) => s.name.includes('keys0'))).toBe(true);
    expect(await stringsIn(signer.pid, secrets)).toEqual([]);
  }, 240_000);

  it('nor after keys of every kind were made and refreshed in its lifetime (its own shares and those it dealt)', async () => {
    const signer = tc.cluster().signers[0]!;
    const all = tc.cluster().signers.map((s) => s.name);
    const made = await createKeyTrio(tc);
    const fresh = Object.fromEntries(Object.entries(made.keys).map(([k, id]) => [`new ${k}`, id]));
    const secrets = await storedSecrets(all, fresh);
    for (const [kind, id] of Object.entries(fresh)) {
      const r = await gatewayCall(tc, 'admin1', 'MpcHsm.RefreshKeyShares', { KeyId: id });
      expect(r.status, `refresh of ${kind}: ${JSON.stringify(r.body)}`).toBe(200);
      for (const s of await storedSecrets(all, { [`refreshed ${kind}`]: id })) secrets.push(s);
    }
    expect(await signsAndVerifies(tc, made.keys.rsa, made.publicKeys[made.keys.rsa]!, 'RSASSA_PSS_SHA_256', Buffer.from('five'))).toBe(true);
    expect(new Set(secrets.map((s) => s.key)).size).toBe(6);
    expect(await stringsIn(signer.pid, secrets)).toEqual([]);
  }, 300_000);

  // Both key generations: DKLs23's (round 1 point-to-point) and FROST's DKG (round 1 broadcast).
  const keygens = [
    { name: 'DKLs23 P-256', routes: signerRoutes.ecdsa.keygen as Rounds, scheme: { curve: 'p256' }, purpose: 'ecdsa-keygen', spec: { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }, Fn: p256.Point.Fn, commit: (a: bigint) => p256.Point.BASE.multiply(a).toHex(true) },
    { name: 'FROST Ed25519', routes: signerRoutes.dkg as Rounds, scheme: { suite: 'ed25519' }, purpose: 'dkg', spec: { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' }, Fn: ed25519.Point.Fn, commit: (a: bigint) => ed25519.Point.BASE.multiply(a).toHex() },
  ];
  for (const k of keygens)
    it(`nor its secret polynomial and the shares it sent and received while a ${k.name} key generation waits between rounds`, async () => {
      const signer = tc.cluster().signers[0]!;
      expect(tc.cluster().threshold).toBe(2); // f(x) = a0 + a1·x: two evaluations give both coefficients
      const identities = await Promise.all(tc.cluster().signers.map((s) => signerRecord(tc, s.name, loadIdentity)));
      const clients = signerClients(tc, await gatewayIdentity(tc));
      try {
        const keyId = randomUUID();
        const session = `keygen-${randomUUID()}`;
        const ids = clients.map((c) => c.id);
        const creation = { keySpec: k.spec.KeySpec, keyUsage: k.spec.KeyUsage, origin: 'AWS_KMS', evidence: await appRequest(tc, 'TrentService.CreateKey', k.spec, 'admin1') };
        const call = (c: SignerClient, route: Route, body: object) => c.call(route as never, body as never) as Promise<{ outbound: Relayed[]; publicPackage?: unknown }>;
        const round1 = (await Promise.all(clients.map((c) => call(c, k.routes.start, { session, keyId, ...k.scheme, participants: ids, threshold: 2, creation })))).flatMap((a) => a.outbound);
        const round2 = (await Promise.all(clients.map((c) => call(c, k.routes.step, { session, inbound: inboxOf(round1, c.id) })))).flatMap((a) => a.outbound);
        // Signer 1 now holds its round-2 state (its polynomial) until the last round.
        const payload = (m: Relayed, round: number): Record<string, unknown> => {
          const self = identities[m.to === 'all' ? 1 : m.to - 1]!;
          const opened = openEnvelope(m.envelope, self, identities[m.from - 1]!.public, { purpose: `${k.purpose}:${keyId}`, session, round, from: m.from, to: m.to });
          return (m.to !== 'all' && isSecretful(opened) ? decodeSecretful(opened) : JSON.parse(Buffer.from(opened).toString('utf8'))) as Record<string, unknown>;
        };
        const shareOf = (m: Relayed): Uint8Array => {
          const share = payload(m, 2).share;
          return share instanceof Uint8Array ? share : fromHex(share as string);
        };
        const { Fn } = k;
        const sent = (to: number) => shareOf(round2.find((m) => m.from === 1 && m.to === to)!);
        const [f2, f3] = [Fn.fromBytes(sent(2)), Fn.fromBytes(sent(3))];
        const a1 = Fn.sub(f3, f2);
        const a0 = Fn.sub(f2, Fn.mul(2n, a1));
        // The coefficients worked out are signer 1's: a0·G is its commitment.
        const commitment = payload(round1.find((m) => m.from === 1 && (m.to === 2 || m.to === 'all'))!, 1).commitment as string[];
        expect(k.commit(a0)).toBe(commitment[0]);
        const secrets = [
          { key: k.name, name: 'a0', bytes: Fn.toBytes(a0), integer: true },
          { key: k.name, name: 'a1', bytes: Fn.toBytes(a1), integer: true },
          ...round2.filter((m) => m.from === 1 || m.to === 1).map((m) => ({ key: k.name, name: `share ${m.from}→${m.to}`, bytes: shareOf(m), integer: true })),
        ];
        expect(await stringsIn(signer.pid, secrets)).toEqual([]);
        const done = await Promise.all(clients.map((c) => call(c, k.routes.step, { session, inbound: inboxOf(round2, c.id) })));
        expect(done.every((a) => a.publicPackage !== undefined)).toBe(true);
      } finally {
        for (const c of clients) c.close();
        for (const i of identities) wipeIdentity(i);
      }
    }, 240_000);
});

/** The secrets of `keys` held in the stores of `names`, read as each signer reads its records. */
async function storedSecrets(names: readonly string[], keys: Record<string, string>): Promise<{ key: string; name: string; bytes: Uint8Array; integer: boolean }[]> {
  const secrets: { key: string; name: string; bytes: Uint8Array; integer: boolean }[] = [];
  for (const name of names)
    await signerRecord(tc, name, async (store) => {
      for (const [kind, id] of Object.entries(keys)) {
        const raw = await store.get(`key.${id}`);
        expect(raw, `${name} holds key ${kind}`).toBeDefined();
        for (const s of secretsIn(decodeRecord(raw!))) secrets.push({ key: kind, ...s, name: `${name}:${s.name}` });
      }
    });
  return secrets;
}

/** Where any of `secrets` is found as a string in the heap snapshot or the writable memory of `pid`. */
async function stringsIn(pid: number, secrets: readonly { key: string; name: string; bytes: Uint8Array; integer: boolean }[]): Promise<string[]> {
  const forms = secrets.flatMap((s) => encodings(s.bytes, s.integer).map((f) => ({ what: `${s.key} ${s.name}`, f, bytes: Buffer.from(f, 'latin1') })));
  const heap = await heapSnapshot(pid);
  const found = new Set(forms.filter((x) => heap.includes(x.f)).map((x) => `heap snapshot: ${x.what} as ${x.f.slice(0, 12)}…`));
  for (const piece of writableMemory(pid)) for (const x of forms) if (piece.includes(x.bytes)) found.add(`process memory: ${x.what} as ${x.f.slice(0, 12)}…`);
  return [...found];
}

/** A key generation's start and step routes. */
type Rounds = { start: Route; step: Route };

const wipeIdentity = (i: IdentitySecrets): void => {
  i.signSecretKey.fill(0);
  i.kexSecretKey.fill(0);
};
