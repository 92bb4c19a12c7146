// Every role × every PKCS#11 operation the module supports, through the real C module
// (graphene-pk11/pkcs11js) against a real cluster: an application (CKU_USER), a key
// administrator (CKU_SO), a session whose login failed (wrong PIN, another principal's PIN, the
// auditor's PIN — the auditor has no PKCS#11 login: PKCS#11 knows only CKU_USER and CKU_SO), and
// a session never logged in. Each refusal must be the right CKR, change nothing (keys, aliases,
// key states, proposals, certificates), and — when a logged-in principal asked — be recorded in
// the gateway's audit log by the gateway, which decides it. Refusals the module gives on its own
// (no login, read-only objects, session state) reach nothing and are recorded nowhere.
import { constants, createHash, createPublicKey, publicEncrypt, verify as nodeVerify } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { CreateAliasCommand } from '@aws-sdk/client-kms';
import * as graphene from 'graphene-pk11';
import type * as pkcs11 from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../../gateway/config.js';
import { CKA, CKG, CKK, CKM, CKO, CKR } from '../../contract/pkcs11/ck.js';
import { uuidBytes } from '../../gateway/p11/objects.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { auditEntries as auditLog, createKey, kms, perSignaturePolicy } from '../policy-cluster/helpers.js';
import { buildShim, ckrOf, stopModuleAndCluster, loadModule } from './helpers.js';
import { selfSigned } from './x509-build.js';

const LONG = 600_000;
const RW = graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION;
const CK_PARAMS_RSA_OAEP = 4;
const ED25519_OID = Buffer.from('06032b6570', 'hex');
const OAEP = { mechanism: CKM.RSA_PKCS_OAEP, parameter: { type: CK_PARAMS_RSA_OAEP, hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, source: 1 } as pkcs11.IParams };

let tc: TestCluster;
let mod: graphene.Module;
let lib: pkcs11.PKCS11;
let slot: graphene.Slot;
let keeper: graphene.Session; // open throughout: holds the session objects every role looks for
let moduleLog: string;

const keyIds = { ed: '', p256: '', rsa: '', dec: '', victim: '', gated: '' };
type KeyName = keyof typeof keyIds;
/** Module handles, learnt once while logged in; they stay valid (and invisible without a login). */
const pub = {} as Record<KeyName, Buffer>;
const priv = {} as Record<KeyName, Buffer>;
let cert: Buffer;
let publicData: Buffer;
let privateData: Buffer;
let edSignature: Buffer;
let edPoint: Buffer;
const signed = Buffer.from('signed by the application');
const gatedMessage = Buffer.from('release 1.0, approved per signature');

// ---- roles -------------------------------------------------------------------------------

const WHO = ['app', 'admin', 'wrongPin', 'none'] as const;
type Who = (typeof WHO)[number];
/** The principal the gateway's audit entry names for each role's requests. */
const PRINCIPAL: Record<Who, string | undefined> = { app: 'app', admin: 'admin1', wrongPin: undefined, none: undefined };
const pinOf = (name: string) => tc.principal(name).MPCHSM_PKCS11_PIN;

// ---- what each row expects of each role ------------------------------------------------------

/**
 * A row's answer for one role: the CKR, and for a refusal the operation under which the gateway
 * records it (`pkcs11.<audit>`), or none when the module refuses by itself.
 */
interface Expect {
  rv: number;
  audit?: string;
}
const ok: Expect = { rv: CKR.OK };
const gateway = (rv: number, audit: string): Expect => ({ rv, audit });
const local = (rv: number): Expect => ({ rv });

interface Row {
  name: string;
  /** Runs the operation; answers its CKR (undefined: CKR_OK) and checks what an allowed one returned. */
  run(s: graphene.Session, who: Who): number | undefined | Promise<number | undefined>;
  /** `out`: a session whose login failed, or that never logged in (they must behave the same). */
  expect: { app: Expect; admin: Expect; out: Expect };
  /** An administrator's request under quorum: refused, and held as a proposal of this operation. */
  proposes?: string;
}

/** CKR of the first failing call, or undefined. */
function first(...calls: (() => unknown)[]): number | undefined {
  for (const call of calls) {
    const rv = ckrOf(call);
    if (rv !== undefined) return rv;
  }
  return undefined;
}
function find(s: graphene.Session, template: pkcs11.Template): Buffer[] {
  lib.C_FindObjectsInit(s.handle, template);
  const found = lib.C_FindObjects(s.handle, 1000);
  lib.C_FindObjectsFinal(s.handle);
  return found;
}
const attr = (s: graphene.Session, h: Buffer, type: number) => lib.C_GetAttributeValue(s.handle, h, [{ type }])[0]!.value as Buffer;
const byId = (name: KeyName, cls: number): pkcs11.Template => [{ type: CKA.ID, value: uuidBytes(keyIds[name]) }, { type: CKA.CLASS, value: cls }];

function signRow(name: KeyName, mechanism: number, check: (sig: Buffer) => boolean): Row {
  return {
    name: `C_SignInit/C_Sign (${name})`,
    run: (s) => {
      let sig: Buffer = Buffer.alloc(0);
      const rv = first(() => lib.C_SignInit(s.handle, { mechanism }, priv[name]), () => (sig = lib.C_Sign(s.handle, signed, Buffer.alloc(512))));
      if (rv === undefined) expect(check(sig), `${name} signature verifies`).toBe(true);
      return rv;
    },
    expect: { app: ok, admin: gateway(CKR.USER_NOT_LOGGED_IN, 'sign_init'), out: local(CKR.KEY_HANDLE_INVALID) },
  };
}
/** The SPKI of each key, as its public object says (read while logged in). */
const spkis = {} as Record<KeyName, Buffer>;
const publicKeyOf = (name: KeyName) => createPublicKey({ key: spkis[name], format: 'der', type: 'spki' });

const loggedIn = (who: Who) => who === 'app' || who === 'admin';
/** A search succeeds for everybody; what it finds depends on the login. */
function findRow(name: string, template: () => pkcs11.Template, wanted: () => Buffer[], seenBy: (who: Who) => boolean): Row {
  return {
    name: `C_FindObjects: ${name}`,
    run: (s, who) => {
      const found = find(s, template());
      for (const h of wanted()) expect(found.some((x) => x.equals(h)), `${name} found by ${who}`).toBe(seenBy(who));
      return undefined;
    },
    expect: { app: ok, admin: ok, out: ok },
  };
}

const ROWS: Row[] = [
  findRow('private keys', () => [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }], () => Object.values(priv), loggedIn),
  // Public token objects are seen before a login too, as on a hardware token; private keys never are.
  findRow('public keys and certificates', () => [{ type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: false }], () => [...Object.values(pub), cert], () => true),
  findRow('public session objects', () => [{ type: CKA.CLASS, value: CKO.DATA }], () => [publicData], () => true),
  findRow('private session objects', () => [{ type: CKA.CLASS, value: CKO.DATA }], () => [privateData], loggedIn),
  {
    name: 'C_CreateObject: a private session object',
    run: (s) => first(() => lib.C_DestroyObject(s.handle, lib.C_CreateObject(s.handle, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.PRIVATE, value: true }, { type: CKA.VALUE, value: Buffer.from('x') }]))),
    expect: { app: ok, admin: ok, out: local(CKR.USER_NOT_LOGGED_IN) },
  },
  {
    name: 'C_GetAttributeValue: public attributes',
    run: (s) => first(() => expect(attr(s, pub.ed, CKA.EC_POINT)).toEqual(edPoint)),
    expect: { app: ok, admin: ok, out: ok },
  },
  {
    name: 'C_GetAttributeValue: a private key component',
    run: (s) => first(() => attr(s, priv.rsa, CKA.PRIVATE_EXPONENT)),
    expect: { app: local(CKR.ATTRIBUTE_SENSITIVE), admin: local(CKR.ATTRIBUTE_SENSITIVE), out: local(CKR.OBJECT_HANDLE_INVALID) },
  },
  signRow('ed', CKM.EDDSA, (sig) => ed25519.verify(sig, signed, edPoint.subarray(2))),
  signRow('p256', CKM.ECDSA_SHA256, (sig) => nodeVerify('sha256', signed, { key: publicKeyOf('p256'), dsaEncoding: 'ieee-p1363' }, sig)),
  signRow('rsa', CKM.SHA256_RSA_PKCS, (sig) => nodeVerify('sha256', signed, publicKeyOf('rsa'), sig)),
  {
    name: 'C_SignInit/C_Sign with a key that needs approval per signature',
    run: (s) => first(() => lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA }, priv.gated), () => lib.C_Sign(s.handle, gatedMessage, Buffer.alloc(64))),
    expect: { app: gateway(CKR.FUNCTION_REJECTED, 'sign'), admin: gateway(CKR.USER_NOT_LOGGED_IN, 'sign_init'), out: local(CKR.KEY_HANDLE_INVALID) },
  },
  {
    name: 'C_VerifyInit/C_Verify with a token public key',
    run: (s) => {
      const rv = first(() => lib.C_VerifyInit(s.handle, { mechanism: CKM.EDDSA }, pub.ed), () => lib.C_Verify(s.handle, signed, edSignature));
      if (rv === undefined) {
        lib.C_VerifyInit(s.handle, { mechanism: CKM.EDDSA }, pub.ed);
        expect(ckrOf(() => lib.C_Verify(s.handle, Buffer.from('other'), edSignature))).toBe(CKR.SIGNATURE_INVALID);
      }
      return rv;
    },
    // Before a login the public key is seen, but only a login uses a token key.
    expect: { app: ok, admin: gateway(CKR.USER_NOT_LOGGED_IN, 'verify_init'), out: local(CKR.USER_NOT_LOGGED_IN) },
  },
  {
    name: 'C_VerifyInit/C_Verify with a session public key (no key of the token involved)',
    run: (s) => {
      const h = lib.C_CreateObject(s.handle, [
        { type: CKA.CLASS, value: CKO.PUBLIC_KEY }, { type: CKA.KEY_TYPE, value: CKK.EC_EDWARDS }, { type: CKA.TOKEN, value: false },
        { type: CKA.EC_PARAMS, value: ED25519_OID }, { type: CKA.EC_POINT, value: edPoint },
      ]);
      try {
        return first(() => lib.C_VerifyInit(s.handle, { mechanism: CKM.EDDSA }, h), () => lib.C_Verify(s.handle, signed, edSignature));
      } finally {
        lib.C_DestroyObject(s.handle, h);
      }
    },
    expect: { app: ok, admin: ok, out: ok },
  },
  {
    name: 'C_EncryptInit/C_Encrypt (RSA OAEP) with a token public key',
    run: (s) => {
      let c: Buffer = Buffer.alloc(0);
      const rv = first(() => lib.C_EncryptInit(s.handle, OAEP, pub.dec), () => (c = lib.C_Encrypt(s.handle, Buffer.from('a data key'), Buffer.alloc(256))));
      if (rv === undefined) {
        lib.C_DecryptInit(s.handle, OAEP, priv.dec);
        expect(lib.C_Decrypt(s.handle, c, Buffer.alloc(256)).toString()).toBe('a data key');
      }
      return rv;
    },
    expect: { app: ok, admin: gateway(CKR.USER_NOT_LOGGED_IN, 'encrypt_init'), out: local(CKR.USER_NOT_LOGGED_IN) },
  },
  {
    name: 'C_DecryptInit/C_Decrypt (RSA OAEP)',
    run: (s) => {
      const c = publicEncrypt({ key: publicKeyOf('dec'), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from('secret'));
      let plain: Buffer = Buffer.alloc(0);
      const rv = first(() => lib.C_DecryptInit(s.handle, OAEP, priv.dec), () => (plain = lib.C_Decrypt(s.handle, c, Buffer.alloc(256))));
      if (rv === undefined) expect(plain.toString()).toBe('secret');
      return rv;
    },
    expect: { app: ok, admin: gateway(CKR.USER_NOT_LOGGED_IN, 'decrypt_init'), out: local(CKR.KEY_HANDLE_INVALID) },
  },
  {
    name: 'C_GenerateKeyPair (Ed25519)',
    run: (s, who) => first(() => lib.C_GenerateKeyPair(s.handle, { mechanism: CKM.EC_EDWARDS_KEY_PAIR_GEN }, [{ type: CKA.EC_PARAMS, value: ED25519_OID }], [{ type: CKA.LABEL, value: `gen-${who}` }, { type: CKA.SIGN, value: true }])),
    // The administrator's request, proved by the module, is the one approval CreateKey needs (issue #16).
    expect: { app: gateway(CKR.USER_NOT_LOGGED_IN, 'generate_key_pair'), admin: ok, out: local(CKR.USER_NOT_LOGGED_IN) },
  },
  {
    name: 'C_SetAttributeValue: CKA_LABEL of a key (a KMS alias)',
    run: (s, who) => {
      const rv = first(() => lib.C_SetAttributeValue(s.handle, priv.ed, [{ type: CKA.LABEL, value: `ed-by-${who}` }]));
      if (rv === undefined) {
        // Both objects carry the new label at once, and the key answers to it in searches.
        expect([priv.ed, pub.ed].map((h) => attr(s, h, CKA.LABEL).toString())).toEqual([`ed-by-${who}`, `ed-by-${who}`]);
        expect(find(s, [{ type: CKA.LABEL, value: `ed-by-${who}` }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }])).toEqual([priv.ed]);
        expect(aliases()).toContainEqual({ name: `alias/ed-by-${who}`, keyId: keyIds.ed });
        // Every signer took the alias on admin1's own request, which the module proved (issue #16).
        for (const signer of ['signer1', 'signer2', 'signer3'])
          expect(auditLog(tc, signer).some((e) => e.op === 'policy.CreateAlias' && e.outcome === 'ok' && e.keyId === keyIds.ed && (e.principal as { name: string }).name === 'admin1'), signer).toBe(true);
      }
      return rv;
    },
    expect: { app: gateway(CKR.USER_NOT_LOGGED_IN, 'set_attributes'), admin: ok, out: local(CKR.OBJECT_HANDLE_INVALID) },
  },
  {
    name: "C_SetAttributeValue: CKA_LABEL naming another key's alias",
    run: (s) => first(() => lib.C_SetAttributeValue(s.handle, priv.ed, [{ type: CKA.LABEL, value: 'm-rsa' }])),
    expect: { app: gateway(CKR.USER_NOT_LOGGED_IN, 'set_attributes'), admin: gateway(CKR.ATTRIBUTE_VALUE_INVALID, 'set_attributes'), out: local(CKR.OBJECT_HANDLE_INVALID) },
  },
  {
    name: 'C_SetAttributeValue: CKA_LABEL that is no alias name',
    run: (s) => first(() => lib.C_SetAttributeValue(s.handle, pub.ed, [{ type: CKA.LABEL, value: 'my key' }])),
    expect: { app: gateway(CKR.USER_NOT_LOGGED_IN, 'set_attributes'), admin: gateway(CKR.ATTRIBUTE_VALUE_INVALID, 'set_attributes'), out: local(CKR.USER_NOT_LOGGED_IN) },
  },
  {
    name: 'C_SetAttributeValue: another attribute of a key (CKA_ID)',
    run: (s) => first(() => lib.C_SetAttributeValue(s.handle, priv.ed, [{ type: CKA.ID, value: Buffer.of(1) }])),
    expect: { app: gateway(CKR.USER_NOT_LOGGED_IN, 'set_attributes'), admin: gateway(CKR.ATTRIBUTE_READ_ONLY, 'set_attributes'), out: local(CKR.OBJECT_HANDLE_INVALID) },
  },
  {
    name: 'C_SetAttributeValue: a certificate (CKA_MODIFIABLE false)',
    run: (s) => first(() => lib.C_SetAttributeValue(s.handle, cert, [{ type: CKA.LABEL, value: 'renamed' }])),
    expect: { app: local(CKR.ACTION_PROHIBITED), admin: local(CKR.ACTION_PROHIBITED), out: local(CKR.ACTION_PROHIBITED) },
  },
  {
    name: 'C_CopyObject: a key',
    run: (s) => first(() => lib.C_CopyObject(s.handle, priv.ed, [{ type: CKA.LABEL, value: 'copy' }])),
    expect: { app: local(CKR.ACTION_PROHIBITED), admin: local(CKR.ACTION_PROHIBITED), out: local(CKR.OBJECT_HANDLE_INVALID) },
  },
  {
    name: 'C_CopyObject: a certificate',
    run: (s) => first(() => lib.C_CopyObject(s.handle, cert, [{ type: CKA.TOKEN, value: false }])),
    expect: { app: local(CKR.ACTION_PROHIBITED), admin: local(CKR.ACTION_PROHIBITED), out: local(CKR.ACTION_PROHIBITED) },
  },
  {
    name: 'C_CreateObject and C_DestroyObject: a certificate (token object)',
    run: (s, who) => {
      const template: pkcs11.Template = [{ type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.CERTIFICATE_TYPE, value: 0 }, { type: CKA.TOKEN, value: true }, { type: CKA.VALUE, value: selfSigned(`by ${who}`).der }, { type: CKA.LABEL, value: `cert-${who}` }];
      let h: Buffer = Buffer.alloc(0);
      const rv = first(() => (h = lib.C_CreateObject(s.handle, template)));
      if (rv === undefined) {
        expect(find(s, [{ type: CKA.LABEL, value: `cert-${who}` }])).toEqual([h]);
        lib.C_DestroyObject(s.handle, h);
        expect(find(s, [{ type: CKA.LABEL, value: `cert-${who}` }])).toEqual([]);
      }
      return rv;
    },
    expect: { app: ok, admin: ok, out: local(CKR.USER_NOT_LOGGED_IN) },
  },
  {
    name: 'C_CreateObject: a trusted certificate',
    run: (s) => first(() => lib.C_DestroyObject(s.handle, lib.C_CreateObject(s.handle, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.TOKEN, value: true }, { type: CKA.VALUE, value: selfSigned('trusted').der }, { type: CKA.TRUSTED, value: true }]))),
    expect: { app: gateway(CKR.ATTRIBUTE_READ_ONLY, 'create_object'), admin: ok, out: local(CKR.USER_NOT_LOGGED_IN) },
  },
  {
    name: 'C_DestroyObject: a certificate',
    run: (s) => first(() => lib.C_DestroyObject(s.handle, cert)),
    // Each logged-in role's own row made and removed its certificate; this one is the keeper's.
    expect: { app: ok, admin: ok, out: local(CKR.USER_NOT_LOGGED_IN) },
  },
  {
    name: 'C_DestroyObject: a key (KMS ScheduleKeyDeletion)',
    run: (s) => first(() => lib.C_DestroyObject(s.handle, priv.victim)),
    expect: { app: gateway(CKR.USER_NOT_LOGGED_IN, 'destroy_object'), admin: gateway(CKR.FUNCTION_REJECTED, 'destroy_object'), out: local(CKR.OBJECT_HANDLE_INVALID) },
    proposes: 'kms:ScheduleKeyDeletion',
  },
  {
    name: 'C_GenerateRandom',
    run: (s) => first(() => expect(lib.C_GenerateRandom(s.handle, Buffer.alloc(32)).equals(Buffer.alloc(32))).toBe(false)),
    expect: { app: ok, admin: ok, out: ok },
  },
  {
    name: 'C_InitPIN',
    run: (s) => first(() => lib.C_InitPIN(s.handle, 'new-user-pin')),
    expect: { app: gateway(CKR.USER_NOT_LOGGED_IN, 'init_pin'), admin: gateway(CKR.FUNCTION_NOT_SUPPORTED, 'init_pin'), out: local(CKR.USER_NOT_LOGGED_IN) },
  },
  {
    name: 'C_SetPIN',
    run: (s) => first(() => lib.C_SetPIN(s.handle, 'old-pin', 'new-pin')),
    expect: { app: gateway(CKR.FUNCTION_NOT_SUPPORTED, 'set_pin'), admin: gateway(CKR.FUNCTION_NOT_SUPPORTED, 'set_pin'), out: local(CKR.FUNCTION_NOT_SUPPORTED) },
  },
  {
    name: 'C_InitToken (while sessions are open)',
    run: () => first(() => lib.C_InitToken(slot.handle, 'so-pin', 'mpchsm'.padEnd(32))),
    expect: { app: local(CKR.SESSION_EXISTS), admin: local(CKR.SESSION_EXISTS), out: local(CKR.SESSION_EXISTS) },
  },
];

// ---- the state a refusal must leave untouched, and the audit log -----------------------------

const gw = (...p: string[]) => path.join(tc.dir, 'gateway', ...p);
const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
interface Snapshot {
  /** Key records (states, tags), aliases and key policies, the module's certificates and key names, per-signature approvals. */
  world: string;
  proposals: { id: string; operation: string; status: string }[];
}
function snapshot(): Snapshot {
  const keys = readdirSync(gw('keys')).filter((f) => f.endsWith('.json')).sort().map((f) => read(gw('keys', f)));
  const p = JSON.parse(read(gw('proposals.json')) || '{"proposals":[],"signApprovals":[],"consumed":{}}');
  return {
    world: JSON.stringify({ keys, kms: read(gw('kms-state.json')), p11: read(gw('p11', 'store.json')), signApprovals: p.signApprovals, consumed: p.consumed }),
    proposals: p.proposals.map((x: { proposal: { id: string; operation: string }; status: string }) => ({ id: x.proposal.id, operation: x.proposal.operation, status: x.status })),
  };
}
/** The gateway's audit events (its signed checkpoints and its periodic counts of requests without a login left out). */
const auditEntries = (t: TestCluster, party: string) => auditLog(t, party).filter((e) => e.kind === 'event' && e.op !== 'pkcs11.unauthenticated');
const aliases = () => (JSON.parse(read(gw('kms-state.json'))).aliases as { name: string; keyId: string }[]).map(({ name, keyId }) => ({ name, keyId }));
const proposalsMade: Record<string, string> = {};

beforeAll(async () => {
  buildShim();
  tc = await startCluster();
  moduleLog = path.join(tc.dir, 'principals', 'pkcs11.log');
  const gatedPolicy = perSignaturePolicy(loadGatewayConfig(gw()).account, 1);
  const specs: Record<KeyName, Parameters<typeof createKey>[1]> = {
    ed: { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' },
    p256: { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' },
    rsa: { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' },
    dec: { KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' },
    victim: { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' },
    gated: { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY', Policy: gatedPolicy },
  };
  for (const name of Object.keys(specs) as KeyName[]) keyIds[name] = await createKey(tc, specs[name]);
  await kms(tc, 'admin1').send(new CreateAliasCommand({ AliasName: 'alias/m-rsa', TargetKeyId: keyIds.rsa }));

  ({ mod, lib, slot } = loadModule(tc.principal('app').MPCHSM_PKCS11_CONF));
  // As the application: learn the handles, make a certificate and the session objects, sign once.
  keeper = slot.open(RW);
  keeper.login(pinOf('app'), graphene.UserType.USER);
  for (const name of Object.keys(keyIds) as KeyName[]) {
    const [p, q] = [find(keeper, byId(name, CKO.PUBLIC_KEY)), find(keeper, byId(name, CKO.PRIVATE_KEY))];
    expect([p.length, q.length], name).toEqual([1, 1]);
    [pub[name], priv[name]] = [p[0]!, q[0]!];
    spkis[name] = attr(keeper, pub[name], CKA.PUBLIC_KEY_INFO);
  }
  edPoint = attr(keeper, pub.ed, CKA.EC_POINT);
  lib.C_SignInit(keeper.handle, { mechanism: CKM.EDDSA }, priv.ed);
  edSignature = lib.C_Sign(keeper.handle, signed, Buffer.alloc(64));
  publicData = lib.C_CreateObject(keeper.handle, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.LABEL, value: 'public-data' }]);
  privateData = lib.C_CreateObject(keeper.handle, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.LABEL, value: 'private-data' }, { type: CKA.PRIVATE, value: true }]);
  keeper.logout();
}, LONG);

afterAll(() => stopModuleAndCluster(mod, tc), LONG);

/** Makes the keeper's certificate (the rows of each logged-in role remove it). */
function makeCert(s: graphene.Session): void {
  cert = lib.C_CreateObject(s.handle, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.TOKEN, value: true }, { type: CKA.VALUE, value: selfSigned('keeper').der }, { type: CKA.LABEL, value: 'keeper-cert' }]);
}

// ---- the matrix ----------------------------------------------------------------------------

describe.each(WHO)('as %s', (who) => {
  let s: graphene.Session;
  beforeAll(() => {
    s = slot.open(RW);
    // The keeper certificate exists for every role's rows (made with a login, if this role has none).
    if (who === 'admin') s.login(pinOf('admin1'), graphene.UserType.SO);
    else s.login(pinOf('app'), graphene.UserType.USER);
    makeCert(s);
    if (who === 'wrongPin' || who === 'none') s.logout();
    if (who === 'wrongPin') expect(ckrOf(() => s.login('not-a-pin', graphene.UserType.USER))).toBe(CKR.PIN_INCORRECT);
  });
  afterAll(() => {
    if (who === 'app' || who === 'admin') s.logout();
    else {
      // Remove the keeper certificate this role could not remove.
      s.login(pinOf('app'), graphene.UserType.USER);
      lib.C_DestroyObject(s.handle, cert);
      s.logout();
    }
    s.close();
  });

  for (const row of ROWS) {
    const e = who === 'app' || who === 'admin' ? row.expect[who] : row.expect.out;
    const what = e.rv === CKR.OK ? 'allowed' : `CKR 0x${e.rv.toString(16)}${e.audit ? ', recorded by the gateway' : ', by the module'}`;
    it(`${row.name}: ${what}`, async () => {
      const before = snapshot();
      const audited = auditEntries(tc, 'gateway').length;
      const rv = (await row.run(s, who)) ?? CKR.OK;
      expect(rv, `CKR 0x${rv.toString(16)}; module log: ${read(moduleLog).split('\n').slice(-3).join(' | ')}`).toBe(e.rv);
      if (e.rv === CKR.OK) return;
      const after = snapshot();
      expect(after.world, 'a refusal changes nothing').toBe(before.world);
      const fresh = after.proposals.filter((p) => !before.proposals.some((q) => q.id === p.id));
      if (row.proposes && who === 'admin') {
        // Under the governance's quorum: nothing is done yet; one proposal holds the request.
        expect(fresh).toEqual([{ id: expect.stringMatching(/^p-/), operation: row.proposes, status: 'open' }]);
        expect(read(moduleLog)).toContain(`mpchsm approve ${fresh[0]!.id} --as <administrator>`);
        proposalsMade[row.proposes] = fresh[0]!.id;
      } else {
        expect(fresh, 'no proposal').toEqual([]);
      }
      const entries = auditEntries(tc, 'gateway').slice(audited);
      if (!e.audit) {
        expect(entries, 'the module refused on its own: nothing reached the gateway').toEqual([]);
        return;
      }
      if (PRINCIPAL[who] === undefined) {
        // test/p11/limits.test.ts checks the counts that stand for these.
        expect(entries, 'without a login, refusals are counted in a periodic summary, not recorded one by one').toEqual([]);
        return;
      }
      expect(entries.length, JSON.stringify(entries)).toBe(1);
      expect(entries[0]).toMatchObject({ op: `pkcs11.${e.audit}`, outcome: 'refused', output: 'none' });
      expect(String(entries[0]!.reason)).toMatch(new RegExp(`^CKR 0x${e.rv.toString(16)}: \\S`));
      expect((entries[0]!.principal as { name?: string }).name).toBe(PRINCIPAL[who]);
    }, LONG);
  }
});

// ---- logins, and what the quorum and the approvals then allow ---------------------------------

describe('logging in', () => {
  it('refuses wrong PINs, PINs of the other user type and the auditor, counting the attempts rather than recording each; never the PIN', () => {
    const s = slot.open(RW);
    try {
      const attempts: [string, number][] = [
        ['not-a-pin', graphene.UserType.USER],
        ['not-a-pin', graphene.UserType.SO],
        [pinOf('auditor'), graphene.UserType.USER], // the auditor reads through the KMS API and the audit tools
        [pinOf('auditor'), graphene.UserType.SO],
        [pinOf('app'), graphene.UserType.SO],
        [pinOf('admin2'), graphene.UserType.USER],
      ];
      for (const [pin, type] of attempts) {
        const audited = auditEntries(tc, 'gateway').length;
        expect(ckrOf(() => s.login(pin, type)), `${type}`).toBe(CKR.PIN_INCORRECT);
        const entries = auditEntries(tc, 'gateway').slice(audited);
        expect(entries).toEqual([]);
        expect(lib.C_GetSessionInfo(s.handle).state).toBe(2); // CKS_RW_PUBLIC_SESSION: still nobody
      }
      // Types PKCS#11 does not have, or that need an operation, never reach the gateway.
      const audited = auditEntries(tc, 'gateway').length;
      expect(ckrOf(() => lib.C_Login(s.handle, 5, pinOf('app')))).toBe(CKR.USER_TYPE_INVALID);
      expect(ckrOf(() => lib.C_Login(s.handle, 2, pinOf('app')))).toBe(CKR.OPERATION_NOT_INITIALIZED); // CKU_CONTEXT_SPECIFIC
      expect(auditEntries(tc, 'gateway').length).toBe(audited);
    } finally {
      s.close();
    }
    for (const name of ['app', 'admin1', 'admin2', 'auditor']) {
      expect(read(moduleLog)).not.toContain(pinOf(name));
      expect(read(gw('audit.jsonl'))).not.toContain(pinOf(name));
    }
  });

  it('answers C_SetPIN in a read-only session, and C_InitToken once no session is open, without the gateway', () => {
    const ro = slot.open(graphene.SessionFlag.SERIAL_SESSION);
    expect(ckrOf(() => lib.C_SetPIN(ro.handle, 'old', 'new'))).toBe(CKR.SESSION_READ_ONLY);
    expect(ckrOf(() => lib.C_InitPIN(ro.handle, 'new'))).toBe(CKR.USER_NOT_LOGGED_IN);
    ro.close();
    keeper.close();
    const audited = auditEntries(tc, 'gateway').length;
    expect(ckrOf(() => lib.C_InitToken(slot.handle, 'so-pin', 'mpchsm'.padEnd(32)))).toBe(CKR.FUNCTION_NOT_SUPPORTED);
    expect(auditEntries(tc, 'gateway').length).toBe(audited);
    expect(read(moduleLog)).toMatch(/C_InitToken: the mpchsm token is initialised by `mpchsm up`/);
  });
});

describe('after the refusals', () => {
  const approve = async (id: string, as: string) => JSON.parse((await tc.mpchsm('approve', id, '--as', as, '--dir', tc.dir, '--json')).stdout) as { Status: string };

  it("an administrator's key generation appeared at once; the application's never was proposed", async () => {
    const s = slot.open(RW);
    s.login(pinOf('app'), graphene.UserType.USER);
    try {
      expect(find(s, [{ type: CKA.LABEL, value: 'gen-admin' }]).length).toBe(2);
      expect(find(s, [{ type: CKA.LABEL, value: 'gen-app' }])).toEqual([]);
      expect(find(s, [{ type: CKA.LABEL, value: 'gen-none' }])).toEqual([]);
    } finally {
      s.logout();
      s.close();
    }
  }, LONG);

  it("an administrator's C_DestroyObject schedules the key's deletion once 2 of 3 approve; the key is gone from the token", async () => {
    const id = proposalsMade['kms:ScheduleKeyDeletion']!;
    expect((await approve(id, 'admin2')).Status).toBe('Pending');
    expect((await approve(id, 'admin3')).Status).toBe('Executed');
    expect(JSON.parse(read(gw('keys', `${keyIds.victim}.json`))).state).toBe('PendingDeletion');
    const s = slot.open(RW);
    s.login(pinOf('app'), graphene.UserType.USER);
    try {
      expect(find(s, byId('victim', CKO.PRIVATE_KEY))).toEqual([]);
      lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA }, priv.victim); // still cached by this process
      expect(ckrOf(() => lib.C_Sign(s.handle, signed, Buffer.alloc(64)))).toBe(CKR.KEY_HANDLE_INVALID);
    } finally {
      s.logout();
      s.close();
    }
  }, LONG);

  it('a key that needs approval per signature signs once an administrator approved that message, and only once', async () => {
    const digest = createHash('sha512').update(gatedMessage).digest('hex');
    await tc.mpchsm('approve-sign', '--key', keyIds.gated, '--digest', digest, '--algorithm', 'ED25519_SHA_512', '--as', 'admin1', '--dir', tc.dir);
    const s = slot.open(RW);
    s.login(pinOf('app'), graphene.UserType.USER);
    try {
      const point = attr(s, pub.gated, CKA.EC_POINT).subarray(2);
      lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA }, priv.gated);
      expect(ed25519.verify(lib.C_Sign(s.handle, gatedMessage, Buffer.alloc(64)), gatedMessage, point)).toBe(true);
      lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA }, priv.gated);
      expect(ckrOf(() => lib.C_Sign(s.handle, gatedMessage, Buffer.alloc(64)))).toBe(CKR.FUNCTION_REJECTED);
    } finally {
      s.logout();
      s.close();
    }
  }, LONG);
});
