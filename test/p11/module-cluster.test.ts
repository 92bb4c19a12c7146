// The PKCS#11 module against a real cluster (gateway + 3 signers, threshold 2), driven through
// graphene-pk11/pkcs11js and the C harness: key generation under SO, signing and decryption
// under USER, attributes and searches, certificates, session objects, many sessions at once,
// every refusal, a gateway restart, and TLS.
import { constants, createHash, createPublicKey, createVerify, generateKeyPairSync, publicDecrypt, publicEncrypt, sign as nodeSign, verify as nodeVerify, X509Certificate } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ed25519, ed25519ph } from '@noble/curves/ed25519.js';
import { CreateAliasCommand, DisableKeyCommand, EnableKeyCommand, GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import * as graphene from 'graphene-pk11';
import type * as pkcs11 from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKG, CKK, CKM, CKO } from '../../contract/pkcs11/ck.js';
import { startCluster, type Principal, type TestCluster } from '../helpers/cluster.js';
import { buildShim, CKR, ckrOf, ckrOfAsync, codesPath, harness, modulePath, only, stopModuleAndCluster, loadModule } from './helpers.js';
import { certificate, selfSigned } from './x509-build.js';

const CK_PARAMS_RSA_OAEP = 4;
const CK_PARAMS_RSA_PSS = 5;
const RW = graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION;
const LONG = 600_000;

let tc: TestCluster;
let app: Principal;
let admin: Principal;
let mod: graphene.Module;
let lib: pkcs11.PKCS11;
let slot: graphene.Slot;
let moduleLog: string;

const ul = (v: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};
const ED25519_OID = Buffer.from('06032b6570', 'hex');
const ED25519_NAME = Buffer.from('130c656477617264733235353139', 'hex');

function open(flags = RW): graphene.Session {
  return slot.open(flags);
}
function find(s: graphene.Session, template: pkcs11.Template): Buffer[] {
  lib.C_FindObjectsInit(s.handle, template);
  const found = lib.C_FindObjects(s.handle, 1000);
  lib.C_FindObjectsFinal(s.handle);
  return found;
}
function one(s: graphene.Session, template: pkcs11.Template): Buffer {
  const found = find(s, template);
  expect(found.length, JSON.stringify(template)).toBe(1);
  return found[0]!;
}
function attr(s: graphene.Session, h: Buffer, type: number): Buffer {
  return lib.C_GetAttributeValue(s.handle, h, [{ type }])[0]!.value as Buffer;
}
const pss = (hashAlg: number, mgf: number, saltLen: number) => ({ type: CK_PARAMS_RSA_PSS, hashAlg, mgf, saltLen }) as pkcs11.IParams;
const oaep = (hashAlg: number, mgf: number) => ({ type: CK_PARAMS_RSA_OAEP, hashAlg, mgf, source: 1 }) as pkcs11.IParams;
/** CK_EDDSA_PARAMS on LP64: phFlag, padding, ulContextDataLen, pContextData. */
const eddsaParams = (ph: boolean) => Buffer.concat([Buffer.of(ph ? 1 : 0), Buffer.alloc(23)]);

function sign(s: graphene.Session, mechanism: pkcs11.Mechanism, key: Buffer, data: Buffer): Buffer {
  lib.C_SignInit(s.handle, mechanism, key);
  return lib.C_Sign(s.handle, data, Buffer.alloc(1024));
}
/** true, or false for CKR_SIGNATURE_INVALID; any other failure throws. */
function verify(s: graphene.Session, mechanism: pkcs11.Mechanism, key: Buffer, data: Buffer, signature: Buffer): boolean {
  lib.C_VerifyInit(s.handle, mechanism, key);
  const rv = ckrOf(() => lib.C_Verify(s.handle, data, signature));
  if (rv === undefined) return true;
  if (rv === CKR.SIGNATURE_INVALID) return false;
  throw new Error(`C_Verify: CKR 0x${rv.toString(16)}`);
}
const spkiKey = (spki: Buffer) => createPublicKey({ key: spki, format: 'der', type: 'spki' });

const keys = { ed: '', edOid: '', rsa: '', rsaDec: '', p256: '' }; // CKA_IDs (hex)
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

/**
 * C_GenerateKeyPair under the default governance (CreateKey needs one approval: the key
 * administrator's own request, which the module proves to the signers — issue #16): the key is
 * made in one call and appears as objects, found by its label.
 */
async function generateApproved(s: graphene.Session, mechanism: number, pub: pkcs11.Template, priv: pkcs11.Template, label: string): Promise<{ publicKey: Buffer; privateKey: Buffer }> {
  expect(await ckrOfAsync(() => lib.C_GenerateKeyPairAsync(s.handle, { mechanism }, pub, priv))).toBeUndefined();
  return {
    publicKey: one(s, [{ type: CKA.LABEL, value: label }, { type: CKA.CLASS, value: CKO.PUBLIC_KEY }]),
    privateKey: one(s, [{ type: CKA.LABEL, value: label }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }]),
  };
}

beforeAll(async () => {
  buildShim();
  tc = await startCluster();
  app = tc.principal('app');
  admin = tc.principal('admin1');
  moduleLog = path.join(tc.dir, 'principals', 'pkcs11.log');
  ({ mod, lib, slot } = loadModule(app.MPCHSM_PKCS11_CONF));
}, LONG);

afterAll(() => stopModuleAndCluster(mod, tc), LONG);

describe('logging in', () => {
  it('keeps private keys invisible before login and tells PIN and user type errors apart', () => {
    const s = open();
    try {
      expect(find(s, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }])).toEqual([]);
      expect(find(s, [])).toEqual([]); // no key yet; public ones show before a login (below)
      expect(ckrOf(() => s.login('wrong-pin', graphene.UserType.USER))).toBe(CKR.PIN_INCORRECT);
      expect(ckrOf(() => s.login(app.MPCHSM_PKCS11_PIN, graphene.UserType.SO))).toBe(CKR.PIN_INCORRECT); // an app PIN is no SO PIN
      expect(ckrOf(() => s.login(admin.MPCHSM_PKCS11_PIN, graphene.UserType.USER))).toBe(CKR.PIN_INCORRECT);
      s.login(app.MPCHSM_PKCS11_PIN, graphene.UserType.USER);
      expect(ckrOf(() => s.login(app.MPCHSM_PKCS11_PIN, graphene.UserType.USER))).toBe(CKR.USER_ALREADY_LOGGED_IN);
      expect(ckrOf(() => s.login(admin.MPCHSM_PKCS11_PIN, graphene.UserType.SO))).toBe(CKR.USER_ANOTHER_ALREADY_LOGGED_IN);
      expect(lib.C_GetSessionInfo(s.handle).state).toBe(3); // CKS_RW_USER_FUNCTIONS
      s.logout();
      expect(ckrOf(() => s.logout())).toBe(CKR.USER_NOT_LOGGED_IN);
      const ro = open(graphene.SessionFlag.SERIAL_SESSION);
      expect(ckrOf(() => s.login(admin.MPCHSM_PKCS11_PIN, graphene.UserType.SO))).toBe(CKR.SESSION_READ_ONLY_EXISTS);
      ro.close();
    } finally {
      s.close();
    }
    expect(readFileSync(moduleLog, 'utf8')).not.toContain(app.MPCHSM_PKCS11_PIN);
  });
});

describe('key generation (key administrators only)', () => {
  it('is refused to an application principal', async () => {
    const s = open();
    s.login(app.MPCHSM_PKCS11_PIN, graphene.UserType.USER);
    try {
      const rv = await ckrOfAsync(() => lib.C_GenerateKeyPairAsync(s.handle, { mechanism: CKM.EC_EDWARDS_KEY_PAIR_GEN }, [{ type: CKA.EC_PARAMS, value: ED25519_OID }], []));
      expect(rv).toBe(CKR.USER_NOT_LOGGED_IN);
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const j = privateKey.export({ format: 'jwk' });
      const parts = [CKA.MODULUS, CKA.PUBLIC_EXPONENT, CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2, CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT].map((type, i) => ({ type, value: Buffer.from([j.n, j.e, j.d, j.p, j.q, j.dp, j.dq, j.qi][i]!, 'base64url') }));
      expect(ckrOf(() => lib.C_CreateObject(s.handle, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.KEY_TYPE, value: CKK.RSA }, { type: CKA.TOKEN, value: true }, ...parts]))).toBe(CKR.USER_NOT_LOGGED_IN);
    } finally {
      s.logout();
      s.close();
    }
    // The gateway decides (and records) it; the module logs its reason.
    expect(readFileSync(moduleLog, 'utf8')).toMatch(/C_GenerateKeyPair: refused \(CKR 0x101\): key generation needs a key administrator \(CKU_SO\); applications do not create, relabel or delete keys/);
  });

  it('makes Ed25519 and RSA keys from the standard templates, with labels and IDs', async () => {
    const s = open();
    s.login(admin.MPCHSM_PKCS11_PIN, graphene.UserType.SO);
    try {
      const gen = (mechanism: number, pub: pkcs11.Template, priv: pkcs11.Template) => lib.C_GenerateKeyPairAsync(s.handle, { mechanism }, pub, priv);
      const ed = await generateApproved(s, CKM.EC_EDWARDS_KEY_PAIR_GEN, [{ type: CKA.EC_PARAMS, value: ED25519_NAME }, { type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: 'ed-test' }], [{ type: CKA.SIGN, value: true }, { type: CKA.LABEL, value: 'ed-test' }], 'ed-test');
      expect(attr(s, ed.privateKey, CKA.KEY_TYPE)).toEqual(ul(CKK.EC_EDWARDS));
      expect(attr(s, ed.publicKey, CKA.LABEL).toString()).toBe('ed-test');
      keys.ed = attr(s, ed.privateKey, CKA.ID).toString('hex');
      expect(keys.ed).toMatch(/^[0-9a-f]{32}$/); // no CKA_ID given: the UUID's 16 bytes

      const edOid = await generateApproved(s, CKM.EC_KEY_PAIR_GEN, [{ type: CKA.EC_PARAMS, value: ED25519_OID }], [{ type: CKA.LABEL, value: 'ed-oid' }], 'ed-oid');
      expect(attr(s, edOid.publicKey, CKA.EC_PARAMS)).toEqual(ED25519_OID);
      keys.edOid = attr(s, edOid.privateKey, CKA.ID).toString('hex');

      const rsa = await generateApproved(s, CKM.RSA_PKCS_KEY_PAIR_GEN, [{ type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.of(1, 0, 1) }, { type: CKA.VERIFY, value: true }, { type: CKA.ID, value: Buffer.of(0x42) }], [{ type: CKA.SIGN, value: true }, { type: CKA.DECRYPT, value: true }, { type: CKA.ID, value: Buffer.of(0x42) }, { type: CKA.LABEL, value: 'rsa-sign' }], 'rsa-sign');
      expect(attr(s, rsa.privateKey, CKA.ID)).toEqual(Buffer.of(0x42));
      expect(attr(s, rsa.privateKey, CKA.SIGN)).toEqual(Buffer.of(1));
      expect(attr(s, rsa.privateKey, CKA.DECRYPT)).toEqual(Buffer.of(0)); // one usage per key: signing wins
      keys.rsa = '42';

      const dec = await generateApproved(s, CKM.RSA_PKCS_KEY_PAIR_GEN, [{ type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.ENCRYPT, value: true }], [{ type: CKA.DECRYPT, value: true }, { type: CKA.LABEL, value: 'rsa-dec' }], 'rsa-dec');
      expect(attr(s, dec.privateKey, CKA.DECRYPT)).toEqual(Buffer.of(1));
      expect(attr(s, dec.privateKey, CKA.SIGN)).toEqual(Buffer.of(0));
      keys.rsaDec = attr(s, dec.privateKey, CKA.ID).toString('hex');

      // What cannot be honoured is refused before anything is made (or proposed).
      expect(await ckrOfAsync(() => gen(CKM.EC_KEY_PAIR_GEN, [{ type: CKA.EC_PARAMS, value: Buffer.from('06092b2403030208010107', 'hex') }], []))).toBe(CKR.DOMAIN_PARAMS_INVALID); // brainpoolP256r1 (P-521: test/kms/p521.test.ts)
      expect(await ckrOfAsync(() => gen(CKM.EC_KEY_PAIR_GEN, [], []))).toBe(CKR.TEMPLATE_INCOMPLETE);
      expect(await ckrOfAsync(() => gen(CKM.RSA_PKCS_KEY_PAIR_GEN, [{ type: CKA.MODULUS_BITS, value: 1024 }], []))).toBe(CKR.KEY_SIZE_RANGE);
      expect(await ckrOfAsync(() => gen(CKM.RSA_PKCS_KEY_PAIR_GEN, [{ type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.of(3) }], []))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
      expect(await ckrOfAsync(() => gen(CKM.EC_EDWARDS_KEY_PAIR_GEN, [{ type: CKA.EC_PARAMS, value: ED25519_OID }], [{ type: CKA.ID, value: Buffer.of(0x42) }]))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
      expect(await ckrOfAsync(() => gen(CKM.EC_EDWARDS_KEY_PAIR_GEN, [{ type: CKA.EC_PARAMS, value: ED25519_OID }, { type: CKA.TOKEN, value: false }], []))).toBe(CKR.TEMPLATE_INCONSISTENT);
      expect(await ckrOfAsync(() => gen(CKM.EC_EDWARDS_KEY_PAIR_GEN, [{ type: CKA.EC_PARAMS, value: ED25519_OID }], [{ type: CKA.EXTRACTABLE, value: true }]))).toBe(CKR.TEMPLATE_INCONSISTENT);
      expect(await ckrOfAsync(() => gen(CKM.SHA256, [], []))).toBe(CKR.MECHANISM_INVALID);
      // CKA_LABEL becomes a KMS alias: it must be a valid, free alias name.
      expect(await ckrOfAsync(() => gen(CKM.EC_EDWARDS_KEY_PAIR_GEN, [{ type: CKA.EC_PARAMS, value: ED25519_OID }], [{ type: CKA.LABEL, value: 'my key' }]))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
      expect(await ckrOfAsync(() => gen(CKM.EC_EDWARDS_KEY_PAIR_GEN, [{ type: CKA.EC_PARAMS, value: ED25519_OID }], [{ type: CKA.LABEL, value: 'rsa-sign' }]))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);

      // A legacy RSA key is imported by a key administrator; its private half never comes back.
      const legacy = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const j = legacy.privateKey.export({ format: 'jwk' });
      const b = (v: string | undefined) => Buffer.from(v!, 'base64url');
      const importTemplate: pkcs11.Template = [
        { type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.KEY_TYPE, value: CKK.RSA }, { type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: true },
        { type: CKA.SIGN, value: true }, { type: CKA.LABEL, value: 'legacy' }, { type: CKA.ID, value: Buffer.of(0x77) },
        { type: CKA.MODULUS, value: b(j.n) }, { type: CKA.PUBLIC_EXPONENT, value: b(j.e) }, { type: CKA.PRIVATE_EXPONENT, value: b(j.d) },
        { type: CKA.PRIME_1, value: b(j.p) }, { type: CKA.PRIME_2, value: b(j.q) }, { type: CKA.EXPONENT_1, value: b(j.dp) }, { type: CKA.EXPONENT_2, value: b(j.dq) }, { type: CKA.COEFFICIENT, value: b(j.qi) },
      ];
      expect(ckrOf(() => lib.C_CreateObject(s.handle, importTemplate.filter((a) => a.type !== CKA.PRIME_1)))).toBe(CKR.TEMPLATE_INCOMPLETE);
      expect(ckrOf(() => lib.C_CreateObject(s.handle, [...importTemplate.filter((a) => a.type !== CKA.KEY_TYPE), { type: CKA.KEY_TYPE, value: CKK.EC }]))).toBe(CKR.TEMPLATE_INCONSISTENT);
      // Under quorum an import is refused: a proposal would have to hold the key material.
      expect(ckrOf(() => lib.C_CreateObject(s.handle, importTemplate))).toBe(CKR.FUNCTION_REJECTED);
      expect(readFileSync(moduleLog, 'utf8')).toMatch(/a PKCS#11 key import cannot wait for approvals/);
      expect(find(s, [{ type: CKA.ID, value: Buffer.of(0x77) }])).toEqual([]);

      // Key administrators never sign.
      expect(ckrOf(() => lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA }, ed.privateKey))).toBe(CKR.USER_NOT_LOGGED_IN);
    } finally {
      s.logout();
      s.close();
    }
    expect(readFileSync(moduleLog, 'utf8')).toMatch(/C_SignInit: refused \(CKR 0x101\): signing needs an application principal \(CKU_USER\); key administrators never sign/);
  }, LONG);
  it('makes threshold ECDSA keys (P-256) with CKM_EC_KEY_PAIR_GEN', async () => {
    const s = open();
    s.login(admin.MPCHSM_PKCS11_PIN, graphene.UserType.SO);
    try {
        // Threshold ECDSA: a P-256 key, CKA_EC_PARAMS and CKA_EC_POINT (DER OCTET STRING of the uncompressed point) as KMS sees it.
        const p256 = await generateApproved(s, CKM.EC_KEY_PAIR_GEN, [{ type: CKA.EC_PARAMS, value: P256 }, { type: CKA.VERIFY, value: true }], [{ type: CKA.SIGN, value: true }, { type: CKA.LABEL, value: 'ec-p256' }], 'ec-p256');
        expect(attr(s, p256.privateKey, CKA.KEY_TYPE)).toEqual(ul(CKK.EC));
        expect(attr(s, p256.publicKey, CKA.EC_PARAMS)).toEqual(P256);
        const point = attr(s, p256.publicKey, CKA.EC_POINT);
        const spki = attr(s, p256.publicKey, CKA.PUBLIC_KEY_INFO);
        expect(point.subarray(0, 3)).toEqual(Buffer.of(0x04, 65, 0x04));
        expect(point.subarray(2)).toEqual(spki.subarray(-65));
        expect(attr(s, p256.privateKey, CKA.KEY_GEN_MECHANISM)).toEqual(ul(CKM.EC_KEY_PAIR_GEN));
        expect(attr(s, p256.privateKey, CKA.ALLOWED_MECHANISMS)).toEqual(Buffer.concat([CKM.ECDSA, CKM.ECDSA_SHA256, CKM.ECDSA_SHA384, CKM.ECDSA_SHA512].map(ul)));
        keys.p256 = attr(s, p256.privateKey, CKA.ID).toString('hex');

    } finally {
      s.logout();
      s.close();
    }
  }, LONG);
});

describe('objects', () => {
  let s: graphene.Session;
  beforeAll(() => {
    s = open();
    s.login(app.MPCHSM_PKCS11_PIN, graphene.UserType.USER);
  });
  afterAll(() => {
    s.logout();
    s.close();
  });

  it('finds by any combination of class, key type, ID and label', () => {
    expect(find(s, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.KEY_TYPE, value: CKK.RSA }]).length).toBe(2);
    expect(find(s, [{ type: CKA.CLASS, value: CKO.PUBLIC_KEY }, { type: CKA.KEY_TYPE, value: CKK.EC_EDWARDS }]).length).toBe(2);
    expect(find(s, [{ type: CKA.KEY_TYPE, value: CKK.RSA }]).length).toBe(4);
    expect(find(s, [{ type: CKA.KEY_TYPE, value: CKK.EC_EDWARDS }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }]).length).toBe(2);
    expect(find(s, [{ type: CKA.ID, value: Buffer.of(0x42) }]).length).toBe(2);
    const priv = one(s, [{ type: CKA.ID, value: Buffer.of(0x42) }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.KEY_TYPE, value: CKK.RSA }, { type: CKA.LABEL, value: 'rsa-sign' }]);
    expect(attr(s, priv, CKA.LABEL).toString()).toBe('rsa-sign');
    expect(find(s, [{ type: CKA.LABEL, value: 'rsa-sign' }, { type: CKA.KEY_TYPE, value: CKK.EC_EDWARDS }])).toEqual([]);
    expect(find(s, [{ type: CKA.LABEL, value: 'no such key' }])).toEqual([]);
    expect(find(s, [{ type: CKA.PRIVATE_EXPONENT, value: Buffer.alloc(0) }])).toEqual([]);
    // Handles stay the same across searches.
    expect(one(s, [{ type: CKA.LABEL, value: 'rsa-sign' }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }])).toEqual(priv);
  });

  it('answers the attributes consumers read, matching the KMS view of the key', async () => {
    const kms = new KMSClient({ endpoint: tc.endpoint, region: app.AWS_REGION, credentials: { accessKeyId: app.AWS_ACCESS_KEY_ID, secretAccessKey: app.AWS_SECRET_ACCESS_KEY } });
    const edPriv = one(s, [{ type: CKA.ID, value: Buffer.from(keys.ed, 'hex') }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }]);
    const keyId = keys.ed.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
    const kmsKey = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
    expect(attr(s, edPriv, CKA.PUBLIC_KEY_INFO)).toEqual(Buffer.from(kmsKey.PublicKey!));
    expect(attr(s, edPriv, CKA.EC_POINT).subarray(2)).toEqual(Buffer.from(kmsKey.PublicKey!).subarray(-32));
    const values = lib.C_GetAttributeValue(s.handle, edPriv, [CKA.SENSITIVE, CKA.EXTRACTABLE, CKA.ALWAYS_SENSITIVE, CKA.NEVER_EXTRACTABLE, CKA.LOCAL, CKA.ALWAYS_AUTHENTICATE, CKA.PRIVATE, CKA.TOKEN, CKA.DERIVE, CKA.WRAP, CKA.UNWRAP, CKA.MODIFIABLE].map((type) => ({ type })));
    expect(values.map((v) => (v.value as Buffer)[0])).toEqual([1, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 1]); // modifiable: its label, by a key administrator
    expect(attr(s, edPriv, CKA.KEY_GEN_MECHANISM)).toEqual(ul(CKM.EC_EDWARDS_KEY_PAIR_GEN));
    expect(attr(s, edPriv, CKA.ALLOWED_MECHANISMS)).toEqual(ul(CKM.EDDSA));

    const rsaPub = one(s, [{ type: CKA.ID, value: Buffer.of(0x42) }, { type: CKA.CLASS, value: CKO.PUBLIC_KEY }]);
    const jwk = spkiKey(attr(s, rsaPub, CKA.PUBLIC_KEY_INFO)).export({ format: 'jwk' });
    expect(attr(s, rsaPub, CKA.MODULUS)).toEqual(Buffer.from(jwk.n!, 'base64url'));
    expect(attr(s, rsaPub, CKA.PUBLIC_EXPONENT)).toEqual(Buffer.of(1, 0, 1));
    expect(attr(s, rsaPub, CKA.MODULUS_BITS)).toEqual(ul(2048));

    const rsaPriv = one(s, [{ type: CKA.ID, value: Buffer.of(0x42) }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }]);
    expect(ckrOf(() => lib.C_GetAttributeValue(s.handle, rsaPriv, [{ type: CKA.PRIVATE_EXPONENT }]))).toBe(CKR.ATTRIBUTE_SENSITIVE);
    expect(ckrOf(() => lib.C_GetAttributeValue(s.handle, rsaPriv, [{ type: CKA.VALUE }]))).toBe(CKR.ATTRIBUTE_SENSITIVE);
    expect(ckrOf(() => lib.C_GetAttributeValue(s.handle, rsaPriv, [{ type: 0x7ffff }]))).toBe(CKR.ATTRIBUTE_TYPE_INVALID);
    // Relabelling and deleting keys are a key administrator's (test/p11/roles-matrix.test.ts).
    expect(ckrOf(() => lib.C_SetAttributeValue(s.handle, rsaPriv, [{ type: CKA.LABEL, value: 'x' }]))).toBe(CKR.USER_NOT_LOGGED_IN);
    expect(ckrOf(() => lib.C_DestroyObject(s.handle, rsaPriv))).toBe(CKR.USER_NOT_LOGGED_IN);
  });

  it('uses the KMS aliases as CKA_LABEL, both ways', async () => {
    const kms = new KMSClient({ endpoint: tc.endpoint, region: admin.AWS_REGION, credentials: { accessKeyId: admin.AWS_ACCESS_KEY_ID, secretAccessKey: admin.AWS_SECRET_ACCESS_KEY } });
    // A label given at C_GenerateKeyPair is the key's alias.
    const keyId42 = one(s, [{ type: CKA.LABEL, value: 'rsa-dec' }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }]);
    expect(attr(s, keyId42, CKA.LABEL).toString()).toBe('rsa-dec');
    // An alias made through KMS is a label too; a key with several answers to each.
    const keyId = keys.edOid.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/ops/ed-signer', TargetKeyId: keyId }));
    const h = one(s, [{ type: CKA.LABEL, value: 'ops/ed-signer' }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }]);
    expect(attr(s, h, CKA.ID).toString('hex')).toBe(keys.edOid);
    expect(attr(s, h, CKA.LABEL).toString()).toBe('ed-oid'); // the first by name
    expect(one(s, [{ type: CKA.LABEL, value: 'ed-oid' }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }])).toEqual(h);
  });

  it('stores certificates as token objects any logged-in principal sees, pairing them with their key', () => {
    const rsaPub = one(s, [{ type: CKA.ID, value: Buffer.of(0x42) }, { type: CKA.CLASS, value: CKO.PUBLIC_KEY }]);
    const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = certificate({ subject: 'rsa-sign holder', issuer: 'test ca', serial: 4097n, spki: attr(s, rsaPub, CKA.PUBLIC_KEY_INFO), issuerKey: ca.privateKey });
    const x = new X509Certificate(der);

    const ro = open(graphene.SessionFlag.SERIAL_SESSION);
    const certTemplate: pkcs11.Template = [{ type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.CERTIFICATE_TYPE, value: 0 }, { type: CKA.TOKEN, value: true }, { type: CKA.VALUE, value: der }, { type: CKA.LABEL, value: 'rsa-sign-cert' }];
    expect(ckrOf(() => lib.C_CreateObject(ro.handle, certTemplate))).toBe(CKR.SESSION_READ_ONLY);
    ro.close();
    expect(ckrOf(() => lib.C_CreateObject(s.handle, [...certTemplate.filter((a) => a.type !== CKA.VALUE), { type: CKA.VALUE, value: Buffer.from('not a certificate') }]))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(ckrOf(() => lib.C_CreateObject(s.handle, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.TOKEN, value: true }]))).toBe(CKR.USER_NOT_LOGGED_IN); // key import: SO only
    expect(ckrOf(() => lib.C_CreateObject(s.handle, [...certTemplate, { type: CKA.TRUSTED, value: true }]))).toBe(CKR.ATTRIBUTE_READ_ONLY); // SO only

    const cert = lib.C_CreateObject(s.handle, certTemplate);
    expect(attr(s, cert, CKA.ID)).toEqual(Buffer.of(0x42)); // took its key's CKA_ID
    expect(attr(s, cert, CKA.VALUE)).toEqual(der);
    expect(attr(s, cert, CKA.SERIAL_NUMBER)).toEqual(Buffer.from('02021001', 'hex'));
    expect(attr(s, cert, CKA.SUBJECT).toString('latin1')).toContain('rsa-sign holder');
    expect(attr(s, cert, CKA.ISSUER).toString('latin1')).toContain('test ca');
    expect(attr(s, cert, CKA.CERTIFICATE_TYPE)).toEqual(ul(0));
    expect(one(s, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.ID, value: Buffer.of(0x42) }])).toEqual(cert);
    expect(one(s, [{ type: CKA.LABEL, value: 'rsa-sign-cert' }])).toEqual(cert);
    // The key now has the certificate's subject (attributes are refreshed by a search).
    const again = one(s, [{ type: CKA.ID, value: Buffer.of(0x42) }, { type: CKA.CLASS, value: CKO.PUBLIC_KEY }]);
    expect(again).toEqual(rsaPub);
    expect(attr(s, rsaPub, CKA.SUBJECT)).toEqual(attr(s, cert, CKA.SUBJECT));
    expect(x.subject).toContain('rsa-sign holder');

    // Another principal (a key administrator, in another process) sees it and may remove it.
    const { steps } = harness(['so-destroy-cert', 'rsa-sign-cert'], { MPCHSM_PKCS11_CONF: admin.MPCHSM_PKCS11_CONF, HARNESS_PIN: admin.MPCHSM_PKCS11_PIN });
    expect(only(steps, 'so_login').rv).toBe(CKR.OK);
    expect(only(steps, 'so_found').detail).toBe('1');
    expect(only(steps, 'so_destroy').rv).toBe(CKR.OK);
    expect(find(s, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }])).toEqual([]);
    // And this application removes its own.
    const again2 = lib.C_CreateObject(s.handle, certTemplate);
    lib.C_DestroyObject(s.handle, again2);
    expect(ckrOf(() => attr(s, again2, CKA.VALUE))).toBe(CKR.OBJECT_HANDLE_INVALID);
    expect(find(s, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }])).toEqual([]);
    one(s, [{ type: CKA.ID, value: Buffer.of(0x42) }, { type: CKA.CLASS, value: CKO.PUBLIC_KEY }]);
    expect(attr(s, rsaPub, CKA.SUBJECT).length).toBe(0);
  });

  it('keeps session objects in the session, and verifies with a session public key', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    const other = open();
    const h = lib.C_CreateObject(other.handle, [{ type: CKA.CLASS, value: CKO.PUBLIC_KEY }, { type: CKA.KEY_TYPE, value: CKK.RSA }, { type: CKA.TOKEN, value: false }, { type: CKA.MODULUS, value: Buffer.from(jwk.n!, 'base64url') }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.from(jwk.e!, 'base64url') }, { type: CKA.LABEL, value: 'peer' }]);
    expect(one(s, [{ type: CKA.LABEL, value: 'peer' }])).toEqual(h); // every session of the application sees it
    const data = Buffer.from('signed elsewhere');
    const signature = nodeSign('sha256', data, privateKey);
    expect(verify(other, { mechanism: CKM.SHA256_RSA_PKCS }, h, data, signature)).toBe(true);
    expect(verify(other, { mechanism: CKM.SHA256_RSA_PKCS }, h, Buffer.from('changed'), signature)).toBe(false);
    expect(ckrOf(() => lib.C_CreateObject(other.handle, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.TOKEN, value: false }]))).toBe(CKR.TEMPLATE_INCONSISTENT);
    other.close();
    expect(find(s, [{ type: CKA.LABEL, value: 'peer' }])).toEqual([]);
  });
});

describe('before a login (a public session, as on a hardware token)', () => {
  const certLabel = 'public-cert';
  beforeAll(() => {
    // An application stores a public certificate for the RSA key, then logs out.
    const s = open();
    s.login(app.MPCHSM_PKCS11_PIN, graphene.UserType.USER);
    const rsaPub = one(s, [{ type: CKA.ID, value: Buffer.of(0x42) }, { type: CKA.CLASS, value: CKO.PUBLIC_KEY }]);
    const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = certificate({ subject: 'rsa-sign holder', issuer: 'test ca', serial: 4098n, spki: attr(s, rsaPub, CKA.PUBLIC_KEY_INFO), issuerKey: ca.privateKey });
    lib.C_CreateObject(s.handle, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.CERTIFICATE_TYPE, value: 0 }, { type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: false }, { type: CKA.VALUE, value: der }, { type: CKA.LABEL, value: certLabel }]);
    s.logout();
    s.close();
  });

  it('lists and reads public keys and certificates; private keys stay invisible and signing needs a login', () => {
    const s = open();
    try {
      const all = find(s, []);
      const classes = all.map((h) => attr(s, h, CKA.CLASS).readBigUInt64LE());
      expect(classes.filter((c) => c === BigInt(CKO.PUBLIC_KEY)).length).toBe(5); // ed-test, ed-oid, rsa-sign, rsa-dec, ec-p256
      expect(classes.filter((c) => c === BigInt(CKO.CERTIFICATE)).length).toBe(1);
      expect(classes.filter((c) => c === BigInt(CKO.PRIVATE_KEY))).toEqual([]);
      for (const h of all) expect(attr(s, h, CKA.PRIVATE)).toEqual(Buffer.of(0));
      expect(find(s, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }])).toEqual([]);
      expect(find(s, [{ type: CKA.PRIVATE, value: true }])).toEqual([]);
      const edPub = one(s, [{ type: CKA.LABEL, value: 'ed-test' }]);
      expect(attr(s, edPub, CKA.ID).toString('hex')).toBe(keys.ed);
      expect(attr(s, edPub, CKA.EC_POINT).length).toBe(34);
      const cert = one(s, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.LABEL, value: certLabel }]);
      expect(attr(s, cert, CKA.ID)).toEqual(Buffer.of(0x42));
      expect(new X509Certificate(attr(s, cert, CKA.VALUE)).subject).toContain('rsa-sign holder');
      // A public key signs nothing; a token key verifies for a logged-in principal only.
      expect(ckrOf(() => lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA }, edPub))).toBe(CKR.KEY_TYPE_INCONSISTENT);
      expect(ckrOf(() => lib.C_VerifyInit(s.handle, { mechanism: CKM.EDDSA }, edPub))).toBe(CKR.USER_NOT_LOGGED_IN);
      // Once logged in the private keys appear; after the logout they are gone again, even by handle.
      s.login(app.MPCHSM_PKCS11_PIN, graphene.UserType.USER);
      const edPriv = one(s, [{ type: CKA.LABEL, value: 'ed-test' }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }]);
      s.logout();
      expect(ckrOf(() => attr(s, edPriv, CKA.LABEL))).toBe(CKR.OBJECT_HANDLE_INVALID);
      expect(ckrOf(() => lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA }, edPriv))).toBe(CKR.KEY_HANDLE_INVALID);
    } finally {
      s.close();
    }
  });

  it('pkcs11-tool -O without --login lists the public keys and certificates only', () => {
    const r = spawnSync('pkcs11-tool', ['--module', modulePath, '-O'], { env: { PATH: process.env.PATH, MPCHSM_PKCS11_CONF: app.MPCHSM_PKCS11_CONF }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.match(/^Public Key Object/gm)?.length).toBe(5);
    expect(r.stdout.match(/^Certificate Object/gm)?.length).toBe(1);
    expect(r.stdout).toContain(`label:      ${certLabel}`);
    expect(r.stdout).not.toMatch(/Private Key Object/);
  });

  it('C test program: C_CopyObject on a key and a certificate, and the PIN counter against the gateway', () => {
    const { steps, status } = harness(['cluster', 'rsa-sign', certLabel], { MPCHSM_PKCS11_CONF: app.MPCHSM_PKCS11_CONF, CODES_PIN: app.MPCHSM_PKCS11_PIN }, 120_000, codesPath);
    expect(status).toBe(0);
    const rv = (n: string) => only(steps, n).rv;
    const flags = (n: string) => Number(/^flags=(0x[0-9a-f]+)$/.exec(only(steps, n).detail)![1]);
    expect(only(steps, 'public_before_login').detail).toBe('1');
    expect(only(steps, 'private_before_login').detail).toBe('0');
    expect(only(steps, 'public_label_before_login')).toEqual({ rv: CKR.OK, detail: 'rsa-sign' });
    expect(rv('copy_public_key_before_login')).toBe(CKR.ACTION_PROHIBITED);
    expect(flags('flags_before') & 0x10000).toBe(0);
    expect(rv('login_wrong')).toBe(CKR.PIN_INCORRECT);
    expect(flags('flags_wrong') & 0x70000).toBe(0x10000); // CKF_USER_PIN_COUNT_LOW; never FINAL_TRY or LOCKED
    expect(rv('login')).toBe(CKR.OK);
    expect(flags('flags_after_login') & 0x70000).toBe(0);
    expect(only(steps, 'certificate_found').detail).toBe('1');
    // Token keys and certificates have CKA_COPYABLE false: PKCS#11 3.0 says CKR_ACTION_PROHIBITED.
    for (const step of ['copy_private_key', 'copy_public_key', 'copy_certificate', 'copy_certificate_to_session']) expect(rv(step), step).toBe(CKR.ACTION_PROHIBITED);
  }, LONG);
});

describe('signing, verification, encryption, decryption', () => {
  let s: graphene.Session;
  let rsa: Buffer;
  let rsaPub: Buffer;
  let ed: Buffer;
  let edPub: Buffer;
  let dec: Buffer;
  let decPub: Buffer;
  beforeAll(() => {
    s = open();
    s.login(app.MPCHSM_PKCS11_PIN, graphene.UserType.USER);
    const k = (id: string, cls: number) => one(s, [{ type: CKA.ID, value: Buffer.from(id, 'hex') }, { type: CKA.CLASS, value: cls }]);
    [rsa, rsaPub, ed, edPub, dec, decPub] = [k(keys.rsa, CKO.PRIVATE_KEY), k(keys.rsa, CKO.PUBLIC_KEY), k(keys.ed, CKO.PRIVATE_KEY), k(keys.ed, CKO.PUBLIC_KEY), k(keys.rsaDec, CKO.PRIVATE_KEY), k(keys.rsaDec, CKO.PUBLIC_KEY)];
  });
  afterAll(() => {
    s.logout();
    s.close();
  });

  it('signs with every RSA mechanism; OpenSSL verifies each signature', () => {
    const key = spkiKey(attr(s, rsaPub, CKA.PUBLIC_KEY_INFO));
    const data = Buffer.from('mpchsm pkcs#11 conformance');
    const hashes = [['sha256', CKM.SHA256, CKG.MGF1_SHA256, 32, CKM.SHA256_RSA_PKCS, CKM.SHA256_RSA_PKCS_PSS], ['sha384', CKM.SHA384, CKG.MGF1_SHA384, 48, CKM.SHA384_RSA_PKCS, CKM.SHA384_RSA_PKCS_PSS], ['sha512', CKM.SHA512, CKG.MGF1_SHA512, 64, CKM.SHA512_RSA_PKCS, CKM.SHA512_RSA_PKCS_PSS]] as const;
    for (const [name, hashMech, mgf, hLen, pkcsMech, pssMech] of hashes) {
      const digest = createHash(name).update(data).digest();
      const pkcs = sign(s, { mechanism: pkcsMech }, rsa, data);
      expect(nodeVerify(name, data, key, pkcs), name).toBe(true);
      const pssSig = sign(s, { mechanism: pssMech, parameter: pss(hashMech, mgf, hLen) }, rsa, data);
      expect(nodeVerify(name, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hLen }, pssSig)).toBe(true);
      const rawPss = sign(s, { mechanism: CKM.RSA_PKCS_PSS, parameter: pss(hashMech, mgf, hLen) }, rsa, digest);
      expect(nodeVerify(name, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hLen }, rawPss)).toBe(true);
      expect(verify(s, { mechanism: pssMech, parameter: pss(hashMech, mgf, hLen) }, rsaPub, data, pssSig)).toBe(true);
      expect(verify(s, { mechanism: pkcsMech }, rsaPub, data, pkcs)).toBe(true);
    }
    // CKM_RSA_PKCS signs a SHA-2 DigestInfo; the signature equals CKM_SHA256_RSA_PKCS's.
    const info = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update(data).digest()]);
    expect(sign(s, { mechanism: CKM.RSA_PKCS }, rsa, info)).toEqual(sign(s, { mechanism: CKM.SHA256_RSA_PKCS }, rsa, data));
    expect(verify(s, { mechanism: CKM.RSA_PKCS }, rsaPub, info, sign(s, { mechanism: CKM.RSA_PKCS }, rsa, info))).toBe(true);
    // Any other input up to k − 11 bytes is signed as it is, as an HSM does: a SHA-1 DigestInfo
    // (OpenSSL verifies it as sha1WithRSA), TLS 1.0's MD5‖SHA-1 (the type-1 block holds it).
    const sha1Info = Buffer.concat([Buffer.from('3021300906052b0e03021a05000414', 'hex'), createHash('sha1').update(data).digest()]);
    const sha1Sig = sign(s, { mechanism: CKM.RSA_PKCS }, rsa, sha1Info);
    expect(nodeVerify('sha1', data, key, sha1Sig)).toBe(true);
    expect(verify(s, { mechanism: CKM.RSA_PKCS }, rsaPub, sha1Info, sha1Sig)).toBe(true);
    const md5sha1 = Buffer.concat([createHash('md5').update(data).digest(), createHash('sha1').update(data).digest()]);
    expect(publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, sign(s, { mechanism: CKM.RSA_PKCS }, rsa, md5sha1))).toEqual(md5sha1);
    expect(ckrOf(() => sign(s, { mechanism: CKM.RSA_PKCS }, rsa, Buffer.alloc(246, 1)))).toBe(CKR.DATA_LEN_RANGE);
    expect(ckrOf(() => lib.C_SignInit(s.handle, { mechanism: CKM.RSA_PKCS_PSS, parameter: pss(CKM.SHA256, CKG.MGF1_SHA256, 20) }, rsa))).toBe(CKR.MECHANISM_PARAM_INVALID);
    expect(ckrOf(() => lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA }, rsa))).toBe(CKR.KEY_TYPE_INCONSISTENT);
    expect(ckrOf(() => lib.C_SignInit(s.handle, { mechanism: CKM.SHA256_RSA_PKCS }, dec))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    expect(ckrOf(() => lib.C_SignInit(s.handle, { mechanism: CKM.RSA_PKCS_OAEP }, rsa))).toBe(CKR.MECHANISM_INVALID);
    expect(readFileSync(moduleLog, 'utf8')).toMatch(/C_Sign: refused \(CKR 0x21\): CKM_RSA_PKCS signs 1 to 245 bytes/);
  }, LONG);

  it('signs with ECDSA on P-256 (raw r‖s), single- and multi-part, hashing in the module or not', () => {
    expect(find(s, [{ type: CKA.KEY_TYPE, value: CKK.EC }, { type: CKA.EC_PARAMS, value: P256 }, { type: CKA.LABEL, value: 'ec-p256' }]).length).toBe(2);
    const priv = one(s, [{ type: CKA.ID, value: Buffer.from(keys.p256, 'hex') }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }]);
    const pub = one(s, [{ type: CKA.ID, value: Buffer.from(keys.p256, 'hex') }, { type: CKA.CLASS, value: CKO.PUBLIC_KEY }]);
    const key = spkiKey(attr(s, pub, CKA.PUBLIC_KEY_INFO));
    const data = Buffer.from('threshold ecdsa over pkcs#11');
    for (const [mechanism, hash] of [[CKM.ECDSA_SHA256, 'sha256'], [CKM.ECDSA_SHA384, 'sha384'], [CKM.ECDSA_SHA512, 'sha512']] as const) {
      const sig = sign(s, { mechanism }, priv, data);
      expect(sig.length, hash).toBe(64);
      expect(nodeVerify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, sig), hash).toBe(true);
      expect(verify(s, { mechanism }, pub, data, sig)).toBe(true);
      expect(verify(s, { mechanism }, pub, Buffer.from('other'), sig)).toBe(false);
    }
    const digest = createHash('sha256').update(data).digest();
    const raw = sign(s, { mechanism: CKM.ECDSA }, priv, digest);
    expect(nodeVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, raw)).toBe(true);
    lib.C_SignInit(s.handle, { mechanism: CKM.ECDSA_SHA256 }, priv);
    lib.C_SignUpdate(s.handle, data.subarray(0, 7));
    lib.C_SignUpdate(s.handle, data.subarray(7));
    expect(nodeVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, lib.C_SignFinal(s.handle, Buffer.alloc(64)))).toBe(true);
    expect(ckrOf(() => lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA }, priv))).toBe(CKR.KEY_TYPE_INCONSISTENT);
  }, LONG);

  it('signs with Ed25519 and Ed25519ph, single- and multi-part', () => {
    const pub = attr(s, edPub, CKA.EC_POINT).subarray(2);
    const data = Buffer.from('ed25519 over the wire');
    const sig = sign(s, { mechanism: CKM.EDDSA }, ed, data);
    expect(ed25519.verify(sig, data, pub)).toBe(true);
    lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA }, ed);
    lib.C_SignUpdate(s.handle, data.subarray(0, 5));
    lib.C_SignUpdate(s.handle, data.subarray(5));
    expect(ed25519.verify(lib.C_SignFinal(s.handle, Buffer.alloc(64)), data, pub)).toBe(true);
    const ph = sign(s, { mechanism: CKM.EDDSA, parameter: eddsaParams(true) }, ed, data);
    expect(ed25519ph.verify(ph, data, pub)).toBe(true);
    expect(ed25519.verify(ph, data, pub)).toBe(false);
    expect(verify(s, { mechanism: CKM.EDDSA, parameter: eddsaParams(true) }, edPub, data, ph)).toBe(true);
    expect(verify(s, { mechanism: CKM.EDDSA }, edPub, data, sig)).toBe(true);
    expect(verify(s, { mechanism: CKM.EDDSA }, edPub, Buffer.from('other'), sig)).toBe(false);
    const withContext = Buffer.concat([Buffer.of(0), Buffer.alloc(7), ul(3), ul(0)]);
    expect(ckrOf(() => lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA, parameter: withContext }, ed))).toBe(CKR.MECHANISM_PARAM_INVALID);
  }, LONG);

  it('decrypts OAEP (SHA-1, SHA-256) and PKCS#1 v1.5, and encrypts with the public key', () => {
    const key = spkiKey(attr(s, decPub, CKA.PUBLIC_KEY_INFO));
    const secret = Buffer.from('a data key, say');
    const cases: [pkcs11.Mechanism, Buffer][] = [
      [{ mechanism: CKM.RSA_PKCS_OAEP, parameter: oaep(CKM.SHA256, CKG.MGF1_SHA256) }, publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, secret)],
      [{ mechanism: CKM.RSA_PKCS_OAEP, parameter: oaep(CKM.SHA_1, CKG.MGF1_SHA1) }, publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, secret)],
    ];
    for (const [mechanism, ciphertext] of cases) {
      lib.C_DecryptInit(s.handle, mechanism, dec);
      expect(lib.C_Decrypt(s.handle, ciphertext, Buffer.alloc(256))).toEqual(secret);
    }
    // PKCS#1 v1.5 (RSAES_PKCS1_V1_5): not a KMS algorithm, but PKCS#11 consumers use it.
    lib.C_DecryptInit(s.handle, { mechanism: CKM.RSA_PKCS }, dec);
    expect(lib.C_Decrypt(s.handle, publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, secret), Buffer.alloc(256))).toEqual(secret);
    const m = { mechanism: CKM.RSA_PKCS_OAEP, parameter: oaep(CKM.SHA256, CKG.MGF1_SHA256) };
    lib.C_EncryptInit(s.handle, m, decPub);
    const c = lib.C_Encrypt(s.handle, secret, Buffer.alloc(256));
    lib.C_DecryptInit(s.handle, m, dec);
    expect(lib.C_Decrypt(s.handle, c, Buffer.alloc(256))).toEqual(secret);
    lib.C_DecryptInit(s.handle, { mechanism: CKM.RSA_PKCS_OAEP, parameter: oaep(CKM.SHA_1, CKG.MGF1_SHA1) }, dec);
    expect(ckrOf(() => lib.C_Decrypt(s.handle, c, Buffer.alloc(256)))).toBe(CKR.ENCRYPTED_DATA_INVALID); // wrong hash
    expect(ckrOf(() => lib.C_DecryptInit(s.handle, { mechanism: CKM.RSA_PKCS_OAEP, parameter: oaep(CKM.SHA384, CKG.MGF1_SHA384) }, dec))).toBe(CKR.MECHANISM_PARAM_INVALID);
    lib.C_EncryptInit(s.handle, m, decPub);
    expect(ckrOf(() => lib.C_Encrypt(s.handle, Buffer.alloc(200), Buffer.alloc(256)))).toBe(CKR.DATA_LEN_RANGE);
    expect(ckrOf(() => lib.C_DecryptInit(s.handle, m, rsa))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
  }, LONG);

  it('length queries and short buffers keep the operation (C harness)', () => {
    const env = { MPCHSM_PKCS11_CONF: app.MPCHSM_PKCS11_CONF, HARNESS_PIN: app.MPCHSM_PKCS11_PIN };
    for (const [label, len] of [['rsa-sign', '256'], ['ed-test', '64']] as const) {
      const { steps, status } = harness(['lengths', label, 'rsa-dec'], env);
      expect(status, label).toBe(0);
      const rv = (n: string) => only(steps, n).rv;
      expect(rv('sign_init')).toBe(CKR.OK);
      expect(rv('sign_init_twice')).toBe(CKR.OPERATION_ACTIVE);
      expect(only(steps, 'sign_query')).toEqual({ rv: CKR.OK, detail: len });
      expect(only(steps, 'sign_short')).toEqual({ rv: CKR.BUFFER_TOO_SMALL, detail: len });
      expect(only(steps, 'sign').detail).toMatch(new RegExp(`^${len} [0-9a-f]{${2 * Number(len)}}$`));
      expect(rv('sign_after')).toBe(CKR.OPERATION_NOT_INITIALIZED);
      expect(only(steps, 'sign_final_query')).toEqual({ rv: CKR.OK, detail: len });
      expect(only(steps, 'sign_final')).toEqual({ rv: CKR.OK, detail: len });
      expect(rv('sign_after_update')).toBe(CKR.OPERATION_ACTIVE);
      expect(rv('verify')).toBe(CKR.OK);
      expect(rv('verify_multipart')).toBe(CKR.OK);
      expect(rv('verify_bad')).toBe(CKR.SIGNATURE_INVALID);
      expect(rv('verify_short')).toBe(CKR.SIGNATURE_LEN_RANGE);
      expect(rv('verify_after')).toBe(CKR.OPERATION_NOT_INITIALIZED);
      expect(rv('sign_with_public')).toBe(CKR.KEY_TYPE_INCONSISTENT);
      // [LABEL: length query] [ID: fits] [PRIVATE_EXPONENT: sensitive] [unknown] [SIGN: length query]
      const a = only(steps, 'attributes');
      expect([CKR.ATTRIBUTE_SENSITIVE, CKR.ATTRIBUTE_TYPE_INVALID]).toContain(a.rv);
      const lens = a.detail.split(' ').map(Number);
      expect(lens[0]).toBe(label.length);
      expect(lens.slice(2, 5)).toEqual([-1, -1, 1]);
      expect(only(steps, 'encrypt_query')).toEqual({ rv: CKR.OK, detail: '256' });
      expect(only(steps, 'decrypt_query')).toEqual({ rv: CKR.OK, detail: '256' });
      expect(only(steps, 'decrypt_short')).toEqual({ rv: CKR.BUFFER_TOO_SMALL, detail: '20' });
      expect(only(steps, 'decrypt')).toEqual({ rv: CKR.OK, detail: '1' });
      expect(rv('decrypt_bad')).toBe(CKR.ENCRYPTED_DATA_INVALID);
      expect(rv('decrypt_short_ciphertext')).toBe(CKR.ENCRYPTED_DATA_LEN_RANGE);
      expect(rv('decrypt_label')).toBe(CKR.MECHANISM_PARAM_INVALID);
      // An RSA signing key may not decrypt; an Ed25519 key is no RSA key at all.
      expect(rv('decrypt_with_sign_key')).toBe(label === 'rsa-sign' ? CKR.KEY_FUNCTION_NOT_PERMITTED : CKR.KEY_TYPE_INCONSISTENT);
    }
  }, LONG);

  it('signs from many sessions at once (async, in one process) and many threads (C harness)', async () => {
    const sessions = Array.from({ length: 8 }, () => open());
    const pub = attr(s, edPub, CKA.EC_POINT).subarray(2);
    const rsaKey = spkiKey(attr(s, rsaPub, CKA.PUBLIC_KEY_INFO));
    const started = Date.now();
    const results = await Promise.all(
      sessions.map(async (x, i) => {
        const useEd = i % 2 === 0;
        const data = Buffer.from(`parallel message ${i}`);
        lib.C_SignInit(x.handle, { mechanism: useEd ? CKM.EDDSA : CKM.SHA256_RSA_PKCS }, useEd ? ed : rsa);
        const sig = await lib.C_SignAsync(x.handle, data, Buffer.alloc(256));
        return useEd ? ed25519.verify(sig, data, pub) : createVerify('sha256').update(data).verify(rsaKey, sig);
      }),
    );
    expect(results).toEqual(Array(8).fill(true));
    for (const x of sessions) x.close();
    expect(Date.now() - started).toBeLessThan(60_000);

    const { steps } = harness(['threads', 'ed-test', '12', '3'], { MPCHSM_PKCS11_CONF: app.MPCHSM_PKCS11_CONF, HARNESS_PIN: app.MPCHSM_PKCS11_PIN });
    const [ok, verified] = only(steps, 'threads').detail.split(' ').map(Number);
    expect([ok, verified]).toEqual([36, 36]);
    expect(steps.has('thread_sign')).toBe(false);
  }, LONG);

  it('a forked child must initialise again, and then works; the parent is unaffected', () => {
    const { steps, status } = harness(['fork', 'rsa-sign'], { MPCHSM_PKCS11_CONF: app.MPCHSM_PKCS11_CONF, HARNESS_PIN: app.MPCHSM_PKCS11_PIN });
    expect(status).toBe(0);
    const rv = (n: string) => only(steps, n).rv;
    expect(rv('parent_sign')).toBe(CKR.OK);
    expect(rv('child_slot_list')).toBe(CKR.CRYPTOKI_NOT_INITIALIZED);
    expect(rv('child_session_info')).toBe(CKR.CRYPTOKI_NOT_INITIALIZED);
    expect(rv('child_init')).toBe(CKR.OK);
    expect(rv('child_sign')).toBe(CKR.OK);
    expect(rv('child_exit')).toBe(0);
    expect(rv('parent_sign_after')).toBe(CKR.OK);
  }, LONG);

  it('maps a disabled key to CKR_KEY_FUNCTION_NOT_PERMITTED, and its objects say it neither signs nor verifies', async () => {
    const kms = new KMSClient({ endpoint: tc.endpoint, region: admin.AWS_REGION, credentials: { accessKeyId: admin.AWS_ACCESS_KEY_ID, secretAccessKey: admin.AWS_SECRET_ACCESS_KEY } });
    const keyId = keys.ed.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
    // DisableKey is under quorum (2 of 3): proposed by admin1, whose request counts, then approved by another administrator.
    const refused = await kms.send(new DisableKeyCommand({ KeyId: keyId })).then(() => '', (e: Error) => e.message);
    const proposal = /Proposal (p-[0-9a-f]+) holds this request/.exec(refused)?.[1];
    expect(proposal, refused).toBeDefined();
    expect(JSON.parse((await tc.mpchsm('approve', proposal!, '--as', 'admin2', '--dir', tc.dir, '--json')).stdout).Status).toBe('Executed');
    try {
      expect(ckrOf(() => sign(s, { mechanism: CKM.EDDSA }, ed, Buffer.from('x')))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
      lib.C_VerifyInit(s.handle, { mechanism: CKM.EDDSA }, edPub);
      expect(ckrOf(() => lib.C_Verify(s.handle, Buffer.from('x'), Buffer.alloc(64)))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
      // Objects found again say so: CKA_SIGN/CKA_VERIFY false, and C_*Init refuses at once (as
      // PKCS#11 ties CKR_KEY_FUNCTION_NOT_PERMITTED to those attributes); pkcs11-tool --test skips it.
      expect(find(s, [{ type: CKA.ID, value: Buffer.from(keys.ed, 'hex') }, { type: CKA.SIGN, value: true }])).toEqual([]);
      expect(find(s, [{ type: CKA.ID, value: Buffer.from(keys.ed, 'hex') }]).sort()).toEqual([ed, edPub].sort());
      expect([attr(s, ed, CKA.SIGN), attr(s, edPub, CKA.VERIFY)]).toEqual([Buffer.of(0), Buffer.of(0)]);
      expect(ckrOf(() => lib.C_SignInit(s.handle, { mechanism: CKM.EDDSA }, ed))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
      expect(ckrOf(() => lib.C_VerifyInit(s.handle, { mechanism: CKM.EDDSA }, edPub))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    } finally {
      await kms.send(new EnableKeyCommand({ KeyId: keyId }));
    }
    expect(find(s, [{ type: CKA.ID, value: Buffer.from(keys.ed, 'hex') }, { type: CKA.SIGN, value: true }])).toEqual([ed]);
    expect(ed25519.verify(sign(s, { mechanism: CKM.EDDSA }, ed, Buffer.from('x')), Buffer.from('x'), attr(s, edPub, CKA.EC_POINT).subarray(2))).toBe(true);
    expect(readFileSync(moduleLog, 'utf8')).toMatch(/refused \(CKR 0x68\): key [0-9a-f-]+ is disabled/);
  }, LONG);

  it('reports a stopped gateway as CKR_DEVICE_ERROR and carries on after a restart without a new login', async () => {
    await tc.down();
    try {
      expect(ckrOf(() => sign(s, { mechanism: CKM.EDDSA }, ed, Buffer.from('down')))).toBe(CKR.DEVICE_ERROR);
    } finally {
      await tc.up();
    }
    const data = Buffer.from('after restart');
    const rv = ckrOf(() => sign(s, { mechanism: CKM.EDDSA }, ed, data));
    expect(rv, readFileSync(moduleLog, 'utf8').split('\n').slice(-5).join('\n')).toBeUndefined();
    expect(ed25519.verify(sign(s, { mechanism: CKM.EDDSA }, ed, data), data, attr(s, edPub, CKA.EC_POINT).subarray(2))).toBe(true);
    expect(readFileSync(moduleLog, 'utf8')).toMatch(/C_Sign: (cannot connect to|lost the connection to) the gateway/);
  }, LONG);
});

describe('TLS to the gateway', () => {
  it('works with the gateway certificate, and refuses an unknown one', async () => {
    const p11 = path.join(tc.dir, 'gateway', 'p11');
    await tc.down();
    const gateway = selfSigned('mpchsm gateway', ['127.0.0.1', 'localhost']);
    writeFileSync(path.join(p11, 'tls.key'), gateway.keyPem, { mode: 0o600 });
    writeFileSync(path.join(p11, 'tls.crt'), gateway.certPem);
    writeFileSync(path.join(p11, 'other.crt'), selfSigned('someone else').certPem);
    await tc.up();
    const base = readFileSync(app.MPCHSM_PKCS11_CONF, 'utf8');
    const good = path.join(tc.dir, 'tls.conf');
    writeFileSync(good, `${base}tls = on\ntls_ca = ${path.join(p11, 'tls.crt')}\n`);
    const named = path.join(tc.dir, 'tls-named.conf');
    writeFileSync(named, `${base}tls = on\ntls_ca = ${path.join(p11, 'tls.crt')}\ntls_server_name = localhost\n`);
    const wrong = path.join(tc.dir, 'tls-wrong.conf');
    writeFileSync(wrong, `${base}tls = on\ntls_ca = ${path.join(p11, 'other.crt')}\n`);
    const plain = app.MPCHSM_PKCS11_CONF;
    for (const conf of [good, named]) {
      const { steps } = harness(['threads', 'rsa-sign', '2', '2'], { MPCHSM_PKCS11_CONF: conf, HARNESS_PIN: app.MPCHSM_PKCS11_PIN });
      expect(only(steps, 'threads').detail.split(' ').slice(0, 2), conf).toEqual(['4', '4']);
    }
    for (const conf of [wrong, plain]) {
      const { steps } = harness(['threads', 'rsa-sign', '1', '1'], { MPCHSM_PKCS11_CONF: conf, HARNESS_PIN: app.MPCHSM_PKCS11_PIN });
      expect(only(steps, 'login').rv, conf).toBe(CKR.DEVICE_ERROR);
    }
    expect(readFileSync(moduleLog, 'utf8')).toMatch(/TLS handshake with the gateway failed: certificate: (self.signed|unable to get local issuer)/);
  }, LONG);
});
