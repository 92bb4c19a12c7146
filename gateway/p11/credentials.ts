// Session credentials for the PKCS#11 module: C_Login trades a PIN's login key for one, and every later
// request carries it. A credential names its principal and role under an HMAC keyed by the
// gateway's credential key (kept on disk), so an application stays logged in across gateway
// restarts without logging in again. Each use re-reads the principal, so removing a
// principal or changing its role ends its sessions; C_Logout revokes the one credential.
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

export class Credentials {
  private readonly revoked = new Set<string>();

  constructor(
    private readonly key: Buffer,
    private readonly principals: PrincipalRegistry,
  ) {}

  issue(p: Principal): string {
    const payload = Buffer.from(JSON.stringify({ p: p.name, r: p.role, n: randomBytes(16).toString('hex'), t: Date.now() })).toString('base64url');
    return `${PREFIX}.${payload}.${this.mac(payload)}`;
  }

  /** The principal a credential stands for, or undefined if it is forged, revoked or stale. */
  verify(credential: string): Principal | undefined {
    const payload = this.payload(credential);
    if (!payload || this.revoked.has(payload.n)) return undefined;
    return this.principals.all().find((q) => q.name === payload.p && q.role === (payload.r as Role));
  }

  revoke(credential: string): void {
    const payload = this.payload(credential);
    if (!payload) return;
    if (this.revoked.size >= MAX_REVOKED) this.revoked.delete(this.revoked.values().next().value!);
    this.revoked.add(payload.n);
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
