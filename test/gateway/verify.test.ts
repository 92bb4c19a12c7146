import {
  constants,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  sign as nodeSign,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ed25519, ed25519ph } from '@noble/curves/ed25519.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import {
  ALGORITHM_INFO,
  EC_CURVES,
  HASHES,
  KEY_SPECS,
  SIGNING_ALGORITHMS,
  SIGNING_ALGORITHMS_BY_SPEC,
  type EcKeySpec,
  type KeySpec,
  type RsaKeySpec,
  type SigningAlgorithm,
} from '../../contract/keys/specs.js';
import { parseSpki, rawPublicKeyFromSpki, spkiFromRawPublicKey, spkiFromRsaPublicKey } from '../../contract/keys/spki.js';
import {
  VerifyError,
  checkSigningRequest,
  ecdsaDerToRaw,
  ecdsaRawToDer,
  verifySignature,
  type VerifyParams,
} from '../../gateway/verify.js';

const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const utf8 = (s: string) => new TextEncoder().encode(s);
const spkiOf = (k: KeyObject) => Uint8Array.from(k.export({ type: 'spki', format: 'der' }));
const flip = (b: Uint8Array, i = 0) => {
  const c = Uint8Array.from(b);
  c[i] = c[i]! ^ 0x01;
  return c;
};

interface WycheproofTest {
  tcId: number;
  comment: string;
  flags: string[];
  msg: string;
  sig: string;
  result: 'valid' | 'invalid' | 'acceptable';
}
interface WycheproofGroup {
  sha?: string;
  sLen?: number | string;
  mgfSha?: string;
  keySize?: number | string;
  publicKeyDer: string;
  publicKey: { uncompressed?: string; pk?: string; modulus?: string; publicExponent?: string; curve?: string };
  tests: WycheproofTest[];
}
function wycheproof(name: string): WycheproofGroup[] {
  const file = resolve(process.cwd(), '../shared/vectors/wycheproof', name);
  return (JSON.parse(readFileSync(file, 'utf8')) as { testGroups: WycheproofGroup[] }).testGroups;
}

/** Runs every vector through verifySignature; returns the tcIds whose outcome differed. */
function runVectors(
  groups: WycheproofGroup[],
  keySpec: KeySpec,
  algorithm: SigningAlgorithm,
  spkiFor: (g: WycheproofGroup) => Uint8Array,
  expectValid: (t: WycheproofTest) => boolean,
): { checked: number; failures: string[] } {
  const info = ALGORITHM_INFO[algorithm];
  const failures: string[] = [];
  let checked = 0;
  for (const g of groups) {
    const spki = spkiFor(g);
    for (const t of g.tests) {
      const message = hex(t.msg);
      const signature = hex(t.sig);
      const want = expectValid(t);
      for (const messageType of info.messageTypes) {
        const m = messageType === 'DIGEST' ? HASHES[info.hash](message) : message;
        const got = verifySignature({ keySpec, spki, algorithm, messageType, message: m, signature });
        checked++;
        if (got !== want) failures.push(`tc${t.tcId} ${messageType} (${t.comment}): got ${got}`);
      }
    }
  }
  return { checked, failures };
}

describe('Wycheproof ECDSA (DER in RAW and DIGEST mode, and raw r‖s)', () => {
  const cases: [string, EcKeySpec, SigningAlgorithm, string][] = [
    ['ecdsa_secp256r1_sha256_test.json', 'ECC_NIST_P256', 'ECDSA_SHA_256', 'SHA-256'],
    ['ecdsa_secp384r1_sha384_test.json', 'ECC_NIST_P384', 'ECDSA_SHA_384', 'SHA-384'],
    ['ecdsa_secp256k1_sha256_test.json', 'ECC_SECG_P256K1', 'ECDSA_SHA_256', 'SHA-256'],
  ];
  for (const [file, keySpec, algorithm, sha] of cases) {
    it(file, () => {
      const groups = wycheproof(file);
      for (const g of groups) expect(g.sha).toBe(sha);
      const spkiFor = (g: WycheproofGroup) => {
        const spki = spkiFromRawPublicKey(keySpec, hex(g.publicKey.uncompressed!));
        expect(toHex(spki)).toBe(g.publicKeyDer); // our SPKI builder matches Wycheproof's DER
        return spki;
      };
      // The ECDSA files have no 'acceptable' cases; high-s signatures are 'valid' there, and
      // must be here too (KMS does not enforce low s).
      const { checked, failures } = runVectors(groups, keySpec, algorithm, spkiFor, (t) => t.result === 'valid');
      expect(failures).toEqual([]);
      expect(checked).toBe(2 * groups.reduce((n, g) => n + g.tests.length, 0));

      // raw r‖s: every signature our strict DER parser accepts must verify in raw form exactly
      // as it did in DER (validity is then a property of (r, s) alone); valid ones must parse.
      const rawFailures: number[] = [];
      let converted = 0;
      for (const g of groups) {
        const spki = spkiFor(g);
        for (const t of g.tests) {
          let raw: Uint8Array;
          try {
            raw = ecdsaDerToRaw(keySpec, hex(t.sig));
          } catch (e) {
            expect(e).toBeInstanceOf(VerifyError);
            if (t.result === 'valid') rawFailures.push(t.tcId);
            continue;
          }
          converted++;
          expect(toHex(ecdsaRawToDer(keySpec, raw))).toBe(t.sig);
          const ok = verifySignature({
            keySpec,
            spki,
            algorithm,
            messageType: 'RAW',
            message: hex(t.msg),
            signature: raw,
            signatureFormat: 'raw',
          });
          if (ok !== (t.result === 'valid')) rawFailures.push(t.tcId);
        }
      }
      expect(rawFailures).toEqual([]);
      expect(converted).toBeGreaterThan(100);
    });
  }
});

describe('Wycheproof Ed25519', () => {
  it('ed25519_test.json (RAW only: ED25519_SHA_512 has no DIGEST form)', () => {
    const groups = wycheproof('ed25519_test.json');
    const spkiFor = (g: WycheproofGroup) => {
      const spki = spkiFromRawPublicKey('ECC_NIST_EDWARDS25519', hex(g.publicKey.pk!));
      expect(toHex(spki)).toBe(g.publicKeyDer);
      return spki;
    };
    // No 'acceptable' cases in this file.
    const { checked, failures } = runVectors(
      groups,
      'ECC_NIST_EDWARDS25519',
      'ED25519_SHA_512',
      spkiFor,
      (t) => t.result === 'valid',
    );
    expect(failures).toEqual([]);
    expect(checked).toBe(groups.reduce((n, g) => n + g.tests.length, 0));
  });
});

describe('Wycheproof RSA', () => {
  const rsaSpki = (g: WycheproofGroup) => {
    const n = BigInt('0x' + g.publicKey.modulus!);
    const e = BigInt('0x' + g.publicKey.publicExponent!);
    const spki = spkiFromRsaPublicKey(n, e);
    expect(toHex(spki)).toBe(g.publicKeyDer);
    return spki;
  };

  it('rsa_signature_2048_sha256_test.json (PKCS#1 v1.5, RAW and DIGEST)', () => {
    const groups = wycheproof('rsa_signature_2048_sha256_test.json');
    // 'acceptable' appears once, flagged MissingNull: a DigestInfo without the NULL parameters.
    // We reject it: KMS emits the NULL form, RFC 8017 defines only that encoding, strict
    // verifiers (BoringSSL) reject the other, and verify-before-release must not pass a
    // signature that some relying parties would refuse. Verifying by re-encoding (§8.2.2)
    // gives this for free.
    const expectValid = (t: WycheproofTest) => {
      if (t.result === 'acceptable') expect(t.flags).toEqual(['MissingNull']);
      return t.result === 'valid';
    };
    const { checked, failures } = runVectors(groups, 'RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256', rsaSpki, expectValid);
    expect(failures).toEqual([]);
    expect(checked).toBe(2 * 259);
  });

  it('rsa_pss_2048_sha256_mgf1_32_test.json (PSS, salt = 32 = hLen, RAW and DIGEST)', () => {
    const groups = wycheproof('rsa_pss_2048_sha256_mgf1_32_test.json');
    for (const g of groups) {
      expect([g.sha, g.mgfSha, Number(g.sLen)]).toEqual(['SHA-256', 'SHA-256', 32]);
    }
    const { checked, failures } = runVectors(groups, 'RSA_2048', 'RSASSA_PSS_SHA_256', rsaSpki, (t) => {
      expect(t.result).not.toBe('acceptable'); // none in this file
      return t.result === 'valid';
    });
    expect(failures).toEqual([]);
    expect(checked).toBe(2 * 108);
  });
});

// ---- round trips with signatures made by node:crypto and noble --------------------------

const MSG = utf8('verify before release');
const RSA_BITS: Record<RsaKeySpec, number> = { RSA_2048: 2048, RSA_3072: 3072, RSA_4096: 4096 };
const NODE_HASH = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' } as const;

function expectRoundTrip(base: Omit<VerifyParams, 'messageType' | 'message'> & { algorithm: SigningAlgorithm }, message = MSG) {
  const info = ALGORITHM_INFO[base.algorithm];
  for (const messageType of info.messageTypes) {
    const m = messageType === 'DIGEST' ? HASHES[info.hash](message) : message;
    const p = { ...base, messageType, message: m };
    expect(verifySignature(p), `${base.algorithm} ${messageType}`).toBe(true);
    expect(verifySignature({ ...p, message: flip(m) }), 'tampered message').toBe(false);
    expect(verifySignature({ ...p, signature: flip(p.signature, p.signature.length - 1) }), 'tampered sig').toBe(false);
    expect(verifySignature({ ...p, signature: flip(p.signature, 7) }), 'tampered sig').toBe(false);
  }
}

describe('RSA round trips (node:crypto signs)', () => {
  for (const keySpec of ['RSA_2048', 'RSA_3072', 'RSA_4096'] as const) {
    it(keySpec, () => {
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: RSA_BITS[keySpec] });
      const spki = spkiOf(publicKey);
      const other = spkiOf(generateKeyPairSync('rsa', { modulusLength: RSA_BITS[keySpec] }).publicKey);
      for (const algorithm of SIGNING_ALGORITHMS_BY_SPEC[keySpec]) {
        const info = ALGORITHM_INFO[algorithm];
        const pss = info.scheme === 'RSASSA_PSS';
        const sig = (saltLength: number) =>
          Uint8Array.from(
            nodeSign(NODE_HASH[info.hash], MSG, {
              key: privateKey,
              padding: pss ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING,
              saltLength,
            }),
          );
        const signature = sig(constants.RSA_PSS_SALTLEN_DIGEST);
        expectRoundTrip({ keySpec, spki, algorithm, signature });
        const base = { keySpec, algorithm, messageType: 'RAW' as const, message: MSG, signature };
        expect(verifySignature({ ...base, spki: other }), 'other key').toBe(false);
        // the same signature under the other padding or another hash must fail
        for (const alt of SIGNING_ALGORITHMS_BY_SPEC[keySpec].filter((a) => a !== algorithm)) {
          expect(verifySignature({ ...base, spki, algorithm: alt }), `${algorithm} as ${alt}`).toBe(false);
        }
        // KMS's PSS salt is exactly hLen; OpenSSL's default (maximal salt) is not accepted.
        if (pss) expect(verifySignature({ ...base, spki, signature: sig(constants.RSA_PSS_SALTLEN_MAX_SIGN) })).toBe(false);
        // a leading zero byte, or a byte dropped, changes the length: rejected
        expect(verifySignature({ ...base, spki, signature: Uint8Array.from([0, ...signature]) })).toBe(false);
        expect(verifySignature({ ...base, spki, signature: signature.subarray(1) })).toBe(false);
      }
      // signature value ≥ n: the modulus itself, and all ones
      const parsed = parseSpki(spki);
      if (parsed.kind !== 'rsa') throw new Error('expected RSA');
      const n = hex(parsed.n.toString(16));
      const base = { keySpec, spki, algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' as const, messageType: 'RAW' as const, message: MSG };
      expect(verifySignature({ ...base, signature: n })).toBe(false);
      expect(verifySignature({ ...base, signature: new Uint8Array(n.length).fill(0xff) })).toBe(false);
    });
  }
});

describe('RSA encodings crafted with the raw private-key operation', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = spkiOf(publicKey);
  // s = EM^d mod n: a "signature" over any representative we choose
  const rawSign = (em: Uint8Array) =>
    Uint8Array.from(privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, em));
  const mHash = sha256(MSG);
  const base = { keySpec: 'RSA_2048' as const, spki, messageType: 'DIGEST' as const, message: mHash };
  const mgf1 = (seed: Uint8Array, len: number) => {
    const out: number[] = [];
    for (let c = 0; out.length < len; c++) out.push(...sha256(Uint8Array.from([...seed, 0, 0, 0, c])));
    return out.slice(0, len);
  };
  // EMSA-PSS-ENCODE for emBits = 2047, with knobs to break one rule at a time
  type PssKnobs = { saltLen?: number; saltByte?: number; trailer?: number; topBit?: boolean; separator?: number };
  const pssEm = (o: PssKnobs = {}) => {
    const salt = new Uint8Array(o.saltLen ?? 32).fill(o.saltByte ?? 0xa5);
    const h = sha256(Uint8Array.from([...new Uint8Array(8), ...mHash, ...salt]));
    const db = [...new Uint8Array(256 - salt.length - 32 - 2), o.separator ?? 1, ...salt];
    const masked = Uint8Array.from(mgf1(h, db.length).map((m, i) => m ^ db[i]!));
    masked[0] = (masked[0]! & 0x7f) | (o.topBit ? 0x80 : 0);
    return Uint8Array.from([...masked, ...h, o.trailer ?? 0xbc]);
  };

  it('PSS: each rule of EMSA-PSS-VERIFY is enforced', () => {
    const v = (em: Uint8Array) => verifySignature({ ...base, algorithm: 'RSASSA_PSS_SHA_256', signature: rawSign(em) });
    expect(v(pssEm())).toBe(true);
    // EM with its (excluded) top bit set: vary the salt until that EM is below n, so it is signable
    const parsed = parseSpki(spki);
    if (parsed.kind !== 'rsa') throw new Error('expected RSA');
    const topBitEms = Array.from({ length: 256 }, (_, saltByte) => pssEm({ topBit: true, saltByte }));
    const topBit = topBitEms.find((em) => BigInt('0x' + toHex(em)) < parsed.n);
    expect(topBit).toBeDefined();
    expect(v(topBit!)).toBe(false);
    expect(v(pssEm({ trailer: 0xbd }))).toBe(false);
    expect(v(pssEm({ separator: 2 }))).toBe(false);
    expect(v(pssEm({ saltLen: 31 }))).toBe(false);
    expect(v(pssEm({ saltLen: 33 }))).toBe(false);
    expect(v(pssEm({ saltLen: 0 }))).toBe(false);
  });

  it('PKCS#1 v1.5: only the exact DER DigestInfo encoding is accepted', () => {
    const t = [...hex('3031300d060960864801650304020105000420'), ...mHash];
    const em = (block: number[], body = t) => Uint8Array.from([0, 1, ...block, 0, ...body]);
    const v = (e: Uint8Array) => verifySignature({ ...base, algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', signature: rawSign(e) });
    const ps = new Array(256 - t.length - 3).fill(0xff);
    expect(v(em(ps))).toBe(true);
    expect(v(Uint8Array.from([0, 2, ...ps, 0, ...t]))).toBe(false); // block type 2
    expect(v(em([...ps.slice(1), 0xfe]))).toBe(false); // padding byte not 0xff
    // DigestInfo with the hash OID's NULL dropped, padding one longer: Wycheproof's MissingNull
    const noNull = [...hex('302f300b06096086480165030402010420'), ...mHash];
    expect(v(em(new Array(256 - noNull.length - 3).fill(0xff), noNull))).toBe(false);
  });

  it('a valid signature with a leading zero byte must keep it (length = k)', () => {
    let sig = new Uint8Array();
    let message = MSG;
    for (let i = 0; sig[0] !== 0; i++) {
      message = utf8(`message ${i}`);
      sig = Uint8Array.from(nodeSign('sha256', message, privateKey));
    }
    const p = { ...base, algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' as const, messageType: 'RAW' as const, message };
    expect(verifySignature({ ...p, signature: sig })).toBe(true);
    expect(verifySignature({ ...p, signature: sig.subarray(1) })).toBe(false);
  });
});

describe('ECDSA round trips', () => {
  const NODE_CURVE: Record<EcKeySpec, string> = {
    ECC_NIST_P256: 'prime256v1',
    ECC_NIST_P384: 'secp384r1',
    ECC_NIST_P521: 'secp521r1',
    ECC_SECG_P256K1: 'secp256k1',
  };
  for (const keySpec of Object.keys(NODE_CURVE) as EcKeySpec[]) {
    const algorithm = SIGNING_ALGORITHMS_BY_SPEC[keySpec][0]!;
    const hash = ALGORITHM_INFO[algorithm].hash;

    it(`${keySpec}: node:crypto signs (DER and IEEE P1363)`, () => {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: NODE_CURVE[keySpec] });
      const spki = spkiOf(publicKey);
      const der = Uint8Array.from(nodeSign(NODE_HASH[hash], MSG, privateKey));
      const raw = Uint8Array.from(nodeSign(NODE_HASH[hash], MSG, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
      expectRoundTrip({ keySpec, spki, algorithm, signature: der });
      expectRoundTrip({ keySpec, spki, algorithm, signature: raw, signatureFormat: 'raw' });
      // each encoding is rejected where the other is expected
      const base = { keySpec, spki, algorithm, messageType: 'RAW' as const, message: MSG };
      expect(verifySignature({ ...base, signature: raw })).toBe(false);
      expect(verifySignature({ ...base, signature: der, signatureFormat: 'raw' })).toBe(false);
      expect(toHex(ecdsaDerToRaw(keySpec, ecdsaRawToDer(keySpec, raw)))).toBe(toHex(raw));
      expect(verifySignature({ ...base, signature: ecdsaDerToRaw(keySpec, der), signatureFormat: 'raw' })).toBe(true);
    });

    it(`${keySpec}: noble signs; high-s is valid, as in KMS`, () => {
      const curve = EC_CURVES[keySpec];
      const { secretKey, publicKey } = curve.keygen();
      const spki = spkiFromRawPublicKey(keySpec, publicKey);
      const compact = curve.sign(HASHES[hash](MSG), secretKey, { prehash: false, lowS: true });
      expectRoundTrip({ keySpec, spki, algorithm, signature: compact, signatureFormat: 'raw' });
      const low = curve.Signature.fromBytes(compact);
      const high = new curve.Signature(low.r, curve.Point.Fn.neg(low.s));
      expect(high.hasHighS()).toBe(true);
      expectRoundTrip({ keySpec, spki, algorithm, signature: high.toBytes('der') });
      expectRoundTrip({ keySpec, spki, algorithm, signature: high.toBytes('compact'), signatureFormat: 'raw' });
    });
  }

  it('a key of another curve or spec does not verify', () => {
    const k1 = EC_CURVES.ECC_SECG_P256K1.keygen();
    const sig = EC_CURVES.ECC_SECG_P256K1.sign(MSG, k1.secretKey, { format: 'der' });
    const base = { algorithm: 'ECDSA_SHA_256' as const, messageType: 'RAW' as const, message: MSG, signature: sig };
    const spki = spkiFromRawPublicKey('ECC_SECG_P256K1', k1.publicKey);
    expect(verifySignature({ ...base, keySpec: 'ECC_SECG_P256K1', spki })).toBe(true);
    // the same SPKI declared as P-256: the key does not match the spec
    expect(verifySignature({ ...base, keySpec: 'ECC_NIST_P256', spki })).toBe(false);
    const p384 = spkiFromRawPublicKey('ECC_NIST_P384', EC_CURVES.ECC_NIST_P384.keygen().publicKey);
    expect(verifySignature({ ...base, keySpec: 'ECC_NIST_P256', spki: p384 })).toBe(false);
  });
});

describe('Ed25519 and Ed25519ph round trips', () => {
  it('pure Ed25519 from node:crypto and noble (RAW)', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const spki = spkiOf(publicKey);
    const keySpec = 'ECC_NIST_EDWARDS25519' as const;
    expectRoundTrip({ keySpec, spki, algorithm: 'ED25519_SHA_512', signature: Uint8Array.from(nodeSign(null, MSG, privateKey)) });
    const k = ed25519.keygen();
    expectRoundTrip({
      keySpec,
      spki: spkiFromRawPublicKey(keySpec, k.publicKey),
      algorithm: 'ED25519_SHA_512',
      signature: ed25519.sign(MSG, k.secretKey),
    });
  });

  it('Ed25519ph over a SHA-512 digest (noble signs), and the two are not interchangeable', () => {
    const keySpec = 'ECC_NIST_EDWARDS25519' as const;
    const k = ed25519.keygen();
    const spki = spkiFromRawPublicKey(keySpec, k.publicKey);
    const ph = ed25519ph.sign(MSG, k.secretKey);
    expectRoundTrip({ keySpec, spki, algorithm: 'ED25519_PH_SHA_512', signature: ph });
    const pure = ed25519.sign(MSG, k.secretKey);
    expect(verifySignature({ keySpec, spki, algorithm: 'ED25519_PH_SHA_512', messageType: 'DIGEST', message: sha512(MSG), signature: pure })).toBe(false);
    expect(verifySignature({ keySpec, spki, algorithm: 'ED25519_SHA_512', messageType: 'RAW', message: MSG, signature: ph })).toBe(false);
  });

  it('RFC 8032 §7.3 Ed25519ph test vector ("abc")', () => {
    const sk = hex('833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42');
    const pk = hex('ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf');
    const sig = hex(
      '98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41' +
        '31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406',
    );
    expect(toHex(ed25519ph.getPublicKey(sk))).toBe(toHex(pk));
    expect(toHex(ed25519ph.sign(utf8('abc'), sk))).toBe(toHex(sig));
    const p = {
      keySpec: 'ECC_NIST_EDWARDS25519' as const,
      spki: spkiFromRawPublicKey('ECC_NIST_EDWARDS25519', pk),
      algorithm: 'ED25519_PH_SHA_512' as const,
      messageType: 'DIGEST' as const,
      message: sha512(utf8('abc')),
      signature: sig,
    };
    expect(verifySignature(p)).toBe(true);
    expect(verifySignature({ ...p, message: sha512(utf8('abd')) })).toBe(false);
  });
});

// ---- SPKI --------------------------------------------------------------------------------

describe('SPKI build and parse', () => {
  it('EC specs: node:crypto SPKI ⇄ raw point, compressed input normalised, bad points rejected', () => {
    const nodeCurve = { ECC_NIST_P256: 'prime256v1', ECC_NIST_P384: 'secp384r1', ECC_NIST_P521: 'secp521r1', ECC_SECG_P256K1: 'secp256k1' };
    for (const keySpec of Object.keys(EC_CURVES) as EcKeySpec[]) {
      const spki = spkiOf(generateKeyPairSync('ec', { namedCurve: nodeCurve[keySpec] }).publicKey);
      const parsed = parseSpki(spki);
      expect(parsed.kind === 'ec' && parsed.keySpec).toBe(keySpec);
      const point = rawPublicKeyFromSpki(keySpec, spki);
      expect(point[0]).toBe(0x04);
      expect(toHex(spkiFromRawPublicKey(keySpec, point))).toBe(toHex(spki));
      const compressed = EC_CURVES[keySpec].Point.fromBytes(point).toBytes(true);
      expect(toHex(spkiFromRawPublicKey(keySpec, compressed))).toBe(toHex(spki));
      // off-curve point
      expect(() => spkiFromRawPublicKey(keySpec, flip(point, point.length - 1))).toThrow(VerifyError);
      const offCurve = Uint8Array.from(spki);
      offCurve[offCurve.length - 1]! ^= 1;
      expect(() => parseSpki(offCurve)).toThrow(VerifyError);
      // trailing byte, wrong spec
      expect(() => parseSpki(Uint8Array.from([...spki, 0]))).toThrow(VerifyError);
      const otherSpec = keySpec === 'ECC_NIST_P256' ? 'ECC_NIST_P384' : 'ECC_NIST_P256';
      expect(() => rawPublicKeyFromSpki(otherSpec, spki)).toThrow(VerifyError);
    }
  });

  it('EC SPKI with a compressed point or BER length is rejected (one canonical form)', () => {
    const point = EC_CURVES.ECC_NIST_P256.keygen().publicKey; // noble default: compressed
    expect(point.length).toBe(33);
    const compressedSpki = hex('3039301306072a8648ce3d020106082a8648ce3d030107032200' + toHex(point));
    expect(() => parseSpki(compressedSpki)).toThrow(VerifyError);
    const spki = spkiFromRawPublicKey('ECC_NIST_P256', point);
    expect(toHex(spki.subarray(0, 2))).toBe('3059');
    const ber = Uint8Array.from([0x30, 0x81, ...spki.subarray(1)]); // long form for a short length
    expect(() => parseSpki(ber)).toThrow(VerifyError);
  });

  it('Ed25519: node:crypto SPKI ⇄ 32-byte key; non-canonical encodings rejected', () => {
    const spki = spkiOf(generateKeyPairSync('ed25519').publicKey);
    const pk = rawPublicKeyFromSpki('ECC_NIST_EDWARDS25519', spki);
    expect(pk.length).toBe(32);
    expect(toHex(spkiFromRawPublicKey('ECC_NIST_EDWARDS25519', pk))).toBe(toHex(spki));
    // y = p (2^255 - 19) is a non-canonical encoding of y = 0
    const yEqualsP = hex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
    expect(() => spkiFromRawPublicKey('ECC_NIST_EDWARDS25519', yEqualsP)).toThrow(VerifyError);
    expect(() => spkiFromRawPublicKey('ECC_NIST_EDWARDS25519', pk.subarray(1))).toThrow(VerifyError);
    const identity = hex('01' + '00'.repeat(31));
    expect(() => spkiFromRawPublicKey('ECC_NIST_EDWARDS25519', identity)).toThrow(VerifyError);
  });

  it('RSA: (n, e) ⇄ node:crypto SPKI for every RSA spec; other sizes and RSA-PSS keys rejected', () => {
    for (const keySpec of ['RSA_2048', 'RSA_3072', 'RSA_4096'] as const) {
      const spki = spkiOf(generateKeyPairSync('rsa', { modulusLength: RSA_BITS[keySpec] }).publicKey);
      const parsed = parseSpki(spki);
      if (parsed.kind !== 'rsa') throw new Error('expected RSA');
      expect([parsed.keySpec, parsed.modulusBits, parsed.e]).toEqual([keySpec, RSA_BITS[keySpec], 65537n]);
      expect(toHex(spkiFromRsaPublicKey(parsed.n, parsed.e))).toBe(toHex(spki));
      expect(() => rawPublicKeyFromSpki(keySpec, spki)).toThrow(VerifyError);
    }
    const small = spkiOf(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey);
    expect(() => parseSpki(small)).toThrow(VerifyError);
    const pss = spkiOf(generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey);
    expect(() => parseSpki(pss)).toThrow(VerifyError);
    expect(createPublicKey({ key: Buffer.from(pss), format: 'der', type: 'spki' }).asymmetricKeyType).toBe('rsa-pss');
  });

  it('a parsed SPKI is remembered, but no caller can change what the next one gets', () => {
    const spki = spkiFromRawPublicKey('ECC_NIST_P256', EC_CURVES.ECC_NIST_P256.keygen().publicKey);
    const first = parseSpki(spki);
    if (first.kind !== 'ec') throw new Error('expected EC');
    const point = toHex(first.point);
    first.point.fill(0);
    const again = parseSpki(Uint8Array.from(spki));
    expect(again.kind === 'ec' && toHex(again.point)).toBe(point);
    const ed = spkiFromRawPublicKey('ECC_NIST_EDWARDS25519', ed25519.keygen().publicKey);
    const edFirst = parseSpki(ed);
    if (edFirst.kind !== 'ed25519') throw new Error('expected Ed25519');
    const pk = toHex(edFirst.publicKey);
    edFirst.publicKey.fill(0);
    expect(toHex(rawPublicKeyFromSpki('ECC_NIST_EDWARDS25519', ed))).toBe(pk);
  });

  it('every key spec has a parseable SPKI whose detected spec is that spec', () => {
    const seen = new Set<KeySpec>();
    for (const keySpec of KEY_SPECS) {
      const spki =
        keySpec === 'ECC_NIST_EDWARDS25519'
          ? spkiFromRawPublicKey(keySpec, ed25519.keygen().publicKey)
          : keySpec in EC_CURVES
            ? spkiFromRawPublicKey(keySpec, EC_CURVES[keySpec as EcKeySpec].keygen().publicKey)
            : spkiOf(generateKeyPairSync('rsa', { modulusLength: RSA_BITS[keySpec as RsaKeySpec] }).publicKey);
      seen.add(parseSpki(spki).keySpec);
    }
    expect([...seen].sort()).toEqual([...KEY_SPECS].sort());
  });
});

// ---- request validation and malformed input -------------------------------------------------

describe('request checks throw VerifyError; malformed keys and signatures return false', () => {
  const k = ed25519.keygen();
  const edSpki = spkiFromRawPublicKey('ECC_NIST_EDWARDS25519', k.publicKey);
  const p256 = EC_CURVES.ECC_NIST_P256.keygen();
  const p256Spki = spkiFromRawPublicKey('ECC_NIST_P256', p256.publicKey);
  const p256Sig = EC_CURVES.ECC_NIST_P256.sign(MSG, p256.secretKey, { format: 'der' });
  const good: VerifyParams = {
    keySpec: 'ECC_NIST_P256',
    spki: p256Spki,
    algorithm: 'ECDSA_SHA_256',
    messageType: 'RAW',
    message: MSG,
    signature: p256Sig,
  };
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e instanceof VerifyError ? e.code : `not a VerifyError: ${String(e)}`;
    }
    return 'did not throw';
  };

  it('the spec → algorithm table is the AWS one', () => {
    expect(SIGNING_ALGORITHMS_BY_SPEC.ECC_NIST_P256).toEqual(['ECDSA_SHA_256']);
    expect(SIGNING_ALGORITHMS_BY_SPEC.ECC_SECG_P256K1).toEqual(['ECDSA_SHA_256']);
    expect(SIGNING_ALGORITHMS_BY_SPEC.ECC_NIST_P384).toEqual(['ECDSA_SHA_384']);
    expect(SIGNING_ALGORITHMS_BY_SPEC.ECC_NIST_EDWARDS25519).toEqual(['ED25519_SHA_512', 'ED25519_PH_SHA_512']);
    expect(SIGNING_ALGORITHMS_BY_SPEC.RSA_4096).toHaveLength(6);
    expect(SIGNING_ALGORITHMS_BY_SPEC.ECC_NIST_P521).toEqual(['ECDSA_SHA_512']);
    for (const a of SIGNING_ALGORITHMS) {
      const info = ALGORITHM_INFO[a];
      expect(HASHES[info.hash](new Uint8Array()).length).toBe(info.digestLength);
    }
  });

  it('bad combinations throw typed errors', () => {
    expect(verifySignature(good)).toBe(true);
    expect(code(() => verifySignature({ ...good, algorithm: 'ECDSA_SHA_384' }))).toBe('algorithm-not-for-key-spec');
    expect(code(() => verifySignature({ ...good, algorithm: 'RSASSA_PSS_SHA_256' }))).toBe('algorithm-not-for-key-spec');
    expect(code(() => verifySignature({ ...good, algorithm: 'ECDSA_SHA_512' }))).toBe('algorithm-not-for-key-spec');
    expect(code(() => verifySignature({ ...good, algorithm: 'SM2DSA' as SigningAlgorithm }))).toBe('unknown-algorithm');
    expect(code(() => verifySignature({ ...good, keySpec: 'SM2' as KeySpec }))).toBe('unknown-key-spec');
    expect(code(() => verifySignature({ ...good, messageType: 'DIGEST' }))).toBe('bad-digest-length');
    expect(code(() => verifySignature({ ...good, messageType: 'EXTERNAL_MU' as 'RAW' }))).toBe('message-type-not-allowed');
    expect(code(() => verifySignature({ ...good, message: 'text' as unknown as Uint8Array }))).toBe('bad-parameter');
    expect(code(() => verifySignature({ ...good, signatureFormat: 'pem' as 'der' }))).toBe('bad-parameter');
    const ed = { keySpec: 'ECC_NIST_EDWARDS25519' as const, spki: edSpki, message: sha512(MSG), signature: new Uint8Array(64) };
    expect(code(() => verifySignature({ ...ed, algorithm: 'ED25519_SHA_512', messageType: 'DIGEST' }))).toBe('message-type-not-allowed');
    expect(code(() => verifySignature({ ...ed, algorithm: 'ED25519_PH_SHA_512', messageType: 'RAW' }))).toBe('message-type-not-allowed');
    expect(code(() => checkSigningRequest('RSA_2048', 'RSASSA_PSS_SHA_512', 'DIGEST', sha256(MSG)))).toBe('bad-digest-length');
    expect(checkSigningRequest('RSA_2048', 'RSASSA_PSS_SHA_512', 'DIGEST', sha512(MSG)).hash).toBe('SHA-512');
  });

  it('malformed keys and signatures never throw', () => {
    const rsaSpki = spkiOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey);
    const junk = [new Uint8Array(), new Uint8Array(1), new Uint8Array(64).fill(0xff), Uint8Array.of(0x30, 0x80, 0, 0)];
    for (const bytes of junk) {
      expect(verifySignature({ ...good, spki: bytes })).toBe(false);
      expect(verifySignature({ ...good, signature: bytes })).toBe(false);
      expect(verifySignature({ ...good, signature: bytes, signatureFormat: 'raw' })).toBe(false);
      for (const keySpec of ['RSA_2048', 'ECC_NIST_EDWARDS25519'] as const) {
        const algorithm = SIGNING_ALGORITHMS_BY_SPEC[keySpec][0]!;
        expect(verifySignature({ keySpec, algorithm, messageType: 'RAW', message: MSG, spki: bytes, signature: bytes })).toBe(false);
        const spki = keySpec === 'ECC_NIST_EDWARDS25519' ? edSpki : rsaSpki;
        expect(verifySignature({ keySpec, algorithm, messageType: 'RAW', message: MSG, spki, signature: bytes })).toBe(false);
      }
    }
    // strict DER: trailing byte, long-form length, and a padded INTEGER all fail
    expect(verifySignature({ ...good, signature: Uint8Array.from([...p256Sig, 0]) })).toBe(false);
    const ber = Uint8Array.from([0x30, 0x81, ...p256Sig.subarray(1)]);
    expect(verifySignature({ ...good, signature: ber })).toBe(false);
    expect(() => ecdsaDerToRaw('ECC_NIST_P256', ber)).toThrow(VerifyError);
    const { r, s } = EC_CURVES.ECC_NIST_P256.Signature.fromBytes(p256Sig, 'der');
    const int = (v: bigint) => {
      const b = hex(v.toString(16).padStart(64, '0'));
      return [0x02, b.length + 2, 0, 0, ...b]; // two leading zeros: never minimal
    };
    const rs = [...int(r), ...int(s)];
    expect(verifySignature({ ...good, signature: Uint8Array.from([0x30, rs.length, ...rs]) })).toBe(false);
    // r = 0 or s = 0 in raw form
    expect(() => ecdsaRawToDer('ECC_NIST_P256', new Uint8Array(64))).toThrow(VerifyError);
    expect(verifySignature({ ...good, signature: new Uint8Array(64), signatureFormat: 'raw' })).toBe(false);
  });
});
