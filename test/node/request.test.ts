import { describe, expect, it } from 'vitest';
import {
  AUTH_HEADERS,
  ReplayGuard,
  RequestAuthError,
  signRequest,
  signResponse,
  verifyRequest,
  verifyResponse,
} from '../../contract/identity/signed-request.js';
import { identityFromSecrets } from '../../contract/identity/identity.js';
import { seededRng } from '../helpers/rng.js';

const gateway = identityFromSecrets('gateway', seededRng('gw/sign')(32), seededRng('gw/kex')(32));
const signerA = identityFromSecrets('signer-a', seededRng('a/sign')(32), seededRng('a/kex')(32));
const signerB = identityFromSecrets('signer-b', seededRng('b/sign')(32), seededRng('b/kex')(32));

const NOW = 1_750_000_000_000;
const SKEW = 30_000;
const body = new TextEncoder().encode('{"op":"sign","keyId":"k1"}');
const req = { method: 'POST', path: '/v1/sessions/s1/round/1?x=1', body, audience: signerA.fingerprint };
const opts = (guard = new ReplayGuard()) => ({ audience: signerA.fingerprint, now: NOW, maxSkewMs: SKEW, replayGuard: guard });
const send = (over: Partial<typeof req & { timestamp: number; nonce: string }> = {}) => {
  const r = { ...req, timestamp: NOW, ...over };
  return { ...r, headers: signRequest(r, gateway.signSecretKey, seededRng(`nonce/${JSON.stringify(over)}`)) };
};

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RequestAuthError);
    return (e as RequestAuthError).code;
  }
  return undefined;
}

describe('signed requests', () => {
  it('a genuine request verifies and yields its nonce', () => {
    const r = send();
    expect(verifyRequest(r, gateway.public.signPublicKey, opts())).toEqual({ nonce: r.headers[AUTH_HEADERS.nonce], timestamp: NOW });
  });

  it('accepts a timestamp at the edge of the window, refuses one beyond', () => {
    expect(codeOf(() => verifyRequest(send({ timestamp: NOW - SKEW }), gateway.public.signPublicKey, opts()))).toBeUndefined();
    expect(codeOf(() => verifyRequest(send({ timestamp: NOW - SKEW - 1 }), gateway.public.signPublicKey, opts()))).toBe('stale');
    expect(codeOf(() => verifyRequest(send({ timestamp: NOW + SKEW + 1 }), gateway.public.signPublicKey, opts()))).toBe('stale');
  });

  it('a bad signature or a changed method, path or body is refused', () => {
    const r = send();
    const sig = r.headers[AUTH_HEADERS.signature]!;
    const flipped = (sig[0] === '0' ? '1' : '0') + sig.slice(1);
    const cases = [
      { ...r, headers: { ...r.headers, [AUTH_HEADERS.signature]: flipped } },
      { ...r, method: 'PUT' },
      { ...r, path: '/v1/sessions/s1/round/2?x=1' },
      { ...r, body: new TextEncoder().encode('{"op":"sign","keyId":"k2"}') },
      { ...r, headers: { ...r.headers, [AUTH_HEADERS.nonce]: 'ab'.repeat(16) } },
      { ...r, headers: { ...r.headers, [AUTH_HEADERS.timestamp]: String(NOW + 1) } },
    ];
    for (const c of cases) expect(codeOf(() => verifyRequest(c, gateway.public.signPublicKey, opts()))).toBe('bad-signature');
  });

  it('a request signed with another key is refused', () => {
    const r = { ...req, timestamp: NOW };
    const forged = { ...r, headers: signRequest(r, signerB.signSecretKey) };
    expect(codeOf(() => verifyRequest(forged, gateway.public.signPublicKey, opts()))).toBe('bad-signature');
  });

  it('a request for another signer is refused (and its audience cannot be edited)', () => {
    const r = send({ audience: signerB.fingerprint });
    expect(codeOf(() => verifyRequest(r, gateway.public.signPublicKey, opts()))).toBe('wrong-audience');
    const edited = { ...r, headers: { ...r.headers, [AUTH_HEADERS.audience]: signerA.fingerprint } };
    expect(codeOf(() => verifyRequest(edited, gateway.public.signPublicKey, opts()))).toBe('bad-signature');
  });

  it('a reused nonce is refused; a guard that is full fails closed', () => {
    const guard = new ReplayGuard(2);
    const r = send();
    verifyRequest(r, gateway.public.signPublicKey, opts(guard));
    expect(codeOf(() => verifyRequest(r, gateway.public.signPublicKey, opts(guard)))).toBe('replay');
    verifyRequest(send({ nonce: '11'.repeat(16) }), gateway.public.signPublicKey, opts(guard));
    expect(codeOf(() => verifyRequest(send({ nonce: '22'.repeat(16) }), gateway.public.signPublicKey, opts(guard)))).toBe('busy');
    // Once the window has passed, old nonces expire and make room again.
    const later = { ...opts(guard), now: NOW + 2 * SKEW + 2 };
    expect(codeOf(() => verifyRequest(send({ nonce: '33'.repeat(16), timestamp: later.now }), gateway.public.signPublicKey, later))).toBeUndefined();
  });

  it('a busy guard holds only the nonces still inside the window', () => {
    const guard = new ReplayGuard();
    for (let i = 0; i < 100; i++) {
      const now = NOW + i * 1000;
      verifyRequest(send({ nonce: i.toString(16).padStart(32, '0'), timestamp: now }), gateway.public.signPublicKey, { ...opts(guard), now });
    }
    // One request a second, each nonce held until its timestamp + SKEW: what came in the last SKEW.
    expect(guard.size).toBe(Math.ceil(SKEW / 1000) + 1);
  });

  it('failed verification does not consume guard space', () => {
    const guard = new ReplayGuard(4);
    const r = send();
    codeOf(() => verifyRequest(r, signerB.public.signPublicKey, opts(guard)));
    expect(guard.size).toBe(0);
  });

  it('missing, duplicated or malformed headers are malformed', () => {
    const r = send();
    for (const name of Object.keys(r.headers)) {
      const { [name]: _, ...rest } = r.headers;
      expect(codeOf(() => verifyRequest({ ...r, headers: rest }, gateway.public.signPublicKey, opts()))).toBe('malformed');
      expect(codeOf(() => verifyRequest({ ...r, headers: { ...rest, [name]: [r.headers[name]!, r.headers[name]!] } }, gateway.public.signPublicKey, opts()))).toBe('malformed');
    }
    expect(codeOf(() => verifyRequest({ ...r, headers: { ...r.headers, [AUTH_HEADERS.timestamp]: '1e3' } }, gateway.public.signPublicKey, opts()))).toBe('malformed');
    expect(codeOf(() => verifyRequest({ ...r, path: 'no-slash' }, gateway.public.signPublicKey, opts()))).toBe('malformed');
  });
});

describe('signed responses', () => {
  const nonce = 'ab'.repeat(16);
  const res = { status: 200, body: new TextEncoder().encode('{"ok":true}'), replyTo: nonce };

  it('verify when signed by the pinned key for our request', () => {
    const headers = signResponse(res, signerA.signSecretKey);
    expect(() => verifyResponse({ ...res, headers }, signerA.public.signPublicKey, nonce)).not.toThrow();
  });

  it('a response from another key, with edited status/body, or for another request is refused', () => {
    const headers = signResponse(res, signerA.signSecretKey);
    const pk = signerA.public.signPublicKey;
    expect(codeOf(() => verifyResponse({ ...res, headers }, signerB.public.signPublicKey, nonce))).toBe('bad-signature');
    expect(codeOf(() => verifyResponse({ ...res, status: 500, headers }, pk, nonce))).toBe('bad-signature');
    expect(codeOf(() => verifyResponse({ ...res, body: new Uint8Array(), headers }, pk, nonce))).toBe('bad-signature');
    expect(codeOf(() => verifyResponse({ ...res, headers }, pk, 'cd'.repeat(16)))).toBe('replay');
    const moved = { ...headers, [AUTH_HEADERS.replyTo]: 'cd'.repeat(16) };
    expect(codeOf(() => verifyResponse({ ...res, headers: moved }, pk, 'cd'.repeat(16)))).toBe('bad-signature');
  });
});
