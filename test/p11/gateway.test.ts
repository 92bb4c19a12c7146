// The gateway side of the PKCS#11 wire, without processes: value codec, framing, mechanism
// mapping, object attributes, certificates and session credentials.
import { createHash, createHmac, createPublicKey, generateKeyPairSync, randomUUID, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { afterAll, describe, expect, it } from 'vitest';
import type { KeyRecord } from '../../gateway/keys.js';
import { spkiFromRawPublicKey } from '../../contract/keys/spki.js';
import { CKA, CKG, CKK, CKM, CKO, CKR, P11Error } from '../../contract/pkcs11/ck.js';
import { Credentials, type CredentialCheck } from '../../gateway/p11/credentials.js';
import { encrypt, planDecryption, planSignature } from '../../contract/pkcs11/mechanisms.js';
import { certificateObject, keyObjects, matches, sessionKeySpki, uuidBytes } from '../../gateway/p11/objects.js';
import { keySpecOfEcParams } from '../../contract/pkcs11/ec-params.js';
import { P11Store } from '../../gateway/p11/store.js';
import { Abi, decodeValue, encodeValue, FrameReader, frame, MAX_FRAME, requestCredential, WireError } from '../../contract/pkcs11/wire.js';
import { parseCertificate } from '../../gateway/p11/x509.js';
import { certificate } from './x509-build.js';
import { newPrincipal, PrincipalRegistry } from '../../gateway/principals.js';
import { derivePinKeys } from '../../policy/evidence.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'p11-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const rv = (f: () => unknown): number => {
  try {
    f();
  } catch (e) {
    if (e instanceof P11Error) return e.rv;
    throw e;
  }
  return CKR.OK;
};

describe('wire values and frames', () => {
  it('round-trips uints, bytes and nested lists', () => {
    const v = [1, 0, 2n ** 64n - 1n, Buffer.from('abc'), [[Buffer.alloc(0), 7], []]];
    expect(decodeValue(encodeValue(v))).toEqual([1, 0, 2n ** 64n - 1n, Buffer.from('abc'), [[Buffer.alloc(0), 7], []]]);
  });

  it('rejects truncation, trailing bytes, unknown tags, lying counts and deep nesting', () => {
    const good = encodeValue([1, Buffer.from('xy')]);
    expect(() => decodeValue(good.subarray(0, good.length - 1))).toThrow(WireError);
    expect(() => decodeValue(Buffer.concat([good, Buffer.of(0)]))).toThrow(WireError);
    expect(() => decodeValue(Buffer.of(9))).toThrow(WireError);
    expect(() => decodeValue(Buffer.of(3, 0xff, 0xff, 0xff, 0xff))).toThrow(/count/);
    let deep: unknown = [];
    for (let i = 0; i < 20; i++) deep = [deep];
    expect(() => decodeValue(encodeValue(deep as never))).toThrow(/deep/);
  });

  it('splits a stream into frames however it is cut, and refuses oversized frames', () => {
    const a = frame([1, Buffer.from('one')]);
    const b = frame([2, Buffer.alloc(1000, 7)]);
    const all = Buffer.concat([a, b]);
    for (const cut of [1, 3, 4, 5, a.length, a.length + 2, all.length - 1]) {
      const r = new FrameReader();
      const got = [...r.push(all.subarray(0, cut)), ...r.push(all.subarray(cut))].map(decodeValue);
      expect(got).toEqual([[1, Buffer.from('one')], [2, Buffer.alloc(1000, 7)]]);
      expect(r.pending).toBe(0);
    }
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(MAX_FRAME + 1);
    expect(() => new FrameReader().push(huge)).toThrow(WireError);
  });

  it('holds frames over the pre-login cap only when their own header carries a valid login', () => {
    const limits = { preLoginBytes: 1024, mayExceed: (c: string) => c === 'good' };
    const request = (credential: string, size: number) => frame([1, 4, 1, Buffer.from(credential), Buffer.alloc(size)]);
    expect(new FrameReader(limits).push(request('', 900)).length).toBe(1);
    const big = request('good', 100_000);
    const r = new FrameReader(limits);
    // Admitted from its first 60 bytes; the rest may come in any pieces.
    expect(r.push(big.subarray(0, 60))).toEqual([]);
    expect(r.push(big.subarray(60, 5000))).toEqual([]);
    expect(r.push(Buffer.concat([big.subarray(5000), request('', 10)])).map((b) => b.length)).toEqual([big.length - 4, 52]);
    // Without a login, a large frame is refused as soon as its header is in, not after its body.
    const bad = new FrameReader(limits);
    const forged = request('forged', 30 * 1024 * 1024);
    expect(bad.push(forged.subarray(0, 40))).toEqual([]);
    expect(() => bad.push(forged.subarray(40, 4096))).toThrow(/without a valid login/);
    expect(() => new FrameReader(limits).push(Buffer.concat([Buffer.of(0, 1, 0, 0), Buffer.alloc(100, 3)]))).toThrow(/without a valid login/);
    expect(() => new FrameReader(limits).push(request('short', 100_000).subarray(0, 4096))).toThrow(/without a valid login/);
    expect(requestCredential(encodeValue([1, 4, 1, Buffer.from('abc')]))).toEqual({ credential: 'abc' });
    expect(requestCredential(encodeValue([1, 4, 1, Buffer.from('short')]))).toEqual({ credential: 'short' });
    expect(requestCredential(encodeValue([1, 4, 1]))).toBe('short');
    expect(requestCredential(encodeValue([1, 4, 1, 7]))).toBe('invalid');
  });

  it('lays out CK_ULONG per the module platform', () => {
    expect(new Abi(1).ulong(0x0102)).toEqual(Buffer.from('0201000000000000', 'hex'));
    expect(new Abi(3).ulong(0x0102)).toEqual(Buffer.from('0000000000000102', 'hex'));
    expect(new Abi(0).ulong(0x0102)).toEqual(Buffer.from('02010000', 'hex'));
    expect(new Abi(1).readUlong(new Abi(1).ulong(2n ** 64n - 1n))).toBe(2n ** 64n - 1n);
    expect(new Abi(1).readUlong(Buffer.alloc(4))).toBeUndefined();
    expect(() => new Abi(4)).toThrow(WireError);
  });
});

describe('mechanism mapping', () => {
  const d256 = createHash('sha256').update('m').digest();
  const d384 = createHash('sha384').update('m').digest();
  const pss = (h: number, mgf: number, s: number) => [h, mgf, s];

  it('maps CKM_RSA_PKCS: a SHA-2 DigestInfo (with or without NULL) to its algorithm, anything else up to k − 11 bytes to raw PKCS#1 v1.5', () => {
    const withNull = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), d256]);
    expect(planSignature(CKM.RSA_PKCS, [], withNull, false, 'RSA_2048')).toMatchObject({ algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', messageType: 'DIGEST', message: d256 });
    const noNull = Buffer.concat([Buffer.from('303f300b06096086480165030402020430', 'hex'), d384]);
    expect(planSignature(CKM.RSA_PKCS, [], noNull, false, 'RSA_3072')).toMatchObject({ algorithm: 'RSASSA_PKCS1_V1_5_SHA_384', message: d384 });
    const sha1Info = Buffer.concat([Buffer.from('3021300906052b0e03021a05000414', 'hex'), Buffer.alloc(20)]);
    expect(planSignature(CKM.RSA_PKCS, [], sha1Info, false, 'RSA_2048')).toMatchObject({ algorithm: 'RSASSA_PKCS1_V1_5_RAW', messageType: 'DIGEST', message: sha1Info });
    expect(planSignature(CKM.RSA_PKCS, [], d256, false, 'RSA_2048')).toMatchObject({ algorithm: 'RSASSA_PKCS1_V1_5_RAW', message: d256 });
    expect(planSignature(CKM.RSA_PKCS, [], Buffer.alloc(245, 7), false, 'RSA_2048').message.length).toBe(245);
    for (const input of [Buffer.alloc(0), Buffer.alloc(246, 7)]) expect(rv(() => planSignature(CKM.RSA_PKCS, [], input, false, 'RSA_2048'))).toBe(CKR.DATA_LEN_RANGE);
    expect(planSignature(CKM.RSA_PKCS, [], Buffer.alloc(501, 7), false, 'RSA_4096').message.length).toBe(501);
    expect(rv(() => planSignature(CKM.RSA_PKCS, [], withNull, false, 'ECC_NIST_EDWARDS25519'))).toBe(CKR.KEY_TYPE_INCONSISTENT);
  });

  it('maps the hashing RSA mechanisms from a digest or from raw data', () => {
    expect(planSignature(CKM.SHA256_RSA_PKCS, [], d256, true, 'RSA_2048')).toMatchObject({ algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', messageType: 'DIGEST', message: d256 });
    expect(planSignature(CKM.SHA256_RSA_PKCS, [], Buffer.from('m'), false, 'RSA_2048').message).toEqual(d256);
    expect(rv(() => planSignature(CKM.SHA384_RSA_PKCS, [], d256, true, 'RSA_2048'))).toBe(CKR.DATA_LEN_RANGE);
    expect(planSignature(CKM.SHA384_RSA_PKCS_PSS, pss(CKM.SHA384, CKG.MGF1_SHA384, 48), d384, true, 'RSA_2048').algorithm).toBe('RSASSA_PSS_SHA_384');
  });

  it('checks PSS parameters: hash, MGF and salt length', () => {
    expect(planSignature(CKM.RSA_PKCS_PSS, pss(CKM.SHA256, CKG.MGF1_SHA256, 32), d256, false, 'RSA_2048').algorithm).toBe('RSASSA_PSS_SHA_256');
    expect(rv(() => planSignature(CKM.RSA_PKCS_PSS, pss(CKM.SHA256, CKG.MGF1_SHA1, 32), d256, false, 'RSA_2048'))).toBe(CKR.MECHANISM_PARAM_INVALID);
    expect(rv(() => planSignature(CKM.RSA_PKCS_PSS, pss(CKM.SHA256, CKG.MGF1_SHA256, 20), d256, false, 'RSA_2048'))).toBe(CKR.MECHANISM_PARAM_INVALID);
    expect(rv(() => planSignature(CKM.RSA_PKCS_PSS, pss(CKM.SHA_1, CKG.MGF1_SHA1, 20), Buffer.alloc(20), false, 'RSA_2048'))).toBe(CKR.MECHANISM_PARAM_INVALID);
    expect(rv(() => planSignature(CKM.RSA_PKCS_PSS, pss(CKM.SHA256, CKG.MGF1_SHA256, 32), d384, false, 'RSA_2048'))).toBe(CKR.DATA_LEN_RANGE);
    expect(rv(() => planSignature(CKM.SHA512_RSA_PKCS_PSS, pss(CKM.SHA256, CKG.MGF1_SHA256, 32), d256, true, 'RSA_2048'))).toBe(CKR.MECHANISM_PARAM_INVALID);
    expect(rv(() => planSignature(CKM.RSA_PKCS_PSS, [], d256, false, 'RSA_2048'))).toBe(CKR.MECHANISM_PARAM_INVALID);
  });

  it('fits any SHA-2 digest to the curve for ECDSA, as ECDSA truncates', () => {
    const p = planSignature(CKM.ECDSA, [], d384, false, 'ECC_NIST_P256');
    expect(p).toMatchObject({ algorithm: 'ECDSA_SHA_256', messageType: 'DIGEST', ecdsa: 'ECC_NIST_P256' });
    expect(p.message).toEqual(d384.subarray(0, 32));
    const q = planSignature(CKM.ECDSA_SHA256, [], d256, true, 'ECC_NIST_P384');
    expect(q.algorithm).toBe('ECDSA_SHA_384');
    expect(q.message).toEqual(Buffer.concat([Buffer.alloc(16), d256]));
    // P-521 (521-bit order): any SHA-2 digest fits whole in ECDSA_SHA_512's 64 bytes, zero-padded
    // on the left — never to 66 bytes, whose 7 extra bits bits2int would shift away.
    const d512 = createHash('sha512').update('m').digest();
    expect(planSignature(CKM.ECDSA, [], d512, false, 'ECC_NIST_P521')).toMatchObject({ algorithm: 'ECDSA_SHA_512', messageType: 'DIGEST', message: d512, ecdsa: 'ECC_NIST_P521' });
    expect(planSignature(CKM.ECDSA, [], d256, false, 'ECC_NIST_P521').message).toEqual(Buffer.concat([Buffer.alloc(32), d256]));
    expect(planSignature(CKM.ECDSA_SHA384, [], Buffer.from('m'), false, 'ECC_NIST_P521').message).toEqual(Buffer.concat([Buffer.alloc(16), d384]));
    expect(rv(() => planSignature(CKM.ECDSA, [], Buffer.alloc(66), false, 'ECC_NIST_P521'))).toBe(CKR.DATA_LEN_RANGE);
    expect(rv(() => planSignature(CKM.ECDSA, [], Buffer.alloc(20), false, 'ECC_NIST_P256'))).toBe(CKR.DATA_LEN_RANGE);
    expect(rv(() => planSignature(CKM.ECDSA, [], d256, false, 'RSA_2048'))).toBe(CKR.KEY_TYPE_INCONSISTENT);
  });

  it('maps EdDSA and Ed25519ph', () => {
    expect(planSignature(CKM.EDDSA, [0], Buffer.from('hello'), false, 'ECC_NIST_EDWARDS25519')).toMatchObject({ algorithm: 'ED25519_SHA_512', messageType: 'RAW' });
    const d512 = createHash('sha512').update('hello').digest();
    expect(planSignature(CKM.EDDSA, [1], d512, true, 'ECC_NIST_EDWARDS25519')).toMatchObject({ algorithm: 'ED25519_PH_SHA_512', messageType: 'DIGEST', message: d512 });
    expect(rv(() => planSignature(CKM.EDDSA, [0], d512, true, 'ECC_NIST_EDWARDS25519'))).toBe(CKR.MECHANISM_PARAM_INVALID);
    expect(rv(() => planSignature(CKM.EDDSA, [2], d512, true, 'ECC_NIST_EDWARDS25519'))).toBe(CKR.MECHANISM_PARAM_INVALID);
    expect(rv(() => planSignature(0x9999, [], d512, true, 'ECC_NIST_EDWARDS25519'))).toBe(CKR.MECHANISM_INVALID);
  });

  it('maps decryption padding and encrypts with the public key within RFC 8017 limits', () => {
    expect(planDecryption(CKM.RSA_PKCS, [], 'RSA_2048')).toBe('RSAES_PKCS1_V1_5');
    expect(planDecryption(CKM.RSA_PKCS_OAEP, [CKM.SHA_1, CKG.MGF1_SHA1], 'RSA_2048')).toBe('RSAES_OAEP_SHA_1');
    expect(planDecryption(CKM.RSA_PKCS_OAEP, [CKM.SHA256, CKG.MGF1_SHA256], 'RSA_2048')).toBe('RSAES_OAEP_SHA_256');
    expect(rv(() => planDecryption(CKM.RSA_PKCS_OAEP, [CKM.SHA256, CKG.MGF1_SHA1], 'RSA_2048'))).toBe(CKR.MECHANISM_PARAM_INVALID);
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const c = encrypt(CKM.RSA_PKCS_OAEP, [CKM.SHA256, CKG.MGF1_SHA256], Buffer.from('secret'), spki, 'RSA_2048');
    expect(c.length).toBe(256);
    expect(rv(() => encrypt(CKM.RSA_PKCS_OAEP, [CKM.SHA256, CKG.MGF1_SHA256], Buffer.alloc(191), spki, 'RSA_2048'))).toBe(CKR.DATA_LEN_RANGE);
    expect(rv(() => encrypt(CKM.RSA_PKCS, [], Buffer.alloc(246), spki, 'RSA_2048'))).toBe(CKR.DATA_LEN_RANGE);
    expect(privateKey.asymmetricKeyType).toBe('rsa');
  });
});

const abi = new Abi(1);
const ul = (v: number) => abi.ulong(v);

function rsaRecord(): KeyRecord {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    keyId: randomUUID(), scheme: 'rsa-shoup', keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY',
    publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    holders: [1, 2, 3], threshold: 2, state: 'Enabled', origin: 'AWS_KMS', description: '', creationDate: Date.now(), tags: [],
  };
}

describe('key objects', () => {
  it('answers the attributes consumers read, on both objects of an RSA key', () => {
    const key = rsaRecord();
    const [pub, priv] = keyObjects(key, { labels: ['signing', 'other'], ckaId: uuidBytes(key.keyId), subject: Buffer.alloc(0) }, abi);
    const jwk = createPublicKey({ key: Buffer.from(key.publicKey, 'base64'), format: 'der', type: 'spki' }).export({ format: 'jwk' });
    for (const o of [pub, priv]) {
      expect(o.attrs.get(CKA.KEY_TYPE)).toEqual(ul(CKK.RSA));
      expect(o.attrs.get(CKA.ID)).toEqual(Buffer.from(key.keyId.replace(/-/g, ''), 'hex'));
      expect(o.attrs.get(CKA.LABEL)?.toString()).toBe('signing');
      expect(o.attrs.get(CKA.MODULUS)).toEqual(Buffer.from(jwk.n!, 'base64url'));
      expect(o.attrs.get(CKA.PUBLIC_EXPONENT)).toEqual(Buffer.from(jwk.e!, 'base64url'));
      expect(o.attrs.get(CKA.MODULUS_BITS)).toEqual(ul(2048));
      expect(o.attrs.get(CKA.PUBLIC_KEY_INFO)).toEqual(Buffer.from(key.publicKey, 'base64'));
      expect(o.attrs.get(CKA.SENSITIVE)).toEqual(Buffer.of(1));
      expect(o.attrs.get(CKA.EXTRACTABLE)).toEqual(Buffer.of(0));
      expect(o.attrs.get(CKA.KEY_GEN_MECHANISM)).toEqual(ul(CKM.RSA_PKCS_KEY_PAIR_GEN));
      expect(o.attrs.get(CKA.ALLOWED_MECHANISMS)!.length).toBe(8 * 8);
      expect(o.outLen).toBe(256);
    }
    expect(priv.attrs.get(CKA.CLASS)).toEqual(ul(CKO.PRIVATE_KEY));
    expect(priv.attrs.get(CKA.SIGN)).toEqual(Buffer.of(1));
    expect(priv.attrs.get(CKA.DECRYPT)).toEqual(Buffer.of(0));
    expect(priv.sensitive).toContain(CKA.PRIVATE_EXPONENT);
    expect(pub.attrs.get(CKA.VERIFY)).toEqual(Buffer.of(1));
    expect(pub.attrs.get(CKA.PRIVATE)).toEqual(Buffer.of(0));
    expect(pub.sensitive).toEqual([]);
    // CKA_LABEL matches any alias of the key; other attributes match byte for byte.
    expect(matches(priv, [[CKA.LABEL, Buffer.from('other')], [CKA.CLASS, ul(CKO.PRIVATE_KEY)]])).toBe(true);
    expect(matches(priv, [[CKA.CLASS, ul(CKO.PUBLIC_KEY)]])).toBe(false);
    expect(matches(priv, [[CKA.PRIVATE_EXPONENT, Buffer.alloc(0)]])).toBe(false);
    expect(matches(pub, [[0x12345, Buffer.alloc(0)]])).toBe(false);
  });

  it('says a disabled key can do nothing (CKA_SIGN/VERIFY/DECRYPT/ENCRYPT false) until it is enabled', () => {
    const names = (key: KeyRecord) => ({ labels: ['k'], ckaId: uuidBytes(key.keyId), subject: Buffer.alloc(0) });
    const uses = (key: KeyRecord) => {
      const [pub, priv] = keyObjects(key, names(key), abi);
      return [pub.attrs.get(CKA.VERIFY), pub.attrs.get(CKA.ENCRYPT), priv.attrs.get(CKA.SIGN), priv.attrs.get(CKA.DECRYPT)].map((b) => b![0]);
    };
    const signing = rsaRecord();
    const decrypting = { ...rsaRecord(), keyUsage: 'ENCRYPT_DECRYPT' as const };
    expect(uses(signing)).toEqual([1, 0, 1, 0]);
    expect(uses(decrypting)).toEqual([0, 1, 0, 1]);
    expect(uses({ ...signing, state: 'Disabled' })).toEqual([0, 0, 0, 0]);
    expect(uses({ ...decrypting, state: 'Disabled' })).toEqual([0, 0, 0, 0]);
  });

  it('encodes Ed25519 as CKK_EC_EDWARDS with the RFC 8410 OID and an OCTET STRING point', () => {
    const pk = ed25519.getPublicKey(ed25519.utils.randomSecretKey());
    const key = { ...rsaRecord(), scheme: 'frost-ed25519' as const, keySpec: 'ECC_NIST_EDWARDS25519', origin: 'EXTERNAL' as const, publicKey: Buffer.from(spkiFromRawPublicKey('ECC_NIST_EDWARDS25519', pk)).toString('base64') };
    const [pub, priv] = keyObjects(key, { labels: [key.keyId], ckaId: Buffer.of(1), subject: Buffer.alloc(0) }, abi);
    expect(pub.attrs.get(CKA.KEY_TYPE)).toEqual(ul(CKK.EC_EDWARDS));
    expect(pub.attrs.get(CKA.EC_PARAMS)).toEqual(Buffer.from('06032b6570', 'hex'));
    expect(priv.attrs.get(CKA.EC_POINT)).toEqual(Buffer.concat([Buffer.of(4, 32), pk]));
    expect(priv.attrs.get(CKA.KEY_GEN_MECHANISM)).toEqual(abi.ulong(2n ** 64n - 1n)); // imported: unknown
    expect(priv.attrs.get(CKA.LOCAL)).toEqual(Buffer.of(0));
    expect(priv.outLen).toBe(64);
    expect(keySpecOfEcParams(Buffer.from('130c656477617264733235353139', 'hex'))).toBe('ECC_NIST_EDWARDS25519');
    expect(keySpecOfEcParams(Buffer.from('06082a8648ce3d030107', 'hex'))).toBe('ECC_NIST_P256');
    expect(keySpecOfEcParams(Buffer.from('06052b81040023', 'hex'))).toBe('ECC_NIST_P521');
    expect(keySpecOfEcParams(Buffer.from('06092b2403030208010107', 'hex'))).toBeUndefined(); // brainpoolP256r1
  });

  it('encodes a P-521 key: 1.3.132.0.35, a 133-byte point in a long-form OCTET STRING, 132-byte signatures', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp521r1' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const key = { ...rsaRecord(), scheme: 'ecdsa-dkls23' as const, keySpec: 'ECC_NIST_P521', origin: 'EXTERNAL' as const, publicKey: spki.toString('base64') };
    const [pub, priv] = keyObjects(key, { labels: [key.keyId], ckaId: Buffer.of(1), subject: Buffer.alloc(0) }, abi);
    expect(pub.attrs.get(CKA.KEY_TYPE)).toEqual(ul(CKK.EC));
    expect(pub.attrs.get(CKA.EC_PARAMS)).toEqual(Buffer.from('06052b81040023', 'hex'));
    const point = pub.attrs.get(CKA.EC_POINT)!;
    expect(point.subarray(0, 4)).toEqual(Buffer.of(0x04, 0x81, 133, 0x04));
    expect(point.subarray(3)).toEqual(spki.subarray(-133));
    expect(priv.outLen).toBe(132);
    // A session public key from the same attributes, in DER or bare, is the same key.
    const attrs = (p: Buffer) => new Map([[CKA.KEY_TYPE, ul(CKK.EC)], [CKA.EC_PARAMS, Buffer.from('06052b81040023', 'hex')], [CKA.EC_POINT, p]]);
    expect(sessionKeySpki(attrs(point), abi)).toEqual({ keySpec: 'ECC_NIST_P521', spki });
    expect(sessionKeySpki(attrs(point.subarray(3)), abi).spki).toEqual(spki);
  });

  it('rebuilds session public keys, and refuses unsupported ones', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    const rsa = new Map([[CKA.KEY_TYPE, ul(CKK.RSA)], [CKA.MODULUS, Buffer.from(jwk.n!, 'base64url')], [CKA.PUBLIC_EXPONENT, Buffer.from(jwk.e!, 'base64url')]]);
    expect(sessionKeySpki(rsa, abi).spki).toEqual(publicKey.export({ type: 'spki', format: 'der' }));
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    expect(rv(() => sessionKeySpki(new Map([...rsa, [CKA.MODULUS, Buffer.from(small.n!, 'base64url')]]), abi))).toBe(CKR.KEY_SIZE_RANGE);
    const pk = ed25519.getPublicKey(ed25519.utils.randomSecretKey());
    const ed = new Map([[CKA.KEY_TYPE, ul(CKK.EC_EDWARDS)], [CKA.EC_PARAMS, Buffer.from('06032b6570', 'hex')], [CKA.EC_POINT, Buffer.concat([Buffer.of(4, 32), pk])]]);
    expect(sessionKeySpki(ed, abi).keySpec).toBe('ECC_NIST_EDWARDS25519');
    expect(rv(() => sessionKeySpki(new Map([...ed, [CKA.EC_PARAMS, Buffer.from('06032b6571', 'hex')]]), abi))).toBe(CKR.DOMAIN_PARAMS_INVALID);
    expect(rv(() => sessionKeySpki(new Map([[CKA.KEY_TYPE, ul(0x10)]]), abi))).toBe(CKR.KEY_TYPE_INCONSISTENT);
  });
});

describe('certificates', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = certificate({ subject: 'unit test', serial: 0xa1b2n, spki: publicKey.export({ type: 'spki', format: 'der' }), issuerKey: privateKey });

  it('slices subject, issuer, serial and key from the DER', () => {
    const parts = parseCertificate(der);
    const x = new X509Certificate(der);
    expect(parts.serialNumber).toEqual(Buffer.from('020300a1b2', 'hex'));
    expect(parts.subject).toEqual(parts.issuer);
    expect(parts.subject.toString('latin1')).toContain('unit test');
    expect(parts.spki).toEqual(x.publicKey.export({ type: 'spki', format: 'der' }));
    expect(parts.notBefore).toMatch(/^20\d{6}$/);
    expect(() => parseCertificate(Buffer.from('3003020100', 'hex'))).toThrow(/X\.509/);
  });

  it('stores certificates and answers their attributes', async () => {
    const store = new P11Store(path.join(tmp, 'store'));
    const c = { id: randomUUID(), value: der.toString('base64'), label: 'web', ckaId: 'ab', private: false, trusted: false, category: 0, createdBy: 'app', creationDate: 1 };
    await store.exclusive(() => store.addCertificate(c));
    const again = new P11Store(path.join(tmp, 'store'));
    expect(again.certificates()).toEqual([c]);
    expect(again.credentialKey).toEqual(store.credentialKey);
    const o = certificateObject(again.certificates()[0]!, abi);
    expect(o.attrs.get(CKA.VALUE)).toEqual(der);
    expect(o.attrs.get(CKA.ID)).toEqual(Buffer.of(0xab));
    expect(o.attrs.get(CKA.SERIAL_NUMBER)).toEqual(parseCertificate(der).serialNumber);
    expect(o.attrs.get(CKA.CHECK_VALUE)).toEqual(createHash('sha1').update(der).digest().subarray(0, 3));
    expect(await again.exclusive(() => again.removeCertificate(c.id))).toBe(true);
    expect(await again.exclusive(() => again.removeCertificate(c.id))).toBe(false);
  });
});

describe('session credentials', () => {
  const file = path.join(tmp, 'principals.json');
  const registry = new PrincipalRegistry(file);
  const kdf = { salt: '5a'.repeat(16), iterations: 1000 };
  const app = newPrincipal('app', 'app', kdf);
  const admin = newPrincipal('admin1', 'admin', kdf);

  it('issues credentials that verify, resist forgery, expire and can be revoked', async () => {
    await registry.addAll([app.record, admin.record]);
    const creds = new Credentials(Buffer.alloc(32, 1), registry, 60_000);
    const nameOf = (c: CredentialCheck) => (c.ok ? c.principal.name : undefined);
    const t = creds.issue(app.record);
    expect(nameOf(creds.check(t))).toBe('app');
    expect(new Credentials(Buffer.alloc(32, 2), registry, 60_000).check(t)).toEqual({ ok: false, why: 'invalid' });
    const [prefix, payload, mac] = t.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), p: 'admin1', r: 'admin' })).toString('base64url');
    expect(creds.check(`${prefix}.${forged}.${mac}`)).toEqual({ ok: false, why: 'invalid' });
    expect(creds.check('garbage')).toEqual({ ok: false, why: 'invalid' });
    const other = creds.issue(app.record);
    expect(creds.revoke(t)).toBe('app');
    expect(creds.check(t)).toEqual({ ok: false, why: 'revoked', name: 'app' });
    expect(nameOf(creds.check(other))).toBe('app');
    expect(creds.revoke('garbage')).toBeUndefined();
    // The same credential under a gateway whose logins last 1 s, 1 s after it was issued.
    const short = new Credentials(Buffer.alloc(32, 1), registry, 1000);
    const late = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(other.split('.')[1]!, 'base64url').toString()), t: Date.now() - 1000 })).toString('base64url');
    const lateMac = createHmac('sha256', Buffer.alloc(32, 1)).update(`${prefix}.${late}`).digest('base64url');
    expect(short.check(`${prefix}.${late}.${lateMac}`)).toEqual({ ok: false, why: 'expired', name: 'app' });
    expect(nameOf(creds.check(`${prefix}.${late}.${lateMac}`))).toBe('app');
  });

  it("finds a principal by its PIN's login key and role, never by the PIN or the request key", () => {
    const { loginKey, requestKey } = derivePinKeys(app.credentials.pin, kdf);
    expect(registry.byLoginKey(loginKey, ['app'])?.name).toBe('app');
    expect(registry.byLoginKey(loginKey, ['admin'])).toBeUndefined();
    expect(registry.byLoginKey(requestKey, ['app'])).toBeUndefined();
    expect(registry.byLoginKey(Buffer.from(app.credentials.pin), ['app'])).toBeUndefined();
    expect(registry.byLoginKey(derivePinKeys(admin.credentials.pin, kdf).loginKey, ['admin'])?.name).toBe('admin1');
    // What the gateway stores and is given says nothing of the request key the signers check.
    expect(app.credentials.pinRequestKey).toBe(Buffer.from(requestKey).toString('hex'));
    expect(JSON.stringify(app.record)).not.toContain(app.credentials.pinRequestKey);
    // An administrator's SO PIN has a request key too (the signers check its requests); the gateway's record holds no secret.
    expect(admin.credentials.pinRequestKey).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(admin.record).sort()).toEqual(['accessKeyId', 'name', 'pinLoginHash', 'role']);
  });
});
