// Sign-in to the approval console: an administrator proves possession of a security key the
// governance enrols for them by a WebAuthn assertion over a random challenge made here; the
// session is a random cookie, bounded in number and lifetime. A session only lets the browser
// see pending requests and ask for statements to approve: every approval it submits is itself
// an assertion the signers verify (policy/webauthn.ts), so a stolen session approves nothing.
import { randomBytes } from 'node:crypto';
import { verifyWebAuthnAssertion, webauthnAssertionSchema, type GovernanceDocument } from '../../policy/index.js';

/** How long a sign-in challenge, and a session, stay valid. */
export const CHALLENGE_LIFETIME_MS = 2 * 60_000;
export const SESSION_LIFETIME_MS = 30 * 60_000;
const MAX_CHALLENGES = 1024;
const MAX_SESSIONS = 256;

/** Drops expired entries, then the oldest while the map is full. */
function prune<V extends { until: number }>(m: Map<string, V>, max: number, now: number): void {
  for (const [k, v] of m) if (v.until <= now) m.delete(k);
  while (m.size >= max) m.delete(m.keys().next().value!);
}

export class ConsoleSessions {
  private readonly challenges = new Map<string, { challenge: Buffer; until: number }>();
  private readonly sessions = new Map<string, { name: string; until: number }>();
  /** Sign-in assertions' counters, by credential (the signers keep their own for approvals). */
  private readonly counters = new Map<string, number>();

  challenge(): { id: string; challenge: string } {
    const now = Date.now();
    prune(this.challenges, MAX_CHALLENGES, now);
    const [id, challenge] = [randomBytes(16).toString('hex'), randomBytes(32)];
    this.challenges.set(id, { challenge, until: now + CHALLENGE_LIFETIME_MS });
    return { id, challenge: challenge.toString('base64url') };
  }

  /** A new session for the administrator whose enrolled credential made `raw` over challenge `id` (used once); or why not. */
  signIn(id: string, raw: unknown, governance: GovernanceDocument): { token: string; name: string } | { reason: string } {
    const now = Date.now();
    const c = this.challenges.get(id);
    this.challenges.delete(id);
    if (!c || c.until <= now) return { reason: 'the sign-in challenge expired; sign in again' };
    const a = webauthnAssertionSchema.safeParse(raw);
    if (!a.success) return { reason: 'malformed assertion' };
    const admin = governance.administrators.find((x) => x.webauthn?.some((w) => w.id === a.data.credentialId));
    const credential = admin?.webauthn?.find((w) => w.id === a.data.credentialId);
    if (!admin || !credential) return { reason: `credential ${a.data.credentialId} is not enrolled in governance v${governance.version}` };
    const v = verifyWebAuthnAssertion(a.data, credential, c.challenge, this.counters.get(credential.id) ?? 0);
    if (!v.ok) return { reason: v.reason };
    this.counters.set(credential.id, v.counter);
    prune(this.sessions, MAX_SESSIONS, now);
    const token = randomBytes(32).toString('base64url');
    this.sessions.set(token, { name: admin.name, until: now + SESSION_LIFETIME_MS });
    return { token, name: admin.name };
  }

  /** The administrator a session token belongs to, while it lasts. */
  who(token: string | undefined): string | undefined {
    const s = token === undefined ? undefined : this.sessions.get(token);
    return s && s.until > Date.now() ? s.name : undefined;
  }

  signOut(token: string | undefined): void {
    if (token !== undefined) this.sessions.delete(token);
  }
}
