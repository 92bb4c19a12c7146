// The channel's native Ed25519/X25519 must give the same bytes as RFC 8032 / RFC 7748 (checked
// against noble's implementation) and refuse what those refuse.
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { ed25519PublicKey, ed25519Sign, ed25519Verify, forgetSecretKey, x25519Ephemeral, x25519PublicKey, x25519Shared } from '../../contract/identity/curve25519.js';
import { seededRng } from '../helpers/rng.js';

const rng = seededRng('curve25519');

describe('native Ed25519 and X25519', () => {
  it('signs exactly as RFC 8032 and verifies only valid signatures', () => {
    for (let i = 0; i < 8; i++) {
      const sk = rng(32);
      const msg = rng(i * 37);
      expect(ed25519PublicKey(sk)).toEqual(ed25519.getPublicKey(sk));
      const sig = ed25519Sign(msg, sk);
      expect(sig).toEqual(ed25519.sign(msg, sk));
      expect(ed25519Verify(sig, msg, ed25519.getPublicKey(sk))).toBe(true);
      const bad = sig.slice();
      bad[i]! ^= 1;
      expect(ed25519Verify(bad, msg, ed25519.getPublicKey(sk))).toBe(false);
      expect(ed25519Verify(sig, Uint8Array.of(...msg, 0), ed25519.getPublicKey(sk))).toBe(false);
      expect(ed25519Verify(sig.subarray(1), msg, ed25519.getPublicKey(sk))).toBe(false);
    }
  });

  it('refuses a signature whose s is not reduced (s + L)', () => {
    const sk = rng(32);
    const msg = rng(20);
    const sig = ed25519Sign(msg, sk);
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let k = 63; k >= 32; k--) s = (s << 8n) | BigInt(sig[k]!);
    const big = s + L;
    const out = sig.slice();
    for (let k = 32; k < 64; k++) out[k] = Number((big >> BigInt(8 * (k - 32))) & 0xffn);
    expect(ed25519Verify(out, msg, ed25519.getPublicKey(sk))).toBe(false);
  });

  it('agrees X25519 secrets as RFC 7748, for long-lived and ephemeral keys, and refuses low-order peers', () => {
    const a = rng(32);
    const b = rng(32);
    expect(x25519PublicKey(a)).toEqual(x25519.getPublicKey(a));
    expect(x25519Shared(a, x25519.getPublicKey(b))).toEqual(x25519.getSharedSecret(a, x25519.getPublicKey(b)));
    const e = x25519Ephemeral(b);
    expect(e.publicKey).toEqual(x25519.getPublicKey(b));
    expect(e.shared(x25519.getPublicKey(a))).toEqual(x25519.getSharedSecret(b, x25519.getPublicKey(a)));
    expect(() => x25519Shared(a, new Uint8Array(32))).toThrow();
    expect(() => x25519Shared(a, Uint8Array.of(1, ...new Uint8Array(31)))).toThrow();
  });

  it('forgets a wiped secret key', () => {
    const sk = rng(32);
    const pk = ed25519PublicKey(sk);
    forgetSecretKey(sk);
    sk.fill(0);
    expect(ed25519PublicKey(sk)).not.toEqual(pk);
  });
});
