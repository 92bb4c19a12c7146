// Malformed PKCS#11 frames against a real cluster's listener: a frame whose body does not decode,
// or whose arguments do not have the shape its operation takes, is answered CKR_ARGUMENTS_BAD
// (or the precise CKR, never CKR_GENERAL_ERROR), before and after a login, and the connection
// and the gateway go on serving valid requests.
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKK, CKM, CKU } from '../../contract/pkcs11/ck.js';
import { Abi, encodeValue, OP, type Value } from '../../contract/pkcs11/wire.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { auditEntries, createKey } from '../policy-cluster/helpers.js';
import { CKR } from './helpers.js';
import { call, callBody, closed, connect, rawLogin, request } from './raw-wire.js';

const LONG = 300_000;
/** Any answer but CKR_OK and CKR_GENERAL_ERROR: a refusal with its reason. */
const REFUSED = -1;
const ulong = (v: number) => new Abi(1).ulong(v);

interface Row {
  name: string;
  body(credential: string, keyUid: Buffer): Buffer;
  /** The answer without a login and with one (REFUSED: any refusal but CKR_GENERAL_ERROR). */
  before: number;
  after: number;
}

const req = (op: number, ...args: Value[]) => (credential: string) => encodeValue(request(op, credential, ...args));
const nested = (depth: number): Value => (depth === 0 ? [] : [nested(depth - 1)]);
/** Refused with ARGUMENTS_BAD whether or not a login stands behind it. */
const bad = (name: string, body: Row['body']): Row => ({ name, body, before: CKR.ARGUMENTS_BAD, after: CKR.ARGUMENTS_BAD });
/** An operation that needs a login: USER_NOT_LOGGED_IN without one, `after` with one. */
const loggedIn = (name: string, body: Row['body'], after: number = CKR.ARGUMENTS_BAD): Row => ({ name, body, before: CKR.USER_NOT_LOGGED_IN, after });

const ROWS: Row[] = [
  // Bodies that do not decode.
  bad('an empty body', () => Buffer.alloc(0)),
  bad('a truncated uint', () => Buffer.of(1, 0, 0, 0)),
  bad('an unknown value tag', () => Buffer.of(9, 1, 2)),
  bad('a request cut short by a byte', (c) => req(OP.FIND, [])(c).subarray(0, -1)),
  bad('a request with a trailing byte', (c) => Buffer.concat([req(OP.FIND, [])(c), Buffer.of(0)])),
  bad('bytes whose length runs past the end', () => Buffer.of(2, 0, 0, 0, 10, 0x61)),
  bad('a list claiming 2^32-1 values', () => Buffer.of(3, 0xff, 0xff, 0xff, 0xff)),
  bad('a template claiming 2^32-1 attributes', (c) => {
    const b = req(OP.FIND, [])(c);
    b.writeUInt32BE(0xffffffff, b.length - 4);
    return b;
  }),
  bad('values nested too deeply', req(OP.FIND, nested(12))),
  // Requests whose header is not [1, op, abi, credential, ...].
  bad('a uint, not a list', () => encodeValue(7)),
  bad('version 2', (c) => encodeValue([2, OP.FIND, 1, Buffer.from(c), []])),
  bad('the op as bytes', (c) => encodeValue([1, Buffer.from('find'), 1, Buffer.from(c), []])),
  bad('an op of 2^64-1', (c) => encodeValue([1, 2n ** 64n - 1n, 1, Buffer.from(c), []])),
  bad('unknown abi flags', (c) => encodeValue([1, OP.FIND, 9, Buffer.from(c), []])),
  bad('the credential as a list', (c) => encodeValue([1, OP.FIND, 1, [Buffer.from(c)], []])),
  bad('no credential', () => encodeValue([1, OP.FIND, 1])),
  // Unknown operations.
  loggedIn('op 99', req(99), CKR.FUNCTION_NOT_SUPPORTED),
  loggedIn('op 0', req(0, Buffer.alloc(3)), CKR.FUNCTION_NOT_SUPPORTED),
  // Arguments not of the operation's shape.
  bad('C_Login without arguments', req(OP.LOGIN)),
  bad('C_Login with the user type as bytes', req(OP.LOGIN, Buffer.of(CKU.USER), Buffer.alloc(32))),
  bad('C_Login with a list for the login key', req(OP.LOGIN, CKU.USER, [Buffer.alloc(32)])),
  // A search needs no login (a public session sees the public objects), so its arguments are checked either way.
  bad('C_FindObjects with bytes for the template', req(OP.FIND, Buffer.from('label'))),
  bad('C_FindObjects with an attribute without a value', req(OP.FIND, [[CKA.LABEL]])),
  bad('C_FindObjects with an attribute type as bytes', req(OP.FIND, [[Buffer.of(3), Buffer.from('x')]])),
  bad('C_FindObjects with an attribute value as a uint', req(OP.FIND, [[CKA.LABEL, 5]])),
  bad('C_FindObjects with 10,000 empty attributes', req(OP.FIND, Array.from({ length: 10_000 }, () => []))),
  loggedIn('C_Sign with too few arguments', (c, k) => req(OP.SIGN, k, CKM.EDDSA)(c)),
  loggedIn('C_Sign with the mechanism as bytes', (c, k) => req(OP.SIGN, k, Buffer.of(0x10, 0x57), [], Buffer.from('m'), 0, [])(c)),
  loggedIn('C_Sign with isDigest 2', (c, k) => req(OP.SIGN, k, CKM.EDDSA, [], Buffer.from('m'), 2, [])(c)),
  loggedIn('C_Sign with a list for the data', (c, k) => req(OP.SIGN, k, CKM.EDDSA, [], [Buffer.from('m')], 0, [])(c)),
  loggedIn('C_Sign with a malformed proof', (c, k) => req(OP.SIGN, k, CKM.EDDSA, [], Buffer.from('m'), 0, [1, 2])(c)),
  loggedIn('C_Sign with malformed EdDSA parameters', (c, k) => req(OP.SIGN, k, CKM.EDDSA, [[1, 2]], Buffer.from('m'), 0, [])(c), CKR.MECHANISM_PARAM_INVALID),
  loggedIn('C_Sign with bytes for the EdDSA parameters', (c, k) => req(OP.SIGN, k, CKM.EDDSA, [Buffer.of(1)], Buffer.from('m'), 0, [])(c), CKR.MECHANISM_PARAM_INVALID),
  bad('C_Verify with a uint for the key', req(OP.VERIFY, 5, CKM.EDDSA, [], Buffer.from('m'), 0, Buffer.alloc(64))),
  bad('C_Verify with a list of uints for the key', req(OP.VERIFY, [1, 2], CKM.EDDSA, [], Buffer.from('m'), 0, Buffer.alloc(64))),
  { name: 'C_Verify with a session key whose CKA_KEY_TYPE is 1 byte', body: req(OP.VERIFY, [[CKA.KEY_TYPE, Buffer.of(1)]], CKM.EDDSA, [], Buffer.from('m'), 0, Buffer.alloc(64)), before: REFUSED, after: REFUSED },
  {
    name: 'C_Encrypt with a session RSA key of a 1-byte modulus',
    body: req(OP.ENCRYPT, [[CKA.KEY_TYPE, ulong(CKK.RSA)], [CKA.MODULUS, Buffer.of(1)], [CKA.PUBLIC_EXPONENT, Buffer.of(3)]], CKM.RSA_PKCS, [], Buffer.from('m'), 0),
    before: REFUSED,
    after: REFUSED,
  },
  loggedIn('C_GenerateKeyPair with bytes for the templates', req(OP.GENERATE_KEY_PAIR, CKM.RSA_PKCS_KEY_PAIR_GEN, Buffer.alloc(8), Buffer.alloc(8))),
  loggedIn('C_GenerateKeyPair with a 3-byte CKA_MODULUS_BITS', req(OP.GENERATE_KEY_PAIR, CKM.RSA_PKCS_KEY_PAIR_GEN, [[CKA.MODULUS_BITS, Buffer.of(8, 0, 0)]], []), REFUSED),
  loggedIn('C_CreateObject with a 3-byte CKA_CLASS', req(OP.CREATE_OBJECT, [[CKA.CLASS, Buffer.of(1, 0, 0)]]), REFUSED),
  loggedIn('C_CreateObject with a uint for the template', req(OP.CREATE_OBJECT, 1)),
  loggedIn('C_DestroyObject with a list for the handle', req(OP.DESTROY_OBJECT, [Buffer.from('c:x')])),
  loggedIn('C_SetAttributeValue with a template of lists', (c, k) => req(OP.SET_ATTRIBUTES, k, [[[CKA.LABEL], [Buffer.from('x')]]])(c)),
  loggedIn('a check with uints', req(OP.CHECK, 1, 2)),
  // An inherited property of the checks' table is not a check.
  loggedIn('a check named toString', (c, k) => req(OP.CHECK, Buffer.from('toString'), k)(c)),
];

let tc: TestCluster;
let port: number;
let pin: string;
let keyUid: Buffer;

beforeAll(async () => {
  tc = await startCluster();
  const keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  keyUid = Buffer.from(`k:${keyId}:priv`);
  port = JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'config.json'), 'utf8')).pkcs11Port;
  pin = tc.principal('app').MPCHSM_PKCS11_PIN;
}, LONG);

afterAll(() => tc?.destroy(), LONG);

/** Sends every row on `s`, each followed by a valid request; returns the rows answered otherwise than expected. */
async function sendAll(s: net.Socket, credential: string, expected: (r: Row) => number, valid: Value): Promise<string[]> {
  const wrong: string[] = [];
  for (const row of ROWS) {
    const [rv, reason] = await callBody(s, row.body(credential, keyUid));
    const want = expected(row);
    const ok = want === REFUSED ? typeof rv === 'number' && rv !== CKR.OK && rv !== CKR.GENERAL_ERROR : rv === want;
    if (!ok) wrong.push(`${row.name}: CKR 0x${(rv as number).toString(16)} (${(reason as Buffer | undefined)?.toString('utf8')}), expected ${want === REFUSED ? 'a refusal' : `0x${want.toString(16)}`}`);
    expect((await call(s, valid))[0], `a valid request after "${row.name}"`).toBe(CKR.OK);
  }
  return wrong;
}

describe('malformed frames', () => {
  it('are refused with CKR_ARGUMENTS_BAD or the precise CKR before a login, and the connection serves on', async () => {
    const s = await connect(port);
    try {
      expect(await sendAll(s, '', (r) => r.before, request(OP.PIN_KDF, ''))).toEqual([]);
      expect(s.destroyed).toBe(false);
    } finally {
      s.destroy();
    }
  }, 60_000);

  it('are refused with CKR_ARGUMENTS_BAD or the precise CKR after a login, and the connection and the gateway serve on', async () => {
    const audited = auditEntries(tc, 'gateway').length;
    const s = await connect(port);
    try {
      const credential = await rawLogin(s, pin);
      expect(await sendAll(s, credential, (r) => r.after, request(OP.FIND, credential, []))).toEqual([]);
      expect(s.destroyed).toBe(false);
    } finally {
      s.destroy();
    }
    const fresh = await connect(port);
    try {
      const credential = await rawLogin(fresh, pin);
      const [rv, objects] = await call(fresh, request(OP.FIND, credential, []));
      expect(rv).toBe(CKR.OK);
      expect((objects as Value[]).length).toBeGreaterThan(0);
    } finally {
      fresh.destroy();
    }
    // Each request a login stands behind is recorded in the principal's name as a refusal, none as a failure.
    const entries = (auditEntries(tc, 'gateway').slice(audited) as { op?: string; outcome?: string }[]).filter((e) => e.op?.startsWith('pkcs11.') && e.op !== 'pkcs11.login');
    expect(entries.filter((e) => e.outcome === 'refused').length).toBeGreaterThanOrEqual(ROWS.filter((r) => r.before === CKR.USER_NOT_LOGGED_IN).length);
    expect(entries.filter((e) => e.outcome === 'failed')).toEqual([]);
  }, 60_000);

  it('that cannot be framed (a length over the limit) still close the connection', async () => {
    const s = await connect(port);
    s.write(Buffer.of(0xff, 0xff, 0xff, 0xff));
    await closed(s);
    const fresh = await connect(port);
    try {
      expect((await call(fresh, request(OP.PIN_KDF, '')))[0]).toBe(CKR.OK);
    } finally {
      fresh.destroy();
    }
  }, 60_000);
});
