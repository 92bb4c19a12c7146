// Key records hold secrets as raw bytes beside a JSON public part (issue #24, shares in buffers),
// and records written before, JSON with hex secrets, still open: their secrets come out as bytes,
// and writing the record again gives the new form.
import { describe, expect, it } from 'vitest';
import { toHex } from '../../contract/bytes.js';
import { decodeRecord, encodeRecord, isLegacyRecord, recordScheme } from '../../signers/node/key-records.js';
import { decodeSecretful, encodeSecretful, runLocally, type Step } from '../../signers/protocols/common.js';
import { ecdsaKeygenStart, ecdsaKeygenStep, type EcdsaKeygenState, type EcdsaKeyShare } from '../../signers/protocols/ecdsa/index.js';
import { expectProtocolError, runDkg } from '../helpers/protocol.js';
import { seededRng } from '../helpers/rng.js';

/** The JSON form of earlier versions: every secret as lower-case hex. */
const legacy = (scheme: string, share: unknown): Uint8Array =>
  Buffer.from(JSON.stringify({ scheme, share }, (_k, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v)));

function ecdsaShare(): EcdsaKeyShare {
  const ids = [1, 2, 3];
  const rng = new Map(ids.map((id) => [id, seededRng(`records/${id}`)]));
  const first: Step<EcdsaKeygenState, EcdsaKeyShare>[] = ids.map((id) => ecdsaKeygenStart({ curve: 'p256', session: 'records', self: id, participants: ids, threshold: 2 }, rng.get(id)!));
  return runLocally(ids, first, (id, s, inbox) => ecdsaKeygenStep(s, inbox, rng.get(id)!))[0]!;
}

describe('key records', () => {
  const frost = runDkg('ed25519', 2, [1, 2, 3], 'records').get(1)!;
  const ecdsa = ecdsaShare();

  it('a record from before opens with its secrets as bytes, and is written again without any hex of them', () => {
    for (const [scheme, share] of [['frost', frost], ['ecdsa', ecdsa]] as const) {
      const old = legacy(scheme, share);
      expect(isLegacyRecord(old)).toBe(true);
      expect(recordScheme(old)).toBe(scheme);
      const held = decodeRecord(old);
      expect('ec' in held && held.ec).toEqual(share);
      const s = (held as { ec: { secretShare: unknown } }).ec.secretShare;
      expect(s).toBeInstanceOf(Uint8Array);
      const again = encodeRecord(held);
      expect(isLegacyRecord(again)).toBe(false);
      const text = Buffer.from(again).toString('latin1');
      expect(text).not.toContain(toHex(share.secretShare));
      expect(text).not.toContain(Buffer.from(share.secretShare).toString('base64').slice(0, 40));
      expect(decodeRecord(again)).toEqual(held);
    }
    const pair = (decodeRecord(legacy('ecdsa', ecdsa)) as { ec: EcdsaKeyShare }).ec.pairs['2']!;
    expect(pair.discarded === false && pair.bob.keys0).toBeInstanceOf(Uint8Array);
    expect(pair.discarded === false && pair.alice.delta).toBeInstanceOf(Uint8Array);
    expect(pair.discarded === false && pair.zeroSeed).toBeInstanceOf(Uint8Array);
  });

  it('a session mark survives the new form', () => {
    const rec = encodeRecord({ ec: frost }, 'reshare-1');
    expect(decodeRecord(rec).session).toBe('reshare-1');
  });

  it('a truncated or malformed secret encoding is refused', () => {
    const rec = encodeSecretful({ a: { b: Uint8Array.of(1, 2, 3) } });
    expect(decodeSecretful(rec)).toEqual({ a: { b: Uint8Array.of(1, 2, 3) } });
    expectProtocolError(() => decodeSecretful(rec.subarray(0, rec.length - 1)), 'malformed');
    const proto = Buffer.from(encodeSecretful({ x: Uint8Array.of(1) }));
    const bad = Buffer.from(proto.toString('latin1').replace('["x"]', '["__proto__"]'.slice(0, 5)), 'latin1');
    expect(() => decodeSecretful(bad)).toThrow();
  });
});
