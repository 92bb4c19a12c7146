// The PKCS#11 listener's limits against a real cluster, with the gateway configured small
// (1,000 connections, 3 s before a login, 8 s logins, summaries every second): a flood of idle
// connections and huge unauthenticated frames leaves an honest client (the real module through
// graphene-pk11) signing; frames over 64 KiB need a login; idle connections without a login
// close; unauthenticated requests reach the audit log only as counts; logins expire and end at
// C_Logout and C_Finalize.
// The flood holds up to 2,000 sockets in this process and as many in the gateway: `ulimit -n`
// must allow that (the test checks).
import { createPublicKey, randomBytes, verify as nodeVerify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileSync } from 'node:child_process';
import * as graphene from 'graphene-pk11';
import type * as pkcs11 from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKM, CKO, CKU } from '../../contract/pkcs11/ck.js';
import { frame, OP } from '../../contract/pkcs11/wire.js';
import { startCluster, type Principal, type TestCluster } from '../helpers/cluster.js';
import { auditEntries, createKey, publicKeyOf } from '../policy-cluster/helpers.js';
import { buildShim, CKR, stopModuleAndCluster, loadModule } from './helpers.js';
import { call, closed, connect, rawLogin, request } from './raw-wire.js';

const LONG = 600_000;
const LIMITS = { pkcs11MaxConnections: 1000, pkcs11PreLoginIdleMs: 3000, pkcs11LoginLifetimeMs: 8000, unauthenticatedAuditMs: 1000 };
const RW = graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION;
const MiB = 1024 * 1024;

let tc: TestCluster;
let app: Principal;
let port: number;
let keyId: string;
let publicKey: ReturnType<typeof createPublicKey>;
let mod: graphene.Module | undefined;
let lib: pkcs11.PKCS11;
let slot: graphene.Slot;

const gatewayPid = () => tc.cluster().gateway.pid;
const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const entriesSince = (n: number) => auditEntries(tc, 'gateway').slice(n) as { op?: string; outcome?: string; reason?: string; principal?: { name?: string; source?: string }; detail?: Record<string, number> }[];

/**
 * Waits until earlier tests' connections without a login (the module's, whose last request was a
 * public one) are closed as idle and counted, so that summaries after it count this test's only.
 */
const countsSettled = () => sleep(LIMITS.pkcs11PreLoginIdleMs + 2 * LIMITS.unauthenticatedAuditMs);

/** Logs in `app` on a new session and signs `message` with the Ed25519 key through the module. */
function signAsApp(s: graphene.Session, message: Buffer): Buffer {
  lib.C_FindObjectsInit(s.handle, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }]);
  const [key] = lib.C_FindObjects(s.handle, 10);
  lib.C_FindObjectsFinal(s.handle);
  lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA }, key!);
  return lib.C_Sign(s.handle, message, Buffer.alloc(256));
}

beforeAll(async () => {
  const nofile = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
  expect(nofile, 'ulimit -n must allow 2,000 sockets per process (raise the soft limit)').toBeGreaterThanOrEqual(4500);
  buildShim();
  tc = await startCluster();
  keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  publicKey = createPublicKey({ key: Buffer.from(await publicKeyOf(tc, keyId)), format: 'der', type: 'spki' });
  await tc.down();
  const file = path.join(tc.dir, 'gateway', 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8'));
  port = config.pkcs11Port;
  writeFileSync(file, JSON.stringify({ ...config, ...LIMITS }, null, 2));
  await tc.up();
  app = tc.principal('app');
  ({ mod, lib, slot } = loadModule(app.MPCHSM_PKCS11_CONF));
}, LONG);

afterAll(() => stopModuleAndCluster(mod, tc), LONG);

describe('before a login', () => {
  it('2,000 idle connections and 50 MiB unauthenticated frames leave an honest client signing', async () => {
    const rssBefore = rssBytes(gatewayPid());
    const idle: net.Socket[] = [];
    try {
      for (let i = 0; i < 20; i++) idle.push(...(await Promise.all(Array.from({ length: 100 }, () => connect(port)))));
      // 50 MiB frames (over any cap) and 30 MiB ones (under the cap after a login), no valid login
      // in them. Each is built before its connection opens: built after, on a loaded machine, its
      // header could come later than the pre-login idle limit, and be closed as idle instead.
      const frames = [50, 30, 30, 50, 30, 30].map((mib) => frame(request(OP.SIGN, 'p11v1.forged.mac', Buffer.alloc(mib * MiB))));
      const floods = frames.map(async (f) => {
        const s = await connect(port);
        const started = Date.now();
        s.write(f);
        await closed(s);
        return Date.now() - started;
      });
      const session = slot.open(RW);
      const started = Date.now();
      try {
        session.login(app.MPCHSM_PKCS11_PIN, graphene.UserType.USER);
        const message = Buffer.from('signed through the flood');
        const signature = signAsApp(session, message);
        expect(nodeVerify(null, message, publicKey, signature)).toBe(true);
      } finally {
        session.logout();
        session.close();
      }
      expect(Date.now() - started, 'the honest login and signature were not held up').toBeLessThan(10_000);
      for (const ms of await Promise.all(floods)) expect(ms, 'an unauthenticated huge frame is cut off early').toBeLessThan(10_000);
      expect(rssBytes(gatewayPid()) - rssBefore, 'the gateway held none of the frames').toBeLessThan(64 * MiB);
    } finally {
      for (const s of idle) s.destroy();
    }
    await sleep(1500);
    const summaries = auditEntries(tc, 'gateway').filter((e) => e.op === 'pkcs11.unauthenticated') as { detail: Record<string, number> }[];
    const total = (k: string) => summaries.reduce((n, e) => n + (e.detail[k] ?? 0), 0);
    // At the cap of 1,000, the oldest idle connections made room for the newer ones and the module's.
    expect(total('evicted')).toBeGreaterThanOrEqual(1000);
    expect(total('oversizedFrames')).toBe(6);
  }, 120_000);

  it('takes frames over 64 KiB only when their header carries a valid login', async () => {
    const label = (n: number) => [[CKA.LABEL, Buffer.alloc(n, 0x61)]];
    const anonymous = await connect(port);
    // A public search (no credential: a session before its login) of 60 KiB is taken, and finds no public object with that label.
    expect(await call(anonymous, request(OP.FIND, '', label(60 * 1024)))).toEqual([CKR.OK, []]);
    await expect(call(anonymous, request(OP.FIND, 'p11v1.forged.mac', label(70 * 1024)))).rejects.toThrow(/closed/);

    const loggedIn = await connect(port);
    const credential = await rawLogin(loggedIn, app.MPCHSM_PKCS11_PIN);
    expect((await call(loggedIn, request(OP.FIND, credential, label(MiB))))[0]).toBe(CKR.OK);
    // The module opens new connections for concurrent calls: a large first request with a login is taken too.
    const fresh = await connect(port);
    expect((await call(fresh, request(OP.FIND, credential, label(MiB))))[0]).toBe(CKR.OK);
    for (const s of [loggedIn, fresh]) s.destroy();
  }, 60_000);

  it('answers public searches without a login, holding one unread answer at most', async () => {
    // A count of an earlier connection's idle close after `before` would read as this
    // connection's close, and reading its answers early lets the gateway answer them all.
    await countsSettled();
    const before = auditEntries(tc, 'gateway').length;
    const s = await connect(port);
    const [rv, objects] = await call(s, request(OP.FIND, '', []));
    expect(rv).toBe(CKR.OK);
    expect((objects as unknown[]).length).toBe(1); // the Ed25519 key's public half; never its private key
    const answerBytes = frame([rv!, objects!]).length;
    // Enough searches that their answers, were they all made, would fill 64 MiB; none is read.
    const n = Math.ceil((64 * MiB) / answerBytes);
    const one = frame(request(OP.FIND, '', []));
    s.pause();
    s.write(Buffer.concat(Array.from({ length: n }, () => one)));
    await sleep(LIMITS.pkcs11PreLoginIdleMs + 1500); // the gateway stops reading, then closes the idle connection
    // On a loaded machine it may take longer to answer what it had read and close: reading
    // before it has would let it answer the rest. Its interval summary says when it closed one.
    const idleClosed = () => entriesSince(before).some((e) => e.op === 'pkcs11.unauthenticated' && (e.detail?.idleClosed ?? 0) > 0);
    for (const until = Date.now() + 30_000; !idleClosed() && Date.now() < until; ) await sleep(250);
    expect(idleClosed(), 'the gateway closed the connection that reads no answers').toBe(true);
    s.on('data', () => undefined).resume(); // what the kernel buffered; then the close shows
    await closed(s);
    await sleep(1500); // the interval's summary is written
    const summaries = entriesSince(before).filter((e) => e.op === 'pkcs11.unauthenticated');
    const answered = summaries.reduce((sum, e) => sum + (e.detail?.publicFinds ?? 0), 0);
    // What the kernel's socket buffers took, and one more: far from all of them.
    expect(answered * answerBytes).toBeLessThan(32 * MiB);
  }, 60_000);

  it('closes connections without a login after 3 s idle, even ones dribbling a frame; logged-in ones stay', async () => {
    const started = Date.now();
    const silent = await connect(port);
    const dribbler = await connect(port);
    dribbler.write(Buffer.of(0, 0, 3, 0xe8)); // a 1,000-byte frame, sent a byte at a time
    const drip = setInterval(() => dribbler.write(Buffer.of(0)), 200);
    const loggedIn = await connect(port);
    try {
      const credential = await rawLogin(loggedIn, app.MPCHSM_PKCS11_PIN);
      const times = await Promise.all([silent, dribbler].map(async (s) => (await closed(s), Date.now() - started)));
      for (const ms of times) {
        expect(ms).toBeGreaterThanOrEqual(2500);
        expect(ms).toBeLessThan(6000);
      }
      await sleep(1000);
      expect(loggedIn.destroyed).toBe(false);
      expect((await call(loggedIn, request(OP.FIND, credential, [])))[0]).toBe(CKR.OK);
    } finally {
      clearInterval(drip);
      for (const s of [silent, dribbler, loggedIn]) s.destroy();
    }
  }, 60_000);

  it('records unauthenticated requests as counts in one summary per interval, not a line each', async () => {
    await countsSettled();
    const before = auditEntries(tc, 'gateway').length;
    const sockets = await Promise.all(Array.from({ length: 50 }, () => connect(port)));
    try {
      await Promise.all(
        sockets.map(async (s) => {
          for (let i = 0; i < 10; i++) expect((await call(s, request(OP.FIND, 'p11v1.forged.mac', [])))[0]).toBe(CKR.USER_NOT_LOGGED_IN);
        }),
      );
      const wrongPins = await Promise.all(sockets.slice(0, 5).map((s) => call(s, request(OP.LOGIN, '', CKU.USER, randomBytes(32)))));
      expect(wrongPins.map((a) => a[0])).toEqual(Array(5).fill(CKR.PIN_INCORRECT));
    } finally {
      for (const s of sockets) s.destroy();
    }
    await sleep(2500);
    const after = entriesSince(before);
    expect(after.filter((e) => e.op?.startsWith('pkcs11.') && e.op !== 'pkcs11.unauthenticated')).toEqual([]);
    const summaries = after.filter((e) => e.op === 'pkcs11.unauthenticated');
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    expect(summaries.length).toBeLessThanOrEqual(4);
    const total = (k: string) => summaries.reduce((n, e) => n + (e.detail?.[k] ?? 0), 0);
    expect(total('noLogin')).toBe(500);
    expect(total('loginFailed')).toBe(5);
    expect(summaries[0]).toMatchObject({ outcome: 'refused', principal: { source: 'pkcs11' }, detail: { sources: 1 } });
  }, 60_000);
});

describe('logins', () => {
  it('expire after pkcs11LoginLifetimeMs: the credential is refused in the principal’s name, and the module logs in again by itself', async () => {
    const s = slot.open(RW);
    try {
      s.login(app.MPCHSM_PKCS11_PIN, graphene.UserType.USER);
      const message = Buffer.from('before and after expiry');
      expect(nodeVerify(null, message, publicKey, signAsApp(s, message))).toBe(true);
      const before = auditEntries(tc, 'gateway').length;
      await sleep(LIMITS.pkcs11LoginLifetimeMs + 500);
      // A server (nginx) logs in once and signs for days: the module renews the login with the
      // key it derived from the PIN, and sends the refused request again.
      expect(nodeVerify(null, message, publicKey, signAsApp(s, message))).toBe(true);
      const since = entriesSince(before).filter((e) => e.op?.startsWith('pkcs11.'));
      expect(since.slice(0, 2)).toMatchObject([
        { op: 'pkcs11.find', principal: { name: 'app' }, outcome: 'refused', reason: expect.stringMatching(/login of app has expired/) },
        { op: 'pkcs11.login', principal: { name: 'app' }, outcome: 'ok' },
      ]);
      // Logged out, nothing is renewed: no private key is seen, no login is made.
      s.logout();
      const logins = () => auditEntries(tc, 'gateway').filter((e) => e.op === 'pkcs11.login').length;
      const loginsBefore = logins();
      lib.C_FindObjectsInit(s.handle, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }]);
      expect(lib.C_FindObjects(s.handle, 10)).toEqual([]);
      lib.C_FindObjectsFinal(s.handle);
      expect(logins()).toBe(loginsBefore);
    } finally {
      s.close();
    }
  }, 60_000);

  it('end at logout: the credential is refused afterwards', async () => {
    const conn = await connect(port);
    try {
      const credential = await rawLogin(conn, app.MPCHSM_PKCS11_PIN);
      expect((await call(conn, request(OP.FIND, credential, [])))[0]).toBe(CKR.OK);
      expect((await call(conn, request(OP.LOGOUT, credential)))[0]).toBe(CKR.OK);
      const [rv, reason] = await call(conn, request(OP.FIND, credential, []));
      expect(rv).toBe(CKR.USER_NOT_LOGGED_IN);
      expect((reason as Buffer).toString()).toMatch(/login of app was logged out/);
    } finally {
      conn.destroy();
    }
  }, 60_000);

  it('end at C_Logout and at C_Finalize: the module tells the gateway', async () => {
    const logouts = () => auditEntries(tc, 'gateway').filter((e) => e.op === 'pkcs11.logout' && e.outcome === 'ok').length;
    const before = logouts();
    const s = slot.open(RW);
    s.login(app.MPCHSM_PKCS11_PIN, graphene.UserType.USER);
    s.logout();
    expect(logouts()).toBe(before + 1);
    s.login(app.MPCHSM_PKCS11_PIN, graphene.UserType.USER);
    mod!.finalize();
    mod = undefined;
    expect(logouts()).toBe(before + 2);
  }, 60_000);
});
