// P-521 (ECC_NIST_P521, ECDSA_SHA_512) end to end on a real cluster: a threshold key made and used
// through the KMS API (@aws-sdk/client-kms) and through the PKCS#11 module (CKA_EC_PARAMS
// 1.3.132.0.35, CKM_ECDSA and CKM_ECDSA_SHA*), every signature checked by node:crypto (OpenSSL)
// and @noble/curves; and a gateway that lies to the signers about the digest is refused.
import { createHash, createPublicKey, randomUUID, verify as nodeVerify, type KeyObject } from 'node:crypto';
import path from 'node:path';
import { CreateKeyCommand, DescribeKeyCommand, GetPublicKeyCommand, SignCommand, VerifyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { p521 } from '@noble/curves/nist.js';
import * as graphene from 'graphene-pk11';
import type * as pkcs11 from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKK, CKM, CKO } from '../../contract/pkcs11/ck.js';
import { encodeValue } from '../../contract/pkcs11/wire.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { readPinKdf } from '../../gateway/principals.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import { derivePinKeys, macP11Request } from '../../policy/index.js';
import type { TestCluster } from '../helpers/cluster.js';
import { buildShim, CKR, ckrOf, ckrOfAsync, loadModule, stopModuleAndCluster } from '../p11/helpers.js';
import { appRequest, createKey, refusal, startWithSigners } from '../policy-cluster/helpers.js';
import { awsError, kmsClient } from './kms-client.js';

const LONG = 300_000;
const P521_OID = Buffer.from('06052b81040023', 'hex');
const text = (s: string) => Buffer.from(s);
const sha = (name: string, m: Uint8Array) => createHash(name).update(m).digest();

let tc: TestCluster;
let signers: SignerClient[] = [];
let app: KMSClient;
let mod: graphene.Module | undefined;
let lib: pkcs11.PKCS11;
let slot: graphene.Slot;
let kmsKey = '';

const spkiKey = (spki: Uint8Array): KeyObject => createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
/** The uncompressed point at the end of a P-521 SPKI. */
const pointOf = (spki: Uint8Array) => Uint8Array.from(spki.subarray(-133));

beforeAll(async () => {
  buildShim();
  ({ tc, signers } = await startWithSigners());
  app = kmsClient(tc, 'app');
  ({ mod, lib, slot } = loadModule(tc.principal('app').MPCHSM_PKCS11_CONF));
  kmsKey = await createKey(tc, { KeySpec: 'ECC_NIST_P521', KeyUsage: 'SIGN_VERIFY', Description: 'p521' });
}, LONG);

afterAll(async () => {
  for (const c of signers) c.close();
  await stopModuleAndCluster(mod, tc);
}, LONG);

describe('ECC_NIST_P521 through the KMS API', () => {
  it('CreateKey makes a signing key; DescribeKey and GetPublicKey name ECDSA_SHA_512, the SPKI is a P-521 key', async () => {
    const { KeyMetadata: m } = await app.send(new DescribeKeyCommand({ KeyId: kmsKey }));
    expect(m).toMatchObject({ KeySpec: 'ECC_NIST_P521', CustomerMasterKeySpec: 'ECC_NIST_P521', KeyUsage: 'SIGN_VERIFY', SigningAlgorithms: ['ECDSA_SHA_512'] });
    const out = await app.send(new GetPublicKeyCommand({ KeyId: kmsKey }));
    expect(out).toMatchObject({ KeySpec: 'ECC_NIST_P521', KeyUsage: 'SIGN_VERIFY', SigningAlgorithms: ['ECDSA_SHA_512'] });
    const key = spkiKey(out.PublicKey!);
    expect(key.asymmetricKeyType).toBe('ec');
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('secp521r1');
    expect(Buffer.from(key.export({ type: 'spki', format: 'der' }))).toEqual(Buffer.from(out.PublicKey!));
    // Encryption is not an ECDSA key's usage, as in AWS KMS.
    const e = await awsError(kmsClient(tc, 'admin1').send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P521', KeyUsage: 'ENCRYPT_DECRYPT' })));
    expect([e.name, e.status]).toEqual(['ValidationException', 400]);
  }, LONG);

  it('signs RAW and DIGEST messages with ECDSA_SHA_512 (DER); OpenSSL and noble verify, and so does Verify', async () => {
    const spki = (await app.send(new GetPublicKeyCommand({ KeyId: kmsKey }))).PublicKey!;
    const key = spkiKey(spki);
    for (const MessageType of ['RAW', 'DIGEST'] as const) {
      const message = text(`p521 ${MessageType} ${randomUUID()}`);
      const digest = sha('sha512', message);
      const out = await app.send(new SignCommand({ KeyId: kmsKey, Message: MessageType === 'RAW' ? message : digest, MessageType, SigningAlgorithm: 'ECDSA_SHA_512' }));
      expect(out.SigningAlgorithm).toBe('ECDSA_SHA_512');
      const der = Buffer.from(out.Signature!);
      // SEQUENCE of two INTEGERs of up to 66 bytes (plus a sign byte): a long-form length past 127.
      expect(der[0]).toBe(0x30);
      expect(der.length).toBeLessThanOrEqual(3 + 2 * 69);
      expect(nodeVerify('sha512', message, key, der), MessageType).toBe(true);
      expect(nodeVerify('sha512', text('another message'), key, der)).toBe(false);
      expect(p521.verify(der, digest, pointOf(spki), { prehash: false, format: 'der', lowS: false })).toBe(true);
      for (const vt of ['RAW', 'DIGEST'] as const) {
        const v = await app.send(new VerifyCommand({ KeyId: kmsKey, Message: vt === 'RAW' ? message : digest, MessageType: vt, Signature: der, SigningAlgorithm: 'ECDSA_SHA_512' }));
        expect(v.SignatureValid).toBe(true);
      }
      const bad = await awsError(app.send(new VerifyCommand({ KeyId: kmsKey, Message: text('another message'), Signature: der, SigningAlgorithm: 'ECDSA_SHA_512' })));
      expect(bad.name).toBe('KMSInvalidSignatureException');
    }
  }, LONG);

  it('refuses another algorithm and a digest of the wrong length', async () => {
    const wrong = await awsError(app.send(new SignCommand({ KeyId: kmsKey, Message: text('x'), SigningAlgorithm: 'ECDSA_SHA_384' })));
    expect(wrong.name).toBe('InvalidKeyUsageException');
    const short = await awsError(app.send(new SignCommand({ KeyId: kmsKey, Message: sha('sha384', text('x')), MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_512' })));
    expect(short.name).toBe('ValidationException');
    const long = await awsError(app.send(new SignCommand({ KeyId: kmsKey, Message: new Uint8Array(66), MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_512' })));
    expect(long.name).toBe('ValidationException');
  }, LONG);
});

describe('a gateway that lies to the signers about a P-521 digest', () => {
  const message = text('pay 10 to alice');
  /** A genuine app request to sign `message`, as the gateway received it. */
  async function use() {
    const body = { KeyId: kmsKey, Message: message.toString('base64'), MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_512' };
    return { operation: 'Sign', algorithm: 'ECDSA_SHA_512', messageType: 'RAW', payload: message.toString('base64'), evidence: await appRequest(tc, 'TrentService.Sign', body) };
  }
  const start = async (digest: Buffer, u?: object) => signers[0]!.call(signerRoutes.ecdsa.sign.start, { session: randomUUID(), keyId: kmsKey, signers: [1, 2], digest: digest.toString('hex'), use: u ?? (await use()) });

  it('is refused for another message’s digest, another hash of the message, or another algorithm', async () => {
    expect((await refusal(start(sha('sha512', text('pay 10000 to mallory'))))).message).toMatch(/not for the digest the client asked for/);
    // SHA-256 of the right message, zero-padded to 64 bytes: the same number for bits2int, but not the digest asked for.
    expect((await refusal(start(Buffer.concat([Buffer.alloc(32), sha('sha256', message)])))).message).toMatch(/not for the digest the client asked for/);
    expect((await refusal(start(sha('sha384', message), { ...(await use()), algorithm: 'ECDSA_SHA_384' }))).message).toMatch(/ECDSA_SHA_384 is not an algorithm of ECC_NIST_P521 key/);
    // The digest of the request itself starts a session.
    await start(sha('sha512', message));
  }, LONG);

  it('from PKCS#11: each signer plans CKM_ECDSA from the module’s request itself; another padding or hash is refused', async () => {
    const { requestKey } = derivePinKeys(tc.principal('app').MPCHSM_PKCS11_PIN, readPinKdf(path.join(tc.dir, 'gateway')));
    const d256 = sha('sha256', message);
    // What C_Sign with CKM_ECDSA over a SHA-256 digest sends, as the module MACs it.
    const evidence = () =>
      macP11Request({ kind: 'p11', operation: 'Sign', principal: 'app', timestamp: Date.now(), nonce: randomUUID().replace(/-/g, ''), key: `k:${kmsKey}:priv`, mechanism: CKM.ECDSA, params: encodeValue([]).toString('hex'), input: d256.toString('hex'), isDigest: 0 }, requestKey);
    const p11Use = async (payload: Buffer, algorithm = 'ECDSA_SHA_512') => ({ operation: 'Sign', algorithm, messageType: 'DIGEST', payload: payload.toString('base64'), evidence: evidence() });
    const planned = Buffer.concat([Buffer.alloc(32), d256]); // ECDSA_SHA_512's 64 bytes
    // Padded to P-521's 66 field bytes, bits2int would sign d256 · 2^-7: another number.
    const fieldPadded = Buffer.concat([Buffer.alloc(34), d256]);
    expect((await refusal(start(fieldPadded, await p11Use(fieldPadded)))).message).toMatch(/the request signs a different message/);
    expect((await refusal(start(d256, await p11Use(d256, 'ECDSA_SHA_256')))).message).toMatch(/ECDSA_SHA_256 is not an algorithm of ECC_NIST_P521 key/);
    expect((await refusal(start(Buffer.concat([d256, Buffer.alloc(32)]), await p11Use(planned)))).message).toMatch(/not for the digest the client asked for/);
    await start(planned, await p11Use(planned));
    requestKey.fill(0);
  }, LONG);
});

describe('ECC_NIST_P521 through PKCS#11', () => {
  const RW = graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION;
  const find = (s: graphene.Session, template: pkcs11.Template): Buffer[] => {
    lib.C_FindObjectsInit(s.handle, template);
    const found = lib.C_FindObjects(s.handle, 100);
    lib.C_FindObjectsFinal(s.handle);
    return found;
  };
  const one = (s: graphene.Session, label: string, cls: number) => {
    const found = find(s, [{ type: CKA.LABEL, value: label }, { type: CKA.CLASS, value: cls }]);
    expect(found.length).toBe(1);
    return found[0]!;
  };
  const attr = (s: graphene.Session, h: Buffer, type: number) => lib.C_GetAttributeValue(s.handle, h, [{ type }])[0]!.value as Buffer;
  const sign = (s: graphene.Session, mechanism: number, key: Buffer, data: Buffer) => {
    lib.C_SignInit(s.handle, { mechanism }, key);
    return lib.C_Sign(s.handle, data, Buffer.alloc(256));
  };
  const verifies = (s: graphene.Session, mechanism: number, key: Buffer, data: Buffer, sig: Buffer) => {
    lib.C_VerifyInit(s.handle, { mechanism }, key);
    const rv = ckrOf(() => lib.C_Verify(s.handle, data, sig));
    if (rv !== undefined && rv !== CKR.SIGNATURE_INVALID) throw new Error(`C_Verify: CKR 0x${rv.toString(16)}`);
    return rv === undefined;
  };

  it('generates a key pair with CKA_EC_PARAMS 1.3.132.0.35 under SO; the module advertises 521-bit EC keys', async () => {
    const info = lib.C_GetMechanismInfo(slot.handle, CKM.EC_KEY_PAIR_GEN);
    expect(Number(info.maxKeySize)).toBe(521);
    expect(Number(lib.C_GetMechanismInfo(slot.handle, CKM.ECDSA_SHA512).maxKeySize)).toBe(521);
    const s = slot.open(RW);
    s.login(tc.principal('admin1').MPCHSM_PKCS11_PIN, graphene.UserType.SO);
    try {
      const pub: pkcs11.Template = [{ type: CKA.EC_PARAMS, value: P521_OID }, { type: CKA.VERIFY, value: true }, { type: CKA.LABEL, value: 'ec-p521' }];
      expect(await ckrOfAsync(() => lib.C_GenerateKeyPairAsync(s.handle, { mechanism: CKM.EC_KEY_PAIR_GEN }, pub, [{ type: CKA.SIGN, value: true }, { type: CKA.LABEL, value: 'ec-p521' }]))).toBeUndefined();
      const pubKey = one(s, 'ec-p521', CKO.PUBLIC_KEY);
      expect(attr(s, pubKey, CKA.KEY_TYPE).readBigUInt64LE()).toBe(BigInt(CKK.EC));
      expect(attr(s, pubKey, CKA.EC_PARAMS)).toEqual(P521_OID);
      const spki = attr(s, pubKey, CKA.PUBLIC_KEY_INFO);
      expect(spkiKey(spki).asymmetricKeyDetails?.namedCurve).toBe('secp521r1');
      // CKA_EC_POINT: DER OCTET STRING (long-form length) of the 133-byte uncompressed point.
      expect(attr(s, pubKey, CKA.EC_POINT)).toEqual(Buffer.concat([Buffer.of(0x04, 0x81, 133), pointOf(spki)]));
      // The same key seen through the KMS API (CKA_LABEL is its alias).
      expect(Buffer.from((await app.send(new GetPublicKeyCommand({ KeyId: 'alias/ec-p521' }))).PublicKey!)).toEqual(spki);
    } finally {
      s.logout();
      s.close();
    }
  }, LONG);

  it('signs with CKM_ECDSA and CKM_ECDSA_SHA{256,384,512}: raw r‖s of 2×66 bytes that OpenSSL verifies', () => {
    const s = slot.open(RW);
    s.login(tc.principal('app').MPCHSM_PKCS11_PIN, graphene.UserType.USER);
    try {
      const priv = one(s, 'ec-p521', CKO.PRIVATE_KEY);
      const pub = one(s, 'ec-p521', CKO.PUBLIC_KEY);
      const key = spkiKey(attr(s, pub, CKA.PUBLIC_KEY_INFO));
      const data = text('threshold P-521 over pkcs#11');
      const p1363 = { key, dsaEncoding: 'ieee-p1363' as const };
      for (const [mechanism, hash] of [[CKM.ECDSA_SHA512, 'sha512'], [CKM.ECDSA_SHA384, 'sha384'], [CKM.ECDSA_SHA256, 'sha256']] as const) {
        const sig = sign(s, mechanism, priv, data);
        expect(sig.length, hash).toBe(132);
        expect(nodeVerify(hash, data, p1363, sig), hash).toBe(true);
        expect(verifies(s, mechanism, pub, data, sig)).toBe(true);
        expect(verifies(s, mechanism, pub, text('other'), sig)).toBe(false);
        // CKM_ECDSA over the module-side digest: a signature of the same value.
        const raw = sign(s, CKM.ECDSA, priv, sha(hash, data));
        expect(nodeVerify(hash, data, p1363, raw), `CKM_ECDSA ${hash}`).toBe(true);
      }
      expect(p521.verify(sign(s, CKM.ECDSA, priv, sha('sha512', data)), sha('sha512', data), pointOf(attr(s, pub, CKA.PUBLIC_KEY_INFO)), { prehash: false, lowS: false })).toBe(true);
      // Multi-part, and inputs CKM_ECDSA does not take.
      lib.C_SignInit(s.handle, { mechanism: CKM.ECDSA_SHA512 }, priv);
      lib.C_SignUpdate(s.handle, data.subarray(0, 9));
      lib.C_SignUpdate(s.handle, data.subarray(9));
      expect(nodeVerify('sha512', data, p1363, lib.C_SignFinal(s.handle, Buffer.alloc(132)))).toBe(true);
      expect(ckrOf(() => sign(s, CKM.ECDSA, priv, Buffer.alloc(66)))).toBe(CKR.DATA_LEN_RANGE);
      expect(verifies(s, CKM.ECDSA_SHA512, pub, data, Buffer.alloc(132))).toBe(false);
      lib.C_VerifyInit(s.handle, { mechanism: CKM.ECDSA_SHA512 }, pub);
      expect(ckrOf(() => lib.C_Verify(s.handle, data, Buffer.alloc(96)))).toBe(CKR.SIGNATURE_LEN_RANGE);
    } finally {
      s.logout();
      s.close();
    }
  }, LONG);
});
