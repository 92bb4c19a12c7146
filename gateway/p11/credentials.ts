// Session credentials for the PKCS#11 module: C_Login trades a PIN's login key for one, and every later
// request carries it. A credential names its principal and role under an HMAC keyed by the
// gateway's credential key (kept on disk), so an application stays logged in across gateway
// restarts without logging in again. Each use re-reads the principal, so removing a
// principal or changing its role ends its sessions; a login ends after its lifetime, and
// C_Logout (which the module also sends at C_CloseAllSessions and C_Finalize) revokes it.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Principal, PrincipalRegistry, Role } from '../principals.js';

const PREFIX = 'p11v1';
const MAX_REVOKED = 100_000;

const payloadSchema = z.object({
  p: z.string(),
  r: z.enum(['admin', 'app', 'auditor']),
  n: z.string().regex(/^[0-9a-f]{32}$/),
  t: z.number(),
});

/**
 * What a credential is worth. `name` is set whenever the MAC holds, so a refusal of a genuine
 * but ended login names whose it was; a forgery names no one.
 */
export type CredentialCheck =
  | { ok: true; principal: Principal }
  | { ok: false; why: 'invalid' }
  | { ok: false; why: 'expired' | 'revoked' | 'unknown-principal'; name: string };

export class Credentials {
  /** Revoked nonces and when their credential would have expired anyway. */
  private readonly revoked = new Map<string, number>();

  constructor(
    private readonly key: Buffer,
    private readonly principals: PrincipalRegistry,
    private readonly lifetimeMs: number,
  ) {}

  issue(p: Principal): string {
    const payload = Buffer.from(JSON.stringify({ p: p.name, r: p.role, n: randomBytes(16).toString('hex'), t: Date.now() })).toString('base64url');
    return `${PREFIX}.${payload}.${this.mac(payload)}`;
  }

  check(credential: string): CredentialCheck {
    const payload = this.payload(credential);
    if (!payload) return { ok: false, why: 'invalid' };
    const name = payload.p;
    if (this.revoked.has(payload.n)) return { ok: false, why: 'revoked', name };
    if (Date.now() - payload.t >= this.lifetimeMs) return { ok: false, why: 'expired', name };
    const principal = this.principals.all().find((q) => q.name === payload.p && q.role === (payload.r as Role));
    return principal ? { ok: true, principal } : { ok: false, why: 'unknown-principal', name };
  }

  /** Ends a genuine credential; returns whose it was (undefined for a forgery). */
  revoke(credential: string): string | undefined {
    const payload = this.payload(credential);
    if (!payload) return undefined;
    const now = Date.now();
    if (this.revoked.size >= MAX_REVOKED) {
      // Entries past their expiry need no revocation; only if none are, the oldest revocation goes.
      for (const [n, until] of this.revoked) if (until <= now) this.revoked.delete(n);
      if (this.revoked.size >= MAX_REVOKED) this.revoked.delete(this.revoked.keys().next().value!);
    }
    this.revoked.set(payload.n, payload.t + this.lifetimeMs);
    return payload.p;
  }

  private payload(credential: string): z.infer<typeof payloadSchema> | undefined {
    const parts = credential.split('.');
    if (parts.length !== 3 || parts[0] !== PREFIX) return undefined;
    const [, payload, mac] = parts as [string, string, string];
    const want = Buffer.from(this.mac(payload), 'base64url');
    const got = Buffer.from(mac, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
    try {
      const parsed = payloadSchema.safeParse(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(`${PREFIX}.${payload}`).digest('base64url');
  }
}
