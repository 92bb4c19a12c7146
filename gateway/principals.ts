// Principals the gateway authenticates: AWS-style access keys (SigV4) and PKCS#11 PINs.
//
// SigV4 is a shared-secret MAC: whoever verifies a request holds the secret. So the gateway
// holds no principal's secret: every principal's lives at the signers (signers/node/guard/),
// which authenticate requests for the gateway and check each one that changes or uses a key —
// a compromised gateway can forge none. Of a PIN the gateway sees and keeps only the login key's
// hash (policy/evidence.ts: the module derives the keys; the request key that signers check is
// not the gateway's). Principals are added and removed after bootstrap by approved proposals
// (gateway/governance.ts), the signers doing the same.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_PIN_ITERATIONS, derivePinKeys, loginKeyHash, pinKdfSchema, type PinKdf } from '../policy/index.js';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { readJsonFile } from '../contract/io/json-file.js';

export const roleSchema = z.enum(['admin', 'app', 'auditor']);
export type Role = z.infer<typeof roleSchema>;

// Strict: a file that still carries a secret (made by an older version) is refused, not used.
const principalSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/),
  role: roleSchema,
  accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/),
  /** SHA-256 of the PIN's login key: finds the principal at C_Login. */
  pinLoginHash: z.string().regex(/^[0-9a-f]{64}$/),
});
export type Principal = z.infer<typeof principalSchema>;
const fileSchema = z.object({ principals: z.array(principalSchema) });

export interface NewPrincipal {
  name: string;
  role: Role;
  accessKeyId: string;
  secretAccessKey: string;
  pin: string;
  /** Applications and administrators (their PKCS#11 requests): the PIN's request key (hex), for the signers only. */
  pinRequestKey?: string;
}

/** Roles that log in over PKCS#11 (CKU_USER, CKU_SO), whose requests the signers check by the PIN's request key. */
export const hasPinRequestKey = (role: Role): boolean => role === 'app' || role === 'admin';

/** A principal's own secrets, made where the principal is (`admin init`, `principal request`). */
export const newCredentials = () => ({
  accessKeyId: 'MPC' + randomBytes(10).toString('hex').toUpperCase().slice(0, 17),
  secretAccessKey: randomBytes(30).toString('base64').replace(/[+/]/g, 'x'),
  pin: randomBytes(9).toString('base64url'),
});
export type Credentials = ReturnType<typeof newCredentials>;

/**
 * A principal's credentials with its PIN's keys derived with the cluster's `kdf`, made by the
 * principal's (or the proposing administrator's) tool: `record` is what the gateway keeps.
 */
export function newPrincipal(name: string, role: Role, kdf: PinKdf, c: Credentials = newCredentials()): { record: Principal; credentials: NewPrincipal } {
  const { loginKey, requestKey } = derivePinKeys(c.pin, kdf);
  try {
    return {
      record: { name, role, accessKeyId: c.accessKeyId, pinLoginHash: loginKeyHash(loginKey) },
      credentials: { name, role, ...c, ...(hasPinRequestKey(role) ? { pinRequestKey: Buffer.from(requestKey).toString('hex') } : {}) },
    };
  } finally {
    loginKey.fill(0);
    requestKey.fill(0);
  }
}

export class PrincipalRegistry {
  private readonly byAccessKey = new Map<string, Principal>();
  constructor(private readonly file: string) {
    if (existsSync(file)) for (const p of readJsonFile(file, fileSchema).principals) this.byAccessKey.set(p.accessKeyId, p);
  }

  all(): Principal[] {
    return [...this.byAccessKey.values()];
  }

  addAll(ps: Principal[]): Promise<void> {
    return this.update([], ps);
  }

  /** Removes the principals named `remove`, then adds `add`, in one atomic write. */
  async update(remove: readonly string[], add: readonly Principal[]): Promise<void> {
    const next = new Map([...this.byAccessKey].filter(([, p]) => !remove.includes(p.name)));
    for (const p of add) {
      if ([...next.values()].some((q) => q.name === p.name)) throw new Error(`principal ${p.name} exists`);
      if (next.has(p.accessKeyId)) throw new Error(`access key id ${p.accessKeyId} is in use`);
      next.set(p.accessKeyId, principalSchema.parse(p));
    }
    await writeFileAtomic(this.file, Buffer.from(JSON.stringify({ principals: [...next.values()] }, null, 2) + '\n'), 0o600);
    this.byAccessKey.clear();
    for (const [k, p] of next) this.byAccessKey.set(k, p);
  }

  byName(name: string): Principal | undefined {
    return this.all().find((p) => p.name === name);
  }

  byAccessKeyId(id: string): Principal | undefined {
    return this.byAccessKey.get(id);
  }

  /** The principal whose PIN derives this login key, among those allowed `roles`; constant-time per candidate. */
  byLoginKey(loginKey: Uint8Array, roles: readonly Role[]): Principal | undefined {
    const a = Buffer.from(loginKeyHash(loginKey), 'hex');
    let found: Principal | undefined;
    for (const p of this.byAccessKey.values()) {
      if (roles.includes(p.role) && timingSafeEqual(a, Buffer.from(p.pinLoginHash, 'hex'))) found = p;
    }
    return found;
  }
}

// ---- the cluster's PIN key derivation (public: the module fetches it at C_Login) ----------

export const pinKdfFile = (gatewayDir: string) => path.join(gatewayDir, 'pin-kdf.json');

export const readPinKdf = (gatewayDir: string): PinKdf => readJsonFile(pinKdfFile(gatewayDir), pinKdfSchema);

/** Made once, at the gateway's initialisation: one salt for the cluster, as the module derives a PIN's keys before it knows whose PIN it is. */
export async function createPinKdf(gatewayDir: string): Promise<PinKdf> {
  const kdf = { salt: randomBytes(16).toString('hex'), iterations: DEFAULT_PIN_ITERATIONS };
  await writeFileAtomic(pinKdfFile(gatewayDir), Buffer.from(JSON.stringify(kdf, null, 2) + '\n'), 0o644);
  return kdf;
}
