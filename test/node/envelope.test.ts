import { describe, expect, it } from 'vitest';
import {
  type Envelope,
  EnvelopeError,
  openEnvelope,
  sealEnvelope,
  signBroadcast,
} from '../../contract/identity/envelope.js';
import { ReplayGuard } from '../../contract/identity/signed-request.js';
import { identityFromSecrets } from '../../contract/identity/identity.js';
import { seededRng } from '../helpers/rng.js';
import { seededIdentity } from '../helpers/signer.js';

const make = seededIdentity;
const alice = make('alice'); // party 1
const bob = make('bob'); // party 2
const carol = make('carol'); // party 3

const enc = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const addr = { purpose: 'dkg:key-1', session: 'sess-1', round: 1, from: 1 };
const toBob = { ...addr, to: 2 as const };
const SHARE = 'secret share for bob';

const sealed = (rng = seededRng('eph')): Envelope => sealEnvelope({ ...toBob, payload: enc(SHARE) }, alice, bob.public, rng);

/** The refusal's code; every refusal must be a typed EnvelopeError naming the expected sender. */
function codeOf(f: () => unknown, sender = 1): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EnvelopeError);
    expect((e as EnvelopeError).sender).toBe(sender);
    return (e as EnvelopeError).code;
  }
  return undefined;
}

describe('point-to-point envelopes', () => {
  it('round-trips and hides the payload from the relay', () => {
    const env = sealed();
    expect(JSON.stringify(env).includes(SHARE)).toBe(false);
    expect(JSON.stringify(env).includes(Buffer.from(SHARE).toString('base64url').slice(0, 12))).toBe(false);
    expect(text(openEnvelope(env, bob, alice.public, toBob))).toBe(SHARE);
  });

  it('uses a fresh ephemeral key per message', () => {
    const a = sealEnvelope({ ...toBob, payload: enc(SHARE) }, alice, bob.public);
    const b = sealEnvelope({ ...toBob, payload: enc(SHARE) }, alice, bob.public);
    expect(JSON.parse(a.h).epk).not.toBe(JSON.parse(b.h).epk);
    expect(a.c).not.toBe(b.c);
  });

  it('tampering with any header field is refused', () => {
    const env = sealed();
    const h = JSON.parse(env.h);
    const edits: Record<string, unknown> = {
      purpose: 'dkg:key-2',
      session: 'sess-2',
      round: 2,
      from: 3,
      to: 3,
      sender: carol.fingerprint,
      recipient: carol.fingerprint,
      epk: JSON.parse(sealed(seededRng('other')).h).epk,
      kind: 'broadcast',
      v: 2,
    };
    for (const [field, value] of Object.entries(edits)) {
      const forged = { ...env, h: JSON.stringify({ ...h, [field]: value }) };
      expect([field, codeOf(() => openEnvelope(forged, bob, alice.public, toBob))]).toEqual([field, 'bad-signature']);
    }
    // Re-serialised identically but with whitespace: still not the signed bytes.
    expect(codeOf(() => openEnvelope({ ...env, h: JSON.stringify(h, null, 1) }, bob, alice.public, toBob))).toBe('bad-signature');
  });

  it('tampering with the ciphertext or the signature is refused', () => {
    const env = sealed();
    const ct = Buffer.from(env.c, 'base64url');
    for (const i of [0, ct.length >> 1, ct.length - 1]) {
      const bad = Buffer.from(ct);
      bad[i]! ^= 1;
      expect(codeOf(() => openEnvelope({ ...env, c: bad.toString('base64url') }, bob, alice.public, toBob))).toBe('bad-signature');
    }
    const sig = Buffer.from(env.s, 'hex');
    for (const i of [0, 40, 63]) {
      const bad = Buffer.from(sig);
      bad[i]! ^= 1;
      expect(codeOf(() => openEnvelope({ ...env, s: bad.toString('hex') }, bob, alice.public, toBob))).toBe('bad-signature');
    }
  });

  it('a message re-signed by someone else (e.g. the relay with its own key) is refused', () => {
    const forged = sealEnvelope({ ...toBob, payload: enc('forged share') }, carol, bob.public);
    expect(codeOf(() => openEnvelope(forged, bob, alice.public, toBob))).toBe('bad-signature');
  });

  it('a message for another session, round, purpose, sender or recipient is refused', () => {
    const env = sealed();
    expect(codeOf(() => openEnvelope(env, bob, alice.public, { ...toBob, session: 'sess-2' }))).toBe('wrong-session');
    expect(codeOf(() => openEnvelope(env, bob, alice.public, { ...toBob, round: 2 }))).toBe('wrong-round');
    expect(codeOf(() => openEnvelope(env, bob, alice.public, { ...toBob, purpose: 'frost-sign:key-1' }))).toBe('wrong-purpose');
    expect(codeOf(() => openEnvelope(env, bob, alice.public, { ...toBob, to: 3 }))).toBe('wrong-recipient');
    expect(codeOf(() => openEnvelope(env, bob, alice.public, { ...toBob, to: 'all' }))).toBe('wrong-recipient');
    expect(codeOf(() => openEnvelope(env, bob, alice.public, { ...toBob, from: 3 }), 3)).toBe('wrong-sender');
  });

  it('the intended party id but another identity cannot open it', () => {
    // Carol's node, configured as party 2, receives a message meant for Bob's identity.
    expect(codeOf(() => openEnvelope(sealed(), carol, alice.public, toBob))).toBe('wrong-recipient');
  });

  it('the sender identity is bound, not only its signing key', () => {
    // Same Ed25519 key as alice, different X25519 key: another identity document.
    const twin = identityFromSecrets('alice', alice.signSecretKey, seededRng('twin/kex')(32));
    const env = sealEnvelope({ ...toBob, payload: enc('x') }, twin, bob.public);
    expect(codeOf(() => openEnvelope(env, bob, alice.public, toBob))).toBe('wrong-sender');
  });

  it('malformed envelopes are refused as malformed', () => {
    const env = sealed();
    for (const bad of [null, 'x', {}, { ...env, s: 'zz' }, { ...env, extra: 1 }, { ...env, c: env.c + '=' }, { ...env, c: 'A' }]) {
      expect(codeOf(() => openEnvelope(bad, bob, alice.public, toBob))).toBe('malformed');
    }
  });

  it('a body that is not the one base64url encoding of its bytes is refused, whatever its length', () => {
    const env = sealed();
    const bytes = Buffer.from(env.c, 'base64url');
    // Bodies of each length modulo 3, their last character with a bit set after the last byte:
    // they decode to the same bytes as the canonical text, so only the check tells them apart.
    let loosened = 0;
    for (const n of [bytes.length, bytes.length - 1, bytes.length - 2]) {
      const canonical = bytes.subarray(0, n).toString('base64url');
      const last = canonical.at(-1)!;
      for (const other of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('').filter((ch) => ch !== last)) {
        const loose = canonical.slice(0, -1) + other;
        if (Buffer.from(loose, 'base64url').equals(bytes.subarray(0, n))) {
          expect(codeOf(() => openEnvelope({ ...env, c: loose }, bob, alice.public, toBob)), `${n} bytes, ${last} → ${other}`).toBe('malformed');
          loosened++;
        }
      }
    }
    // 15 variants where 4 bits are unused, 3 where 2 are.
    expect(loosened).toBe(18);
    // Every length that is a whole encoding is taken as it is (and then fails only where its bytes differ).
    expect(codeOf(() => openEnvelope({ ...env, c: bytes.subarray(0, bytes.length - 1).toString('base64url') }, bob, alice.public, toBob))).toBe('bad-signature');
  });

  it('a decrypt failure is reported as such', () => {
    // Right identity document, wrong X25519 secret (e.g. a corrupted or rotated key).
    const wrongKey = { ...bob, kexSecretKey: carol.kexSecretKey };
    expect(codeOf(() => openEnvelope(sealed(), wrongKey, alice.public, toBob))).toBe('decrypt-failed');
  });
});

describe('broadcast envelopes', () => {
  const all = { ...addr, to: 'all' as const };

  it('round-trip, signed and bound', () => {
    const env = signBroadcast({ ...addr, payload: enc('commitments') }, alice);
    expect(text(openEnvelope(env, bob, alice.public, all))).toBe('commitments');
    expect(text(openEnvelope(env, carol, alice.public, all))).toBe('commitments');
    expect(codeOf(() => openEnvelope(env, bob, alice.public, { ...all, round: 0 }))).toBe('wrong-round');
    expect(codeOf(() => openEnvelope(env, bob, alice.public, toBob))).toBe('wrong-recipient');
    const c = Buffer.from(env.c, 'base64url');
    c[0]! ^= 1;
    expect(codeOf(() => openEnvelope({ ...env, c: c.toString('base64url') }, bob, alice.public, all))).toBe('bad-signature');
  });
});

describe('ReplayGuard', () => {
  it('catches a repeated envelope, not a different one', () => {
    const guard = new ReplayGuard(16, 'evict-oldest');
    const env = sealed();
    openEnvelope(env, bob, alice.public, toBob, guard);
    expect(codeOf(() => openEnvelope(env, bob, alice.public, toBob, guard))).toBe('replay');
    openEnvelope(sealed(seededRng('eph-2')), bob, alice.public, toBob, guard);
    expect(guard.size).toBe(2);
  });

  it('only authentic envelopes are remembered', () => {
    const guard = new ReplayGuard(16, 'evict-oldest');
    const env = sealed();
    codeOf(() => openEnvelope({ ...env, s: '00'.repeat(64) }, bob, alice.public, toBob, guard));
    expect(guard.size).toBe(0);
  });

  it('stays bounded: evict-oldest forgets the oldest, refuse fails closed', () => {
    const ev = new ReplayGuard(3, 'evict-oldest');
    for (const k of ['a', 'b', 'c', 'd']) expect(ev.remember(k)).toBe('fresh');
    expect(ev.size).toBe(3);
    expect(ev.remember('d')).toBe('replay');
    expect(ev.remember('a')).toBe('fresh'); // forgotten

    const rf = new ReplayGuard(2);
    expect(rf.remember('a', 0, 100)).toBe('fresh');
    expect(rf.remember('b', 0, 200)).toBe('fresh');
    expect(rf.remember('c', 50, 300)).toBe('full');
    expect(rf.remember('a', 50, 300)).toBe('replay');
    expect(rf.remember('c', 150, 300)).toBe('fresh'); // 'a' expired and was swept
    expect(rf.size).toBe(2);
  });
});
