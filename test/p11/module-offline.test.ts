// The module with no gateway behind it: what it must do before any network (function lists,
// slot, token and mechanism information, digests, random), how it reports a missing or bad
// configuration, and that an unreachable gateway is CKR_DEVICE_ERROR, never a crash.
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import * as graphene from 'graphene-pk11';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKK, CKM, CKO } from '../../contract/pkcs11/ck.js';
import { Abi, decodeValue, frame, OP, type Value } from '../../contract/pkcs11/wire.js';
import { buildShim, CKR, ckrOf, codesPath, harness, hmacTestPath, modulePath, only, shaTestPath } from './helpers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'p11-offline-'));
const log = path.join(dir, 'module.log');
const conf = (name: string, text: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};
// Port 9 (discard) on loopback: nothing listens, so connecting fails at once.
const unreachable = conf('unreachable.conf', `# test\ngateway = 127.0.0.1:9\nlog = ${log}\nconnect_timeout = 2\n`);

beforeAll(() => buildShim(), 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hashes (FIPS 180-4)', () => {
  const run = (input: Buffer, piece = 0) => execFileSync(shaTestPath, [String(piece)], { input }).toString().trim().split('\n');
  const node = (input: Buffer) => ['sha1', 'sha224', 'sha256', 'sha384', 'sha512'].map((h) => createHash(h).update(input).digest('hex'));

  it('matches the standard examples', () => {
    const [sha1, sha224, sha256, sha384, sha512] = run(Buffer.from('abc'));
    expect(sha1).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    expect(sha224).toBe('23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7');
    expect(sha256).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha384).toBe('cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7');
    expect(sha512).toBe('ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f');
    expect(run(Buffer.alloc(1_000_000, 'a'), 4099)[2]).toBe('cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  });

  it('agrees with OpenSSL at every block boundary, however the input is cut', () => {
    for (const len of [0, 1, 55, 56, 63, 64, 65, 111, 112, 127, 128, 129, 1000]) {
      const input = randomBytes(len);
      for (const piece of [0, 1, 63, 64, 127, 128]) expect(run(input, piece)).toEqual(node(input));
    }
  });

  it('derives the PIN keys with HMAC-SHA256 and PBKDF2 as published (RFC 4231, RFC 7914 §11)', () => {
    const r = spawnSync(hmacTestPath, { encoding: 'utf8' });
    expect(r.stdout.trim().split('\n')).toEqual(['rfc4231-1', 'rfc4231-2', 'rfc4231-3', 'rfc4231-4', 'rfc4231-6', 'rfc4231-7', 'rfc7914-passwd', 'rfc7914-Password'].map((n) => `ok ${n}`));
    expect(r.status).toBe(0);
  });
});

describe('before the gateway', () => {
  it('answers the library, slot, token, mechanism and session calls by the spec', () => {
    const { steps, status } = harness(['offline'], { MPCHSM_PKCS11_CONF: unreachable });
    expect(status).toBe(0);
    const rv = (n: string) => only(steps, n).rv;
    const detail = (n: string) => only(steps, n).detail;
    expect(detail('get_function_list')).toBe('2.40');
    expect(detail('get_interface_3_0')).toBe('3.0');
    expect(rv('get_interface_9_9')).toBe(CKR.ARGUMENTS_BAD);
    expect(rv('before_init_slot_list')).toBe(CKR.CRYPTOKI_NOT_INITIALIZED);
    expect(rv('init_reserved')).toBe(CKR.ARGUMENTS_BAD);
    expect(rv('init_own_mutexes')).toBe(CKR.CANT_LOCK);
    expect(rv('init')).toBe(CKR.OK);
    expect(rv('init_again')).toBe(CKR.CRYPTOKI_ALREADY_INITIALIZED);
    expect(detail('info')).toMatch(/^2\.40 mpchsm/);
    expect(detail('slot_list_query')).toBe('1');
    expect(detail('slot_list')).toBe('1 0');
    // CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED
    expect(detail('token_info')).toMatch(/^mpchsm {26} flags=0x40d$/);
    expect(rv('token_info_bad_slot')).toBe(CKR.SLOT_ID_INVALID);
    expect(detail('mechanisms_query')).toBe('22');
    expect(only(steps, 'mechanisms_short')).toEqual({ rv: CKR.BUFFER_TOO_SMALL, detail: '22' });
    expect(detail('mechanism_info_eddsa')).toBe('flags=0x2801'); // HW | SIGN | VERIFY
    expect(rv('mechanism_info_unknown')).toBe(CKR.MECHANISM_INVALID);
    expect(rv('open_ro')).toBe(CKR.OK);
    expect(rv('open_parallel')).toBe(CKR.SESSION_PARALLEL_NOT_SUPPORTED);
    expect(detail('session_info')).toBe('state=0');
    expect(only(steps, 'digest_query')).toEqual({ rv: CKR.OK, detail: '32' });
    expect(only(steps, 'digest_short')).toEqual({ rv: CKR.BUFFER_TOO_SMALL, detail: '32' });
    expect(detail('digest')).toBe(createHash('sha256').update('abc').digest('hex'));
    expect(rv('digest_after')).toBe(CKR.OPERATION_NOT_INITIALIZED);
    expect(detail('digest_multipart_sha1')).toBe(createHash('sha1').update('abc').digest('hex'));
    expect(rv('random')).toBe(CKR.OK);
    expect(rv('login_unreachable')).toBe(CKR.DEVICE_ERROR);
    expect(rv('login_bad_type')).toBe(CKR.USER_TYPE_INVALID);
    expect(rv('close_again')).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(rv('finalize')).toBe(CKR.OK);
    expect(rv('after_finalize')).toBe(CKR.CRYPTOKI_NOT_INITIALIZED);
    expect(readFileSync(log, 'utf8')).toMatch(/"level":50,.*"msg":"C_Login \(PIN KDF\): cannot connect to the gateway at 127\.0\.0\.1:9/);
  });
});

/** CKR_RANDOM_SEED_NOT_SUPPORTED: the token's generator takes no seed from an application. */
const RANDOM_SEED_NOT_SUPPORTED = 0x120;

describe('return codes PKCS#11 3.0 specifies (C test program)', () => {
  let steps: ReturnType<typeof harness>['steps'];
  let status: number | null;
  beforeAll(() => ({ steps, status } = harness(['offline'], { MPCHSM_PKCS11_CONF: unreachable }, 60_000, codesPath)));
  const rv = (n: string) => only(steps, n).rv;

  it('C_SeedRandom: not initialised, a bad session, a NULL seed, then "seed not supported"', () => {
    expect(status).toBe(0);
    expect(rv('seed_not_initialized')).toBe(CKR.CRYPTOKI_NOT_INITIALIZED);
    expect(rv('seed_no_session')).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(rv('seed_null')).toBe(CKR.ARGUMENTS_BAD);
    expect(rv('seed')).toBe(RANDOM_SEED_NOT_SUPPORTED);
    expect(rv('seed_empty')).toBe(RANDOM_SEED_NOT_SUPPORTED);
  });

  it('a wrong PIN sets CKF_USER_PIN_COUNT_LOW (CKU_USER) or CKF_SO_PIN_COUNT_LOW (CKU_SO); nothing locks', () => {
    const flags = (n: string) => Number(/^flags=(0x[0-9a-f]+)$/.exec(only(steps, n).detail)![1]);
    expect(flags('flags_before')).toBe(0x40d);
    expect(rv('login_wrong_user')).toBe(CKR.PIN_INCORRECT);
    expect(flags('flags_user_wrong')).toBe(0x40d | 0x10000);
    expect(rv('login_wrong_so')).toBe(CKR.PIN_INCORRECT);
    expect(flags('flags_so_wrong')).toBe(0x40d | 0x10000 | 0x100000);
  });

  it('C_CopyObject copies session objects, changing what a copy may change', () => {
    expect(rv('copy_no_session')).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(rv('copy_no_out')).toBe(CKR.ARGUMENTS_BAD);
    expect(rv('copy_null_template')).toBe(CKR.ARGUMENTS_BAD);
    expect(rv('copy_bad_object')).toBe(CKR.OBJECT_HANDLE_INVALID);
    expect(rv('copy_class')).toBe(CKR.ATTRIBUTE_READ_ONLY);
    expect(only(steps, 'copy')).toEqual({ rv: CKR.OK, detail: '' });
    expect(only(steps, 'copy_label')).toEqual({ rv: CKR.OK, detail: 'copy' });
    expect(only(steps, 'original_label')).toEqual({ rv: CKR.OK, detail: 'original' });
    expect(only(steps, 'copy_same_label')).toEqual({ rv: CKR.OK, detail: 'original' });
    expect(rv('copy_to_token_ro')).toBe(CKR.SESSION_READ_ONLY);
    expect(rv('copy_to_token_no_login')).toBe(CKR.USER_NOT_LOGGED_IN);
    expect(rv('copy_private_no_login')).toBe(CKR.USER_NOT_LOGGED_IN);
    expect(rv('copy_unmodifiable_relabel')).toBe(CKR.ATTRIBUTE_READ_ONLY);
    expect(rv('copy_uncopyable')).toBe(CKR.ACTION_PROHIBITED);
  });
});

/**
 * A gateway for one test, in a worker thread: answers every search with `answer`, anything else
 * with `refusal`; reports its port, then each request's body.
 */
const LIAR = `
const net = require('node:net');
const { parentPort, workerData: w } = require('node:worker_threads');
const server = net.createServer((socket) => {
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const body = buf.subarray(4, 4 + buf.readUInt32BE(0));
      buf = buf.subarray(4 + body.length);
      parentPort.postMessage(body);
      // [list, uint version, uint op, ...]: the op's 8 bytes follow 1+4 (list) and 1+8+1 (version, tag).
      socket.write(Number(body.readBigUInt64BE(15)) === w.find ? w.answer : w.refusal);
    }
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
`;

describe('configuration problems', () => {
  const mod = graphene.Module.load(modulePath, 'mpchsm');
  const env = { ...process.env };
  afterAll(() => {
    process.env = env;
  });

  /** Initialises with MPCHSM_PKCS11_CONF=conf; returns the CKR and the new log lines. */
  const initialise = (confFile: string | undefined, logFile = log): { rv: number | undefined; lines: string } => {
    const before = (() => {
      try {
        return readFileSync(logFile, 'utf8').length;
      } catch {
        return 0;
      }
    })();
    if (confFile === undefined) delete process.env.MPCHSM_PKCS11_CONF;
    else process.env.MPCHSM_PKCS11_CONF = confFile;
    process.env.MPCHSM_PKCS11_LOG = logFile;
    const rv = ckrOf(() => mod.initialize());
    if (rv === undefined) mod.finalize();
    let lines = '';
    try {
      lines = readFileSync(logFile, 'utf8').slice(before);
    } catch {
      // no log written
    }
    return { rv, lines };
  };

  it('says clearly what is wrong, in the log, and fails C_Initialize without crashing', () => {
    expect(initialise(undefined)).toMatchObject({ rv: CKR.GENERAL_ERROR, lines: expect.stringMatching(/MPCHSM_PKCS11_CONF is not set/) });
    expect(initialise(path.join(dir, 'absent.conf')).lines).toMatch(/absent\.conf: cannot read the configuration: No such file/);
    const cases: [string, RegExp][] = [
      [`gateway = 127.0.0.1\n`, /:2: gateway must be HOST:PORT/],
      [`gateway = 127.0.0.1:70000\n`, /:2: gateway must be HOST:PORT/],
      [`log = ${log}\n# no gateway\n`, /no 'gateway = HOST:PORT' line/],
      [`gateway = 127.0.0.1:9\nport = 1\n`, /:3: unknown setting 'port'/],
      [`gateway = 127.0.0.1:9\ntimeout = 0\n`, /timeout must be 1\.\.3600 seconds/],
      [`gateway = 127.0.0.1:9\njust words\n`, /expected 'key = value'/],
      [`gateway = 127.0.0.1:9\ntls_ca = /x\n`, /tls_ca\/tls_server_name given but tls is not on/],
      [`gateway = 127.0.0.1:9\nkey_types = rsa dsa\n`, /unknown key type 'dsa'/],
      [`gateway = 127.0.0.1:9\ntls = on\ntls_ca = ${path.join(dir, 'none.pem')}\n`, /cannot load the CA certificates/],
    ];
    cases.forEach(([text, pattern], i) => {
      const r = initialise(conf(`bad${i}.conf`, `log = ${log}\n${text}`));
      expect(r.rv, text).toBe(CKR.GENERAL_ERROR);
      expect(r.lines, text).toMatch(pattern);
    });
  });

  it('initialises from a good file and reports an unreachable gateway as CKR_DEVICE_ERROR', () => {
    process.env.MPCHSM_PKCS11_CONF = conf('good.conf', `gateway = [::1]:9\nlog = ${log}\nkey_types = rsa, ec\n`);
    mod.initialize();
    try {
      const slot = mod.getSlots(0);
      expect(slot.getToken().label.trim()).toBe('mpchsm');
      expect(slot.slotDescription.trim()).toBe('mpchsm gateway ::1:9');
      const session = slot.open(graphene.SessionFlag.SERIAL_SESSION);
      expect(ckrOf(() => session.login('123456', graphene.UserType.USER))).toBe(CKR.DEVICE_ERROR);
      expect(session.find({ class: graphene.ObjectClass.PRIVATE_KEY }).length).toBe(0); // nothing before login, no request
      session.close();
    } finally {
      mod.finalize();
    }
    expect(readFileSync(log, 'utf8')).toMatch(/cannot connect to the gateway at ::1:9/);
  });

  it('before a login shows the public key a lying gateway sends, never a private key, and asks without a credential', async () => {
    // A gateway that answers every search with a public key, a private key and a private key it calls public.
    const abi = new Abi(1);
    const object = (uid: string, cls: number, priv: boolean): Value => [Buffer.from(uid), [[CKA.CLASS, abi.ulong(cls)], [CKA.PRIVATE, Buffer.of(priv ? 1 : 0)], [CKA.LABEL, Buffer.from('lie')], [CKA.KEY_TYPE, abi.ulong(CKK.EC_EDWARDS)], [CKA.VERIFY, Buffer.of(1)], [CKA.SIGN, Buffer.of(1)]], [], 64];
    const uid = (n: number, half: string) => `k:${String(n).repeat(8)}-${String(n).repeat(4)}-${String(n).repeat(4)}-${String(n).repeat(4)}-${String(n).repeat(12)}:${half}`;
    const answer = frame([CKR.OK, [object(uid(1, 'pub'), CKO.PUBLIC_KEY, false), object(uid(1, 'priv'), CKO.PRIVATE_KEY, true), object(uid(2, 'priv'), CKO.PRIVATE_KEY, false)]]);
    // The module's calls block this thread, so the gateway answers from a worker thread.
    const asked: { op: number; credential: string }[] = [];
    const worker = new Worker(LIAR, { eval: true, workerData: { answer, refusal: frame([CKR.DEVICE_ERROR, Buffer.from('not here')]), find: OP.FIND } });
    const port = await new Promise<number>((resolve) => worker.once('message', resolve));
    worker.on('message', (body: Uint8Array) => {
      const [, op, , credential] = decodeValue(Buffer.from(body)) as [number, number, number, Buffer];
      asked.push({ op, credential: credential.toString() });
    });
    process.env.MPCHSM_PKCS11_CONF = conf('liar.conf', `gateway = 127.0.0.1:${port}\nlog = ${log}\ntimeout = 10\n`);
    mod.initialize();
    try {
      const lib = mod.lib;
      const session = mod.getSlots(0).open(graphene.SessionFlag.SERIAL_SESSION);
      const find = (template: { type: number; value: number | Buffer | boolean }[]) => {
        lib.C_FindObjectsInit(session.handle, template);
        const found = lib.C_FindObjects(session.handle, 10);
        lib.C_FindObjectsFinal(session.handle);
        return found;
      };
      const found = find([{ type: CKA.LABEL, value: Buffer.from('lie') }]);
      expect(found.length).toBe(1);
      expect(lib.C_GetAttributeValue(session.handle, found[0]!, [{ type: CKA.CLASS }])[0]!.value).toEqual(abi.ulong(CKO.PUBLIC_KEY));
      await sleep(200); // the worker's reports
      expect(asked).toEqual([{ op: OP.FIND, credential: '' }]);
      // A search for private keys before a login needs no gateway: it asks nothing.
      expect(find([{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }])).toEqual([]);
      await sleep(200);
      expect(asked.length).toBe(1);
      // The handles the cache holds for the private keys stay unusable.
      for (let h = 1; h <= 3; h++) {
        const handle = Buffer.alloc(8);
        handle.writeBigUInt64LE(BigInt(h));
        if (handle.equals(found[0]!)) continue;
        expect(ckrOf(() => lib.C_SignInit(session.handle, { mechanism: CKM.EDDSA }, handle))).toBe(CKR.KEY_HANDLE_INVALID);
      }
      expect(ckrOf(() => lib.C_VerifyInit(session.handle, { mechanism: CKM.EDDSA }, found[0]!))).toBe(CKR.USER_NOT_LOGGED_IN);
      session.close();
    } finally {
      mod.finalize();
      await worker.terminate();
    }
  });

  it('logs a lying gateway’s refusal as one JSON line, whatever its reason and request id hold', async () => {
    const reason = Buffer.concat([Buffer.from('not "here"\n{"level":60,"msg":"forged"}\\ é'), Buffer.of(0xff, 0xc3)]);
    const worker = new Worker(LIAR, { eval: true, workerData: { answer: frame([CKR.OK, []]), refusal: frame([CKR.DEVICE_ERROR, reason, 0, Buffer.from('req"\nid')]), find: OP.FIND } });
    const port = await new Promise<number>((resolve) => worker.once('message', resolve));
    process.env.MPCHSM_PKCS11_CONF = conf('liar-reason.conf', `gateway = 127.0.0.1:${port}\nlog = ${log}\ntimeout = 10\n`);
    const before = readFileSync(log, 'utf8').length;
    mod.initialize();
    try {
      const session = mod.getSlots(0).open(graphene.SessionFlag.SERIAL_SESSION);
      expect(ckrOf(() => mod.lib.C_Login(session.handle, graphene.UserType.USER, '1234'))).toBe(CKR.DEVICE_ERROR);
      session.close();
    } finally {
      mod.finalize();
      await worker.terminate();
    }
    const lines = readFileSync(log, 'utf8').slice(before).split('\n').filter((l) => l !== '');
    const parsed = lines.map((l) => JSON.parse(l) as { msg: string; requestId?: string });
    const refused = parsed.filter((l) => l.msg.includes('refused'));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: 40, name: 'mpchsm-pkcs11', requestId: 'req"\nid' });
    expect(refused[0]!.msg).toMatch(/: refused \(CKR 0x30\): not "here"\n\{"level":60,"msg":"forged"\}\\ é\?\?$/);
  });
});
