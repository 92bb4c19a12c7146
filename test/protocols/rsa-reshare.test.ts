import { constants, createHash, createPublicKey, generateKeyPairSync, publicEncrypt, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeSecretful, encodeSecretful, type Message } from '../../signers/protocols/common.js';
import { toHex, type PartyId } from '../../contract/bytes.js';
import { bitLength } from '../../signers/protocols/rsa/arith.js';
import { bigIntToBytes, bytesToBigInt } from '../../signers/protocols/integers.js';
import { combinePartials, rsaCombine, rsaDecryptRequest, rsaSignRequest } from '../../signers/protocols/rsa/combine.js';
import { dealRsa } from '../../signers/protocols/rsa/deal.js';
import { encodeKeyShare, encodePublicParams, parseKeyShare, parsePublicParams, RSA_MAX_SHARE_BITS, type RsaKeyShare, type RsaPublicParams } from '../../signers/protocols/rsa/key.js';
import { modPow } from '../../signers/protocols/rsa/modpow.js';
import { partialForInput, rsaPartial } from '../../signers/protocols/rsa/partial.js';
import { refreshHeadroomProblem, rsaReshareDeal, rsaReshareReceive, type RsaReshareParams } from '../../signers/protocols/rsa/reshare.js';
import { requestInput } from '../../signers/protocols/rsa/request.js';
import { expectProtocolError } from '../helpers/protocol.js';
import { seededRng } from '../helpers/rng.js';

const rng = seededRng('rsa-reshare');
/** Through the wire and back as the relay carries a point-to-point payload (secrets as bytes). */
const wire = <T>(x: T): T => decodeSecretful(encodeSecretful(x)) as T;

interface Key {
  params: RsaPublicParams;
  shares: Map<PartyId, RsaKeyShare>;
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const publicKey: KeyObject = createPublicKey(privateKey);

function dealt(participants: PartyId[], threshold: number): Key {
  const d = dealRsa({ pkcs8Pem: pem, participants, threshold }, seededRng(`deal-${participants.join()}-${threshold}`));
  return { params: d.params, shares: new Map(d.shares.map((s) => [s.id, { id: s.id, s: s.s }])) };
}

const base = dealt([1, 2, 3], 2);

const reshareParams = (old: RsaPublicParams, self: PartyId, dealers: PartyId[], participants: PartyId[], threshold: number, session = 'rs'): RsaReshareParams => ({
  session,
  self,
  old,
  dealers,
  participants,
  threshold,
});

/** Every dealer's messages, as they cross the network. */
const dealAll = (old: Key, dealers: PartyId[], participants: PartyId[], threshold: number): Message[] =>
  dealers.flatMap((j) => wire(rsaReshareDeal(reshareParams(old.params, j, dealers, participants, threshold), old.shares.get(j)!, rng)));

/** Runs a resharing; every new holder must end with the same public params. */
function reshare(old: Key, dealers: PartyId[], participants: PartyId[], threshold: number): Key {
  const msgs = dealAll(old, dealers, participants, threshold);
  const out = participants.map((k) => rsaReshareReceive(reshareParams(old.params, k, dealers, participants, threshold), msgs.filter((m) => m.to === k)));
  const encoded = out.map((o) => JSON.stringify(encodePublicParams(o.params)));
  expect(new Set(encoded).size).toBe(1);
  return { params: out[0]!.params, shares: new Map(out.map((o) => [o.share.id, o.share])) };
}

const data = Buffer.from('resharing keeps the key');
const digest = createHash('sha256').update(data).digest();

function sign(key: Key, ids: PartyId[], session = 'sig'): Uint8Array {
  const req = rsaSignRequest(key.params, { session, scheme: 'pss', hash: 'sha256', digest }, rng);
  const msgs = ids.map((id) => wire(rsaPartial(key.params, key.shares.get(id)!, wire(req), rng, true)));
  return rsaCombine(key.params, wire(req), msgs).output;
}

const verifies = (sig: Uint8Array): boolean =>
  nodeVerify('sha256', data, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig);

function decrypts(key: Key, ids: PartyId[]): boolean {
  const msg = Buffer.from('a wrapped data key');
  const ciphertext = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, msg);
  const req = rsaDecryptRequest(key.params, { session: 'dec', padding: 'oaep-sha256', ciphertext });
  const msgs = ids.map((id) => wire(rsaPartial(key.params, key.shares.get(id)!, wire(req), rng, true)));
  return Buffer.from(rsaCombine(key.params, req, msgs).output).equals(msg);
}

describe('resharing threshold RSA', () => {
  const removed = reshare(base, [1, 2, 3], [1, 2], 2);

  it('removal: 2-of-3 → {1,2}; the new shares sign and decrypt, an old share of 3 is useless', () => {
    expect(removed.params.participants).toEqual([1, 2]);
    expect(removed.params.multiplier).toBe(12n); // 1 · 3! · 2!
    expect(verifies(sign(removed, [1, 2]))).toBe(true);
    expect(decrypts(removed, [2, 1])).toBe(true);

    const req = rsaSignRequest(removed.params, { session: 'old3', scheme: 'pss', hash: 'sha256', digest }, rng);
    const new1 = wire(rsaPartial(removed.params, removed.shares.get(1)!, req, rng, true));
    const old3 = wire(rsaPartial(base.params, base.shares.get(3)!, req, rng, true));
    expectProtocolError(() => rsaCombine(removed.params, req, [new1, old3]), 'unknown-sender', 3);
    // Passed off as party 2's, its proof fails against the new verification key.
    const x = requestInput(removed.params, req);
    const as2 = wire(partialForInput(removed.params, { id: 2, s: base.shares.get(3)!.s }, req.session, x, rng, true));
    expectProtocolError(() => rsaCombine(removed.params, req, [new1, as2]), 'bad-partial', 2);
  });

  it('refresh: {1,2,3} → {1,2,3}; every share changes, any two new ones sign, old and new do not mix', () => {
    const fresh = reshare(base, [2, 3], [1, 2, 3], 2);
    for (const id of [1, 2, 3]) expect(fresh.shares.get(id)!.s).not.toBe(base.shares.get(id)!.s);
    for (const ids of [[1, 2], [1, 3], [3, 2]]) expect(verifies(sign(fresh, ids))).toBe(true);

    const req = rsaSignRequest(fresh.params, { session: 'mix', scheme: 'pss', hash: 'sha256', digest }, rng);
    const x = requestInput(fresh.params, req);
    const new1 = wire(rsaPartial(fresh.params, fresh.shares.get(1)!, req, rng, true));
    const old2 = wire(partialForInput(fresh.params, base.shares.get(2)!, req.session, x, rng, true));
    expectProtocolError(() => rsaCombine(fresh.params, req, [new1, old2]), 'bad-partial', 2);
    // Even combined without the proofs, the old share gives a wrong root.
    const xi = (m: Message) => bytesToBigInt(Buffer.from((m.payload as { xi: string }).xi, 'hex'));
    const y = combinePartials(fresh.params, x, new Map([[1, xi(new1)], [2, xi(old2)]]));
    expect(modPow(y, fresh.params.e, fresh.params.n)).not.toBe(x);
  });

  it('addition: {1,2,3} → {1,2,3,4}; party 4 signs with any other', () => {
    const grown = reshare(base, [1, 2, 3], [1, 2, 3, 4], 2);
    for (const other of [1, 2, 3]) expect(verifies(sign(grown, [4, other]))).toBe(true);
    expect(decrypts(grown, [4, 2])).toBe(true);
  });

  it('two in a row: multiplier and share width grow, the key still signs', () => {
    const again = reshare(removed, [1, 2], [1, 2, 3], 2);
    expect(again.params.multiplier).toBe(removed.params.multiplier * 2n * 6n);
    expect(removed.params.shareBits).toBeGreaterThan(base.params.shareBits);
    expect(again.params.shareBits).toBeGreaterThan(removed.params.shareBits);
    for (const s of again.shares.values()) expect(bitLength(s.s)).toBeLessThanOrEqual(again.params.shareBits);
    expect(verifies(sign(again, [2, 3]))).toBe(true);
    expect(decrypts(again, [1, 3])).toBe(true);
  });

  it('threshold 1: one dealer reshares a 1-of-2 key to 1-of-3', () => {
    const one = dealt([1, 2], 1);
    const grown = reshare(one, [2], [1, 2, 3], 1);
    for (const id of [1, 2, 3]) expect(verifies(sign(grown, [id]))).toBe(true);
    expectProtocolError(() => dealAll(one, [1, 2], [1, 2], 1), 'bad-parameters');
  });
});

describe('a resharing names the dealer at fault', () => {
  const dealers = [1, 2, 3];
  const participants = [1, 2];
  const msgs = dealAll(base, dealers, participants, 2);
  const at1 = msgs.filter((m) => m.to === 1);
  const p1 = reshareParams(base.params, 1, dealers, participants, 2);
  type Payload = { context: string; sigma: Uint8Array; commitments: string[] };
  /** Party 1's inbox with dealer 2's message altered. */
  const with2 = (f: (m: Message<Payload>) => Message<Payload>): Message[] => at1.map((m) => (m.from === 2 ? f(wire(m) as Message<Payload>) : m));
  const payload2 = (f: (p: Payload) => Partial<Payload>) => with2((m) => ({ ...m, payload: { ...m.payload, ...f(m.payload) } }));
  const bump = (b: Uint8Array) => bigIntToBytes(bytesToBigInt(b) + 1n, b.length);

  it('accepts the dealings in any order, and the id sets in any order', () => {
    const sorted = rsaReshareReceive(p1, at1);
    const shuffled = rsaReshareReceive({ ...p1, dealers: [3, 1, 2], participants: [2, 1] }, [...at1].reverse());
    expect(shuffled).toEqual(sorted);
    expect(sorted.params.participants).toEqual([1, 2]);
  });

  it('a bad σ, or the commitments of another dealing', () => {
    expectProtocolError(() => rsaReshareReceive(p1, payload2((p) => ({ sigma: bump(p.sigma) }))), 'bad-share', 2);
    const of3 = at1.find((m) => m.from === 3)!.payload as Payload;
    expectProtocolError(() => rsaReshareReceive(p1, payload2(() => ({ commitments: of3.commitments }))), 'bad-share', 2);
  });

  it('a dealing of another secret than the dealer’s old share', () => {
    const s = base.shares.get(2)!.s + 1n;
    const forged = { ...base.params, verificationKeys: new Map(base.params.verificationKeys).set(2, modPow(base.params.v, s, base.params.n)) };
    const fake = wire(rsaReshareDeal(reshareParams(forged, 2, dealers, participants, 2), { id: 2, s }, rng)).find((m) => m.to === 1) as Message<Payload>;
    // Run as is, its parameter digest gives it away; with the honest digest, its constant term.
    expectProtocolError(() => rsaReshareReceive(p1, with2(() => fake)), 'inconsistent-view', 2);
    const context = (at1[0]!.payload as Payload).context;
    expectProtocolError(() => rsaReshareReceive(p1, with2(() => ({ ...fake, payload: { ...fake.payload, context } }))), 'bad-share', 2);
  });

  it('malformed dealings: commitment count, non-units, σ too wide', () => {
    expectProtocolError(() => rsaReshareReceive(p1, payload2((p) => ({ commitments: [...p.commitments, p.commitments[0]!] }))), 'malformed', 2);
    expectProtocolError(() => rsaReshareReceive(p1, payload2(() => ({ commitments: ['00'.repeat(256)] }))), 'invalid-point', 2);
    expectProtocolError(() => rsaReshareReceive(p1, payload2(() => ({ commitments: [toHex(bigIntToBytes(base.params.n, 256))] }))), 'invalid-point', 2);
    expectProtocolError(() => rsaReshareReceive(p1, payload2((p) => ({ commitments: [p.commitments[0]!.slice(2)] }))), 'invalid-point', 2);
    expectProtocolError(() => rsaReshareReceive(p1, payload2(() => ({ sigma: new Uint8Array(400).fill(0xff) }))), 'scalar-range', 2);
    expectProtocolError(() => rsaReshareReceive(p1, payload2(() => ({ sigma: 'zz' as unknown as Uint8Array }))), 'malformed', 2);
  });

  it('missing, duplicate, misdirected, foreign and unknown messages', () => {
    expectProtocolError(() => rsaReshareReceive(p1, at1.filter((m) => m.from !== 3)), 'missing', 3);
    expectProtocolError(() => rsaReshareReceive(p1, [...at1, at1[1]!]), 'duplicate', at1[1]!.from);
    expectProtocolError(() => rsaReshareReceive(p1, with2(() => msgs.find((m) => m.from === 2 && m.to === 2) as Message<Payload>)), 'wrong-recipient', 2);
    expectProtocolError(() => rsaReshareReceive(p1, with2((m) => ({ ...m, session: 'other' }))), 'wrong-session', 2);
    expectProtocolError(() => rsaReshareReceive(p1, with2((m) => ({ ...m, round: 2 }))), 'wrong-round', 2);
    expectProtocolError(() => rsaReshareReceive(p1, with2((m) => ({ ...m, from: 4 }))), 'unknown-sender', 4);
    // A holder told another dealer set stops at the first dealing.
    expectProtocolError(() => rsaReshareReceive({ ...p1, dealers: [1, 2] }, at1.filter((m) => m.from !== 3)), 'inconsistent-view', 1);
  });

  it('refuses bad parameters', () => {
    const share1 = base.shares.get(1)!;
    const deal = (over: Partial<RsaReshareParams>, share = share1) => () => rsaReshareDeal({ ...p1, ...over }, share, rng);
    expectProtocolError(deal({ dealers: [1, 4] }), 'bad-parameters'); // 4 holds no old share
    expectProtocolError(deal({ dealers: [1] }), 'bad-parameters'); // fewer than the old threshold
    expectProtocolError(deal({ dealers: [1, 1, 2] }), 'bad-parameters');
    expectProtocolError(deal({ self: 4, dealers: [1, 2] }), 'bad-parameters'); // not a dealer
    expectProtocolError(deal({ participants: [1, 65] }), 'bad-parameters');
    expectProtocolError(deal({ threshold: 3 }), 'bad-parameters');
    expectProtocolError(deal({ session: '' }), 'bad-parameters');
    expectProtocolError(deal({}, base.shares.get(2)!), 'bad-parameters'); // another party's share
    expectProtocolError(deal({}, { id: 1, s: share1.s + 1n }), 'bad-parameters'); // does not match v_1
    expectProtocolError(() => rsaReshareReceive({ ...p1, self: 3 }, msgs.filter((m) => m.to === 3)), 'bad-parameters'); // not a new holder
  });
});

describe('public params encoding', () => {
  const removed = reshare(base, [1, 2], [1, 2], 2);

  it('a dealt key encodes as before resharing existed', () => {
    const json = encodePublicParams(base.params);
    expect(Object.keys(json)).toEqual(['n', 'e', 'v', 'threshold', 'participants', 'verificationKeys']);
    const back = parsePublicParams(wire(json));
    expect(back.multiplier).toBe(1n);
    expect(back.shareBits).toBe(2048);
  });

  it('a reshared key and its shares round-trip', () => {
    const json = wire(encodePublicParams(removed.params));
    expect(json.multiplier).toBe('0c');
    expect(json.shareBits).toBe(removed.params.shareBits);
    const back = parsePublicParams(json);
    expect(back).toEqual(removed.params);
    const s2 = removed.shares.get(2)!;
    expect(parseKeyShare(back, wire(encodeKeyShare(s2)))).toEqual(s2);
    const s2Wide = s2.s + (1n << BigInt(back.shareBits));
    expectProtocolError(() => parseKeyShare(back, encodeKeyShare({ id: 2, s: s2Wide })), 'bad-share', 2);
  });

  it('rejects a bad multiplier or share width', () => {
    const json = wire(encodePublicParams(removed.params));
    expectProtocolError(() => parsePublicParams({ ...json, multiplier: '00' }), 'bad-parameters');
    expectProtocolError(() => parsePublicParams({ ...json, multiplier: '010001' }), 'bad-parameters'); // e = 65537 divides it
    expectProtocolError(() => parsePublicParams({ ...json, multiplier: 'XY' }), 'malformed');
    expectProtocolError(() => parsePublicParams({ ...json, shareBits: 16_385 }), 'malformed');
    expectProtocolError(() => parsePublicParams({ ...json, shareBits: 0 }), 'malformed');
  });
});

describe('refresh headroom', () => {
  it('a refresh is refused once the resharing after it would pass the share width bound', () => {
    expect(refreshHeadroomProblem(base.params)).toBeUndefined();
    const once = reshare(base, [1, 2, 3], [1, 2, 3], 2);
    expect(refreshHeadroomProblem(once.params)).toBeUndefined();
    // Shares widen by the same margin each time: near the bound, one refresh would leave none.
    const growth = once.params.shareBits - base.params.shareBits;
    expect(growth).toBeGreaterThan(100);
    expect(refreshHeadroomProblem({ ...once.params, shareBits: RSA_MAX_SHARE_BITS - 2 * growth - 10 })).toBeUndefined();
    expect(refreshHeadroomProblem({ ...once.params, shareBits: RSA_MAX_SHARE_BITS - growth - 10 })).toMatch(/refreshing would leave its RSA shares \d+ bits wide, and the resharing after that .* would need \d+ bits, over 16384/);
  });
});
