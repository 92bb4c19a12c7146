import {
  constants,
  createHash,
  createPublicKey,
  createVerify,
  generateKeyPairSync,
  publicDecrypt,
  publicEncrypt,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Message } from '../../signers/protocols/common.js';
import { toHex, type PartyId } from '../../contract/bytes.js';
import { bigIntToBytes, bytesToBigInt } from '../../signers/protocols/integers.js';
import { combinePartials, rsaCombine, rsaDecryptRequest, rsaSignRequest } from '../../signers/protocols/rsa/combine.js';
import { dealRsa, encodeDeal, type RsaDeal } from '../../signers/protocols/rsa/deal.js';
import { delta, parseKeyShare, parsePublicParams, type RsaKeyShare } from '../../signers/protocols/rsa/key.js';
import { modPow } from '../../signers/protocols/rsa/modpow.js';
import { DecodeError, type SignHash } from '../../signers/protocols/rsa/padding.js';
import { partialForInput, rsaPartial, type RsaPartialPayload } from '../../signers/protocols/rsa/partial.js';
import { requestInput, type RsaRequest } from '../../signers/protocols/rsa/request.js';
import { seededRng } from '../helpers/rng.js';
import { expectProtocolError } from '../helpers/protocol.js';

const rng = seededRng('rsa-threshold');

interface Fixture {
  deal: RsaDeal;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

function importedDeal(bits: number, participants: PartyId[], threshold: number): Fixture {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const pkcs8Pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const deal = dealRsa({ pkcs8Pem, participants, threshold }, seededRng(`deal-${bits}-${threshold}-${participants.length}`));
  const publicKey = createPublicKey({ key: Buffer.from(deal.publicKey.spki), format: 'der', type: 'spki' });
  return { deal, privateKey, publicKey };
}

const share = (deal: RsaDeal, id: PartyId): RsaKeyShare => deal.shares.find((s) => s.id === id)!;
const wire = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T; // everything crosses a network as JSON

function partials(deal: RsaDeal, req: RsaRequest, ids: PartyId[]): Message<RsaPartialPayload>[] {
  return ids.map((id) => wire(rsaPartial(deal.params, share(deal, id), wire(req), rng, true)));
}

function signWith(f: Fixture, ids: PartyId[], scheme: 'pkcs1v15' | 'pss', hash: SignHash, data: Buffer, session = 'sess-sign') {
  const digest = createHash(hash).update(data).digest();
  const req = rsaSignRequest(f.deal.params, { session, scheme, hash, digest }, rng);
  const msgs = partials(f.deal, req, ids);
  return { req, msgs, result: rsaCombine(f.deal.params, wire(req), msgs) };
}

function verifies(f: Fixture, scheme: 'pkcs1v15' | 'pss', hash: SignHash, data: Buffer, sig: Uint8Array): boolean {
  const padding = scheme === 'pss' ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
  const saltLength = createHash(hash).digest().length;
  return nodeVerify(hash, data, { key: f.publicKey, padding, saltLength }, sig);
}


const k2048: Fixture = importedDeal(2048, [1, 2, 3], 2);

describe('threshold RSA signing (2048, 2-of-3)', () => {
  const data = Buffer.from('threshold RSA signs this');

  it('PKCS#1 v1.5 and PSS with SHA-256/384/512 verify with node:crypto', () => {
    for (const hash of ['sha256', 'sha384', 'sha512'] as const) {
      for (const scheme of ['pkcs1v15', 'pss'] as const) {
        const { result } = signWith(k2048, [1, 3], scheme, hash, data);
        expect(result.output.length).toBe(256);
        expect(verifies(k2048, scheme, hash, data, result.output)).toBe(true);
        expect(verifies(k2048, scheme, hash, Buffer.from('something else'), result.output)).toBe(false);
      }
    }
  });

  it('PKCS#1 v1.5 equals the deterministic signature of the whole key', () => {
    const { result } = signWith(k2048, [2, 3], 'pkcs1v15', 'sha256', data);
    expect(Buffer.from(result.output)).toEqual(nodeSign('sha256', data, k2048.privateKey));
  });

  it('every subset of size t gives the same PKCS#1 v1.5 signature', () => {
    const sigs = [
      [1, 2],
      [1, 3],
      [2, 3],
      [3, 2, 1],
    ].map((ids) => toHex(signWith(k2048, ids, 'pkcs1v15', 'sha256', data).result.output));
    expect(new Set(sigs).size).toBe(1);
  });

  it('with t+1 partials it combines the t with the lowest identifiers', () => {
    const { result } = signWith(k2048, [3, 1, 2], 'pss', 'sha256', data);
    expect(result.signers).toEqual([1, 2]);
    expect(result.faults).toEqual([]);
  });

  it('a combined result that fails y^e ≡ x is never released', () => {
    // Proofs do not involve e; with a wrong e every partial verifies but the root is wrong.
    const digest = createHash('sha256').update(data).digest();
    const req = rsaSignRequest(k2048.deal.params, { session: 's', scheme: 'pkcs1v15', hash: 'sha256', digest }, rng);
    const wrongE = { ...k2048.deal.params, e: 65539n };
    expectProtocolError(() => rsaCombine(wrongE, req, partials(k2048.deal, req, [1, 2])), 'bad-partial');
  });

  it('t−1 partials cannot produce a valid signature', () => {
    const digest = createHash('sha256').update(data).digest();
    const req = rsaSignRequest(k2048.deal.params, { session: 's', scheme: 'pkcs1v15', hash: 'sha256', digest }, rng);
    const [m1] = partials(k2048.deal, req, [1]);
    expectProtocolError(() => rsaCombine(k2048.deal.params, req, [m1]), 'missing');
    // Even forcing the combination over the single partial gives a wrong root.
    const x = requestInput(k2048.deal.params, req);
    const y = combinePartials(k2048.deal.params, x, new Map([[1, bytesToBigInt(Buffer.from(m1!.payload.xi, 'hex'))]]));
    expect(modPow(y, k2048.deal.params.e, k2048.deal.params.n)).not.toBe(x);
    expect(verifies(k2048, 'pkcs1v15', 'sha256', data, bigIntToBytes(y, 256))).toBe(false);
  });
});

describe('threshold RSA decryption (2048, 2-of-3)', () => {
  const msg = Buffer.from('wrapped data key: 0123456789abcdef');
  const decrypt = (ciphertext: Uint8Array, padding: 'oaep-sha1' | 'oaep-sha256' | 'pkcs1v15', ids: PartyId[], label?: Uint8Array) => {
    const req = rsaDecryptRequest(k2048.deal.params, { session: 'sess-dec', padding, ciphertext, ...(label ? { label } : {}) });
    return rsaCombine(k2048.deal.params, req, partials(k2048.deal, req, ids)).output;
  };

  it('OAEP SHA-1, OAEP SHA-256 (with and without label) and PKCS#1 v1.5 round-trip with node:crypto', () => {
    const pub = k2048.publicKey;
    const oaep1 = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING }, msg);
    expect(Buffer.from(decrypt(oaep1, 'oaep-sha1', [1, 2]))).toEqual(msg);
    const oaep256 = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, msg);
    expect(Buffer.from(decrypt(oaep256, 'oaep-sha256', [2, 3]))).toEqual(msg);
    const label = Buffer.from('kms context');
    const labelled = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label }, msg);
    expect(Buffer.from(decrypt(labelled, 'oaep-sha256', [1, 3], label))).toEqual(msg);
    const v15 = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, msg);
    expect(Buffer.from(decrypt(v15, 'pkcs1v15', [3, 1]))).toEqual(msg);
  });

  it('bad padding fails with the single generic error after the result is checked', () => {
    const pub = k2048.publicKey;
    const oaep256 = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, msg);
    expect(() => decrypt(oaep256, 'oaep-sha1', [1, 2])).toThrow(DecodeError);
    expect(() => decrypt(oaep256, 'oaep-sha256', [1, 2], Buffer.from('wrong label'))).toThrow(DecodeError);
    const notType2 = new Uint8Array(256).fill(0x42);
    notType2[0] = 0;
    notType2[1] = 1;
    const raw = publicEncrypt({ key: pub, padding: constants.RSA_NO_PADDING }, notType2);
    expect(() => decrypt(raw, 'pkcs1v15', [1, 2])).toThrow(DecodeError);
  });

  it('rejects ciphertexts that are the wrong length, not reduced, or zero before any partial', () => {
    const n = k2048.deal.params.n;
    for (const ciphertext of [new Uint8Array(255).fill(1), new Uint8Array(257).fill(1), bigIntToBytes(n, 256), bigIntToBytes(n + 5n, 256), new Uint8Array(256)]) {
      expectProtocolError(() => rsaDecryptRequest(k2048.deal.params, { session: 's', padding: 'oaep-sha256', ciphertext }), 'bad-parameters');
    }
  });
});

describe('bad partials are caught and their sender named', () => {
  const data = Buffer.from('robustness');
  const digest = createHash('sha256').update(data).digest();
  const params = k2048.deal.params;
  const req = rsaSignRequest(params, { session: 'sess-bad', scheme: 'pss', hash: 'sha256', digest }, rng);
  const good = partials(k2048.deal, req, [1, 2, 3]);
  const tamper = (m: Message<RsaPartialPayload>, f: (p: RsaPartialPayload) => RsaPartialPayload): Message<RsaPartialPayload> => ({
    ...m,
    payload: f({ ...m.payload }),
  });
  const bumpHex = (h: string) => toHex(bigIntToBytes(bytesToBigInt(Buffer.from(h, 'hex')) + 1n, h.length / 2));

  it('a corrupted partial value: bad-partial naming the sender; with t others still valid it is skipped', () => {
    const bad = tamper(good[1]!, (p) => ({ ...p, xi: toHex(bigIntToBytes((bytesToBigInt(Buffer.from(p.xi, 'hex')) * 2n) % params.n, 256)) }));
    expectProtocolError(() => rsaCombine(params, req, [good[0], bad]), 'bad-partial', 2);
    const r = rsaCombine(params, req, [good[0], bad, good[2]]);
    expect(r.signers).toEqual([1, 3]);
    expect(r.faults.map((f) => [f.code, f.sender])).toEqual([['bad-partial', 2]]);
    expect(verifies(k2048, 'pss', 'sha256', data, r.output)).toBe(true);
  });

  it('proofs are checked when the combination fails: a bad proof (c or z altered) is caught then', () => {
    const badZ = tamper(good[0]!, (p) => ({ ...p, z: bumpHex(p.z!) }));
    const badC = tamper(good[2]!, (p) => ({ ...p, c: bumpHex(p.c!) }));
    // Optimistic: correct values combine to a signature that verifies, whatever their proofs say.
    expect(rsaCombine(params, req, [badZ, good[2]]).faults).toEqual([]);
    // A wrong value makes the combination fail; every proof is then checked and each bad one named.
    const wrongValue = tamper(good[1]!, (p) => ({ ...p, xi: toHex(bigIntToBytes((bytesToBigInt(Buffer.from(p.xi, 'hex')) * 3n) % params.n, 256)) }));
    expectProtocolError(() => rsaCombine(params, req, [badZ, wrongValue, good[2]]), 'bad-partial', 1);
    expectProtocolError(() => rsaCombine(params, req, [good[0], wrongValue, badC]), 'bad-partial', 2);
    expect(() => rsaCombine(params, req, [good[0], wrongValue, badC])).toThrow(/proof of correctness does not verify/);
  });

  it('partials travel without proofs; when the combination fails the coordinator needs them, then names the bad one', () => {
    const x = requestInput(params, req);
    const bare = (id: PartyId, s: bigint) => wire(partialForInput(params, { id, s }, req.session, x, rng, false));
    const ok = rsaCombine(params, req, [bare(1, share(k2048.deal, 1).s), bare(3, share(k2048.deal, 3).s)]);
    expect(ok.faults).toEqual([]);
    expect(verifies(k2048, 'pss', 'sha256', data, ok.output)).toBe(true);
    const wrong = bare(3, share(k2048.deal, 3).s + 1n);
    expectProtocolError(() => rsaCombine(params, req, [bare(1, share(k2048.deal, 1).s), wrong]), 'unproven');
    const proven = wire(partialForInput(params, { id: 3, s: share(k2048.deal, 3).s + 1n }, req.session, x, rng, true));
    expectProtocolError(() => rsaCombine(params, req, [good[0], proven]), 'bad-partial', 3);
    expectProtocolError(() => rsaCombine(params, req, [good[0], tamper(good[2]!, (p) => ({ xi: p.xi, c: p.c! }))]), 'malformed', 3);
  });

  it('a partial made with a wrong share is caught by its proof', () => {
    const x = requestInput(params, req);
    const wrong = wire(partialForInput(params, { id: 3, s: share(k2048.deal, 3).s + 1n }, req.session, x, rng, true));
    expectProtocolError(() => rsaCombine(params, req, [good[0], wrong]), 'bad-partial', 3);
  });

  it('a partial proved for another party cannot be passed off as its own', () => {
    expectProtocolError(() => rsaCombine(params, req, [good[0], { ...good[1]!, from: 3 }]), 'bad-partial', 3);
  });

  it('duplicates, wrong sessions, unknown senders and malformed payloads are rejected', () => {
    expectProtocolError(() => rsaCombine(params, req, [good[0], good[0]]), 'duplicate', 1);
    const other = rsaSignRequest(params, { session: 'sess-other', scheme: 'pss', hash: 'sha256', digest }, rng);
    const [foreign] = partials(k2048.deal, other, [2]);
    expectProtocolError(() => rsaCombine(params, req, [good[0], foreign]), 'wrong-session', 2);
    // relabelled to this session: the proof is bound to the other one (and to other x)
    expectProtocolError(() => rsaCombine(params, req, [good[0], { ...foreign!, session: req.session }]), 'bad-partial', 2);
    expectProtocolError(() => rsaCombine(params, req, [good[0], { ...good[1]!, from: 9 }]), 'unknown-sender', 9);
    expectProtocolError(() => rsaCombine(params, req, [good[0], { ...good[1]!, round: 2 }]), 'wrong-round', 2);
    expectProtocolError(() => rsaCombine(params, req, [good[0], tamper(good[1]!, (p) => ({ ...p, xi: 'zz' }))]), 'malformed', 2);
    expectProtocolError(() => rsaCombine(params, req, [good[0], tamper(good[1]!, (p) => ({ ...p, xi: p.xi.slice(2) }))]), 'bad-partial', 2);
    expectProtocolError(() => rsaCombine(params, req, [good[0], tamper(good[1]!, (p) => ({ ...p, xi: '00'.repeat(256) }))]), 'bad-partial', 2);
    expectProtocolError(() => rsaCombine(params, req, [good[0], tamper(good[1]!, (p) => ({ ...p, xi: toHex(bigIntToBytes(params.n, 256)) }))]), 'bad-partial', 2);
  });
});

describe('signers check what they are asked to sign', () => {
  const params = k2048.deal.params;
  const digest = createHash('sha256').update('genuine').digest();
  const s1 = share(k2048.deal, 1);

  it('rejects a PKCS#1 v1.5 representative that does not encode the digest', () => {
    const req = rsaSignRequest(params, { session: 's', scheme: 'pkcs1v15', hash: 'sha256', digest }, rng);
    const otherDigest = createHash('sha256').update('forged').digest();
    expectProtocolError(() => rsaPartial(params, s1, { ...req, digest: toHex(otherDigest) }, rng, true), 'bad-parameters');
    expectProtocolError(() => rsaPartial(params, s1, { ...req, hash: 'sha384' }, rng, true), 'bad-parameters');
  });

  it('raw PKCS#1 v1.5 (hash none) signs the block as given, up to k − 11 bytes, and nothing else', () => {
    const t = Buffer.concat([Buffer.from('3021300906052b0e03021a05000414', 'hex'), createHash('sha1').update('legacy').digest()]);
    const req = rsaSignRequest(params, { session: 's', scheme: 'pkcs1v15', hash: 'none', digest: t }, rng);
    const result = rsaCombine(params, req, partials(k2048.deal, req, [1, 2]));
    expect(publicDecrypt({ key: k2048.publicKey, padding: constants.RSA_PKCS1_PADDING }, result.output)).toEqual(t);
    expect(createVerify('sha1').update('legacy').verify(k2048.publicKey, Buffer.from(result.output))).toBe(true);
    const other = Buffer.from(t);
    other[0]! ^= 1;
    expectProtocolError(() => rsaPartial(params, s1, { ...req, digest: toHex(other) }, rng, true), 'bad-parameters');
    expectProtocolError(() => rsaPartial(params, s1, { ...req, scheme: 'pss' }, rng, true), 'bad-parameters');
    const tooLong = Buffer.alloc(246, 1);
    expectProtocolError(() => rsaPartial(params, s1, { ...req, digest: toHex(tooLong) }, rng, true), 'bad-parameters');
    expect(() => rsaSignRequest(params, { session: 's', scheme: 'pss', hash: 'none', digest: t }, rng)).toThrow(/PKCS#1 v1.5/);
  });

  it('rejects a PSS representative that fails EMSA-PSS-VERIFY for the digest', () => {
    const req = rsaSignRequest(params, { session: 's', scheme: 'pss', hash: 'sha256', digest }, rng);
    const em = Buffer.from(req.representative, 'hex');
    em[100]! ^= 1;
    expectProtocolError(() => rsaPartial(params, s1, { ...req, representative: em.toString('hex') }, rng, true), 'bad-parameters');
    expectProtocolError(() => rsaPartial(params, s1, { ...req, scheme: 'pkcs1v15' }, rng, true), 'bad-parameters');
  });

  it('rejects malformed requests', () => {
    expectProtocolError(() => rsaPartial(params, s1, { op: 'sign', session: 's' }, rng, true), 'malformed');
    expectProtocolError(() => rsaPartial(params, s1, null, rng, true), 'malformed');
  });
});

describe('other thresholds and key sizes', () => {
  it('1-of-1', () => {
    const f = importedDeal(2048, [1], 1);
    const data = Buffer.from('single');
    expect(verifies(f, 'pkcs1v15', 'sha512', data, signWith(f, [1], 'pkcs1v15', 'sha512', data).result.output)).toBe(true);
  });

  it('3-of-5 over several subsets, with non-contiguous identifiers', () => {
    const f = importedDeal(2048, [2, 4, 5, 7, 9], 3);
    const data = Buffer.from('three of five');
    for (const ids of [
      [2, 4, 5],
      [5, 7, 9],
      [2, 7, 9],
    ]) {
      const { result } = signWith(f, ids, 'pss', 'sha384', data);
      expect(verifies(f, 'pss', 'sha384', data, result.output)).toBe(true);
    }
    const digest = createHash('sha384').update(data).digest();
    const req = rsaSignRequest(f.deal.params, { session: 's', scheme: 'pss', hash: 'sha384', digest }, rng);
    expectProtocolError(() => rsaCombine(f.deal.params, req, partials(f.deal, req, [4, 9])), 'missing');
  });

  it('3072-bit imported key, 2-of-3: PSS SHA-384 and OAEP SHA-1', () => {
    const f = importedDeal(3072, [1, 2, 3], 2);
    const data = Buffer.from('3072');
    expect(verifies(f, 'pss', 'sha384', data, signWith(f, [1, 2], 'pss', 'sha384', data).result.output)).toBe(true);
    const ct = publicEncrypt({ key: f.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, data);
    const req = rsaDecryptRequest(f.deal.params, { session: 'd', padding: 'oaep-sha1', ciphertext: ct });
    expect(Buffer.from(rsaCombine(f.deal.params, req, partials(f.deal, req, [2, 3])).output)).toEqual(data);
  });

  it('4096-bit imported key, 3-of-5: PKCS#1 v1.5 SHA-512 and OAEP SHA-256', () => {
    const f = importedDeal(4096, [1, 2, 3, 4, 5], 3);
    const data = Buffer.from('4096');
    const { result } = signWith(f, [1, 3, 5], 'pkcs1v15', 'sha512', data);
    expect(result.output.length).toBe(512);
    expect(verifies(f, 'pkcs1v15', 'sha512', data, result.output)).toBe(true);
    const ct = publicEncrypt({ key: f.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, data);
    const req = rsaDecryptRequest(f.deal.params, { session: 'd', padding: 'oaep-sha256', ciphertext: ct });
    expect(Buffer.from(rsaCombine(f.deal.params, req, partials(f.deal, req, [2, 4, 5])).output)).toEqual(data);
  });
});

describe('dealing', () => {
  it('imports a PKCS#8 PEM: same public key, ordinary primes reported, Δ-scaled shares consistent', () => {
    const { deal, privateKey } = k2048;
    expect(createPublicKey(privateKey).export({ type: 'spki', format: 'der' })).toEqual(Buffer.from(deal.publicKey.spki));
    expect(deal.safePrimes).toBe(false);
    expect(deal.publicKey.e).toBe(65537n);
    expect(delta(deal.params)).toBe(6n);
    for (const s of deal.shares) expect(modPow(deal.params.v, s.s, deal.params.n)).toBe(s.vi);
  });

  it('serialises: public params and shares parse back and each share is checked against v_i', () => {
    const json = wire(encodeDeal(k2048.deal));
    const params = parsePublicParams(json.params);
    expect(params.n).toBe(k2048.deal.params.n);
    expect(params.verificationKeys).toEqual(k2048.deal.params.verificationKeys);
    const s2 = parseKeyShare(params, json.shares[1]);
    expect(s2).toEqual({ id: 2, s: k2048.deal.shares[1]!.s });
    expectProtocolError(() => parseKeyShare(params, { ...json.shares[1], id: 1 }), 'bad-share', 1);
    expectProtocolError(() => parseKeyShare(params, { ...json.shares[1], id: 4 }), 'bad-parameters');
    expectProtocolError(() => parsePublicParams({ ...json.params, threshold: 4 }), 'bad-parameters');
    expectProtocolError(() => parsePublicParams({ ...json.params, v: '01' }), 'bad-parameters');
    expectProtocolError(() => parsePublicParams({ ...json.params, n: json.params.n.slice(2) }), 'bad-parameters');
    expectProtocolError(() => parsePublicParams({ ...json.params, e: '03' }), 'bad-parameters'); // 3 divides Δ = 3!
  });

  it('rejects bad requests: thresholds, identifiers, key sizes, non-RSA and non-PKCS#8 keys', () => {
    const pem = k2048.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expectProtocolError(() => dealRsa({ pkcs8Pem: pem, participants: [1, 2], threshold: 3 }, rng), 'bad-parameters');
    expectProtocolError(() => dealRsa({ pkcs8Pem: pem, participants: [1, 1], threshold: 1 }, rng), 'bad-parameters');
    expectProtocolError(() => dealRsa({ pkcs8Pem: pem, participants: [1, 65], threshold: 1 }, rng), 'bad-parameters');
    const pkcs1 = k2048.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    expectProtocolError(() => dealRsa({ pkcs8Pem: pkcs1, participants: [1], threshold: 1 }, rng), 'bad-parameters');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expectProtocolError(() => dealRsa({ pkcs8Pem: ec, participants: [1], threshold: 1 }, rng), 'bad-parameters');
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expectProtocolError(() => dealRsa({ pkcs8Pem: small, participants: [1], threshold: 1 }, rng), 'bad-parameters');
    expectProtocolError(() => dealRsa({ pkcs8Pem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', participants: [1], threshold: 1 }, rng), 'bad-parameters');
  });
});

describe('Wycheproof OAEP vectors through the threshold path (2-of-3 on the vector key)', () => {
  const file = JSON.parse(readFileSync(resolve(process.cwd(), '../shared/vectors/wycheproof/rsa_oaep_2048_sha256_mgf1sha256_test.json'), 'utf8'));
  const group = file.testGroups[0] as { privateKeyPem: string; tests: { tcId: number; msg: string; ct: string; label: string; result: string }[] };
  const deal = dealRsa({ pkcs8Pem: group.privateKeyPem, participants: [1, 2, 3], threshold: 2 }, seededRng('wycheproof'));

  it('valid vectors decrypt to msg; every invalid one is refused', () => {
    let valid = 0;
    for (const t of group.tests) {
      const run = () => {
        const req = rsaDecryptRequest(deal.params, {
          session: `wp-${t.tcId}`,
          padding: 'oaep-sha256',
          ciphertext: Buffer.from(t.ct, 'hex'),
          label: Buffer.from(t.label, 'hex'),
        });
        return toHex(rsaCombine(deal.params, req, partials(deal, req, t.tcId % 2 ? [1, 2] : [2, 3])).output);
      };
      if (t.result === 'valid') {
        expect(run(), `tcId ${t.tcId}`).toBe(t.msg);
        valid++;
      } else {
        // malformed ciphertexts (length, range, zero) never reach the signers; bad padding fails generically
        expect(run, `tcId ${t.tcId}`).toThrow(/decryption error|ciphertext must be|not reduced|not a unit/);
      }
    }
    expect(valid).toBe(18);
  });
});
