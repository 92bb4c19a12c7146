// Sign-in to the approval console (gateway/console/sessions.ts): an assertion by an enrolled
// credential over a challenge made here, used once; challenges last 2 minutes, sessions 30.
import { ed25519 } from '@noble/curves/ed25519.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { toHex } from '../../contract/bytes.js';
import { CHALLENGE_LIFETIME_MS, ConsoleSessions, SESSION_LIFETIME_MS } from '../../gateway/console/sessions.js';
import { defaultGovernance, governanceDocumentSchema } from '../../policy/index.js';
import { SoftAuthenticator } from './authenticator.js';

const key = new SoftAuthenticator(-8);
const base = defaultGovernance('c1', ['admin1', 'admin2'].map((name) => ({ name, approvalKey: toHex(ed25519.getPublicKey(ed25519.utils.randomSecretKey())) })));
const governance = governanceDocumentSchema.parse({ ...base, administrators: base.administrators.map((a) => (a.name === 'admin1' ? { ...a, webauthn: [key.credential] } : a)) });
const signIn = (s: ConsoleSessions, assert = (c: Uint8Array) => key.assert(c)) => {
  const c = s.challenge();
  return { id: c.id, result: s.signIn(c.id, assert(Buffer.from(c.challenge, 'base64url')), governance) };
};

afterEach(() => vi.useRealTimers());

describe('console sign-in', () => {
  it('opens a session for the administrator whose enrolled key signed the challenge, once', () => {
    const s = new ConsoleSessions();
    const c = s.challenge();
    const assertion = key.assert(Buffer.from(c.challenge, 'base64url'));
    const r = s.signIn(c.id, assertion, governance);
    expect(r).toMatchObject({ name: 'admin1' });
    expect(s.who((r as { token: string }).token)).toBe('admin1');
    expect(s.signIn(c.id, assertion, governance)).toEqual({ reason: 'the sign-in challenge expired; sign in again' });
    expect(signIn(s, (ch) => new SoftAuthenticator(-8).assert(ch)).result).toMatchObject({ reason: expect.stringMatching(/is not enrolled in governance v1/) });
    expect(signIn(s, (ch) => key.assert(ch, { counter: 1 })).result).toMatchObject({ reason: expect.stringMatching(/counter 1 is not above/) });
  });

  it('challenges end after 2 minutes and sessions after 30', () => {
    vi.useFakeTimers({ now: Date.now() });
    const s = new ConsoleSessions();
    const c = s.challenge();
    vi.advanceTimersByTime(CHALLENGE_LIFETIME_MS);
    expect(s.signIn(c.id, key.assert(Buffer.from(c.challenge, 'base64url')), governance)).toMatchObject({ reason: expect.stringMatching(/expired/) });
    const { token } = signIn(s).result as { token: string };
    vi.advanceTimersByTime(SESSION_LIFETIME_MS - 1);
    expect(s.who(token)).toBe('admin1');
    vi.advanceTimersByTime(1);
    expect(s.who(token)).toBeUndefined();
    expect([CHALLENGE_LIFETIME_MS, SESSION_LIFETIME_MS]).toEqual([120_000, 1_800_000]);
  });
});
