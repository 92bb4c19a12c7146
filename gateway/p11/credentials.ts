// Session credentials for the PKCS#11 module: C_Login trades a PIN for one, and every later
// request carries it. A credential names its principal and role under an HMAC keyed by the
// gateway's credential key (kept on disk), so an application stays logged in across gateway
// restarts while its PIN never leaves C_Login. Each use re-reads the principal, so removing a
// principal or changing its role ends its sessions; C_Logout revokes the one credential.
//
// An application's credential also carries its PIN key (policy/evidence.ts: the Ed25519 key
// the signers verify each Sign/Decrypt statement with), sealed with AES-256-GCM under a key
// derived from the credential key: the module holds it without being able to read it, and the
// gateway needs no per-session memory to sign statements after a restart.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Principal, PrincipalRegistry, Role } from '../principals.js';

const PREFIX = 'p11v1';
const MAX_REVOKED = 100_000;

const payloadSchema = z.object({
  p: z.string(),
  r: z.enum(['admin', 'app', 'auditor']),
  n: z.string().regex(/^[0-9a-f]{32}$/),
  t: z.number(),
  /** The sealed PIN key: base64url(iv ‖ ciphertext ‖ tag). */
  k: z.string().regex(/^[A-Za-z0-9_-]{80}$/).optional(),
});

export class Credentials {
  private readonly revoked = new Set<string>();

  constructor(
    private readonly key: Buffer,
    private readonly principals: PrincipalRegistry,
  ) {}

  /** A credential for `p`, carrying its 32-byte PIN key sealed when one is given. */
  issue(p: Principal, pinKey?: Uint8Array): string {
    const n = randomBytes(16).toString('hex');
    const k = pinKey ? this.seal(pinKey, n) : undefined;
    const payload = Buffer.from(JSON.stringify({ p: p.name, r: p.role, n, t: Date.now(), ...(k ? { k } : {}) })).toString('base64url');
    return `${PREFIX}.${payload}.${this.mac(payload)}`;
  }

  /** The PIN key sealed in a valid credential, if it carries one. The caller wipes it after use. */
  pinKey(credential: string): Uint8Array | undefined {
    const payload = this.payload(credential);
    if (!payload?.k || this.revoked.has(payload.n)) return undefined;
    const sealed = Buffer.from(payload.k, 'base64url');
    const d = createDecipheriv('aes-256-gcm', this.sealKey(), sealed.subarray(0, 12));
    d.setAAD(Buffer.from(payload.n));
    d.setAuthTag(sealed.subarray(44));
    try {
      return new Uint8Array(Buffer.concat([d.update(sealed.subarray(12, 44)), d.final()]));
    } catch {
      return undefined;
    }
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

  /** The credential's nonce is the AAD, so a sealed key cannot move to another credential. */
  private seal(pinKey: Uint8Array, nonce: string): string {
    if (pinKey.length !== 32) throw new Error('a PIN key is 32 bytes');
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.sealKey(), iv);
    c.setAAD(Buffer.from(nonce));
    const body = Buffer.concat([c.update(pinKey), c.final()]);
    return Buffer.concat([iv, body, c.getAuthTag()]).toString('base64url');
  }

  private sealKey(): Buffer {
    return createHmac('sha256', this.key).update('p11v1 pin-key seal').digest();
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(`${PREFIX}.${payload}`).digest('base64url');
  }
}
