// Principals the gateway authenticates: AWS-style access keys (SigV4) and PKCS#11 PINs.
//
// SigV4 is a shared-secret MAC: whoever verifies a request holds the secret. The gateway holds
// the secrets of administrators and auditors only; application secrets live at the signers
// (signers/node/guard.ts), which verify application requests — so a compromised gateway cannot
// forge one. PINs are kept only as scrypt hashes. Principals are added and removed after
// bootstrap by approved proposals (gateway/governance.ts), the signers doing the same.
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { pinKdfSchema } from '../policy/index.js';
import { writeFileAtomic } from '../signers/node/atomic.js';

export const roleSchema = z.enum(['admin', 'app', 'auditor']);
export type Role = z.infer<typeof roleSchema>;

const PIN_SCRYPT = { N: 1 << 14, r: 8, p: 1 } as const;

const principalSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/),
  role: roleSchema,
  accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/),
  /** Absent for application principals: the signers verify their requests. */
  secretAccessKey: z.string().min(20).optional(),
  pinSalt: z.string(),
  pinHash: z.string(),
});
export type Principal = z.infer<typeof principalSchema>;
const fileSchema = z.object({ principals: z.array(principalSchema) });

export interface NewPrincipal {
  name: string;
  role: Role;
  accessKeyId: string;
  secretAccessKey: string;
  pin: string;
}

export function newPrincipal(name: string, role: Role): { record: Principal; credentials: NewPrincipal } {
  const accessKeyId = 'MPC' + randomBytes(10).toString('hex').toUpperCase().slice(0, 17);
  const secretAccessKey = randomBytes(30).toString('base64').replace(/[+/]/g, 'x');
  const pin = randomBytes(9).toString('base64url');
  const pinSalt = randomBytes(16).toString('hex');
  return {
    record: { name, role, accessKeyId, secretAccessKey, pinSalt, pinHash: hashPin(pin, pinSalt) },
    credentials: { name, role, accessKeyId, secretAccessKey, pin },
  };
}

const hashPin = (pin: string, saltHex: string) => scryptSync(pin, Buffer.from(saltHex, 'hex'), 32, PIN_SCRYPT).toString('hex');

/** The record the gateway keeps: an application's secret is the signers' alone. */
export const gatewayRecord = (p: Principal): Principal => {
  if (p.role !== 'app') return p;
  const { secretAccessKey: _held, ...rest } = p;
  return rest;
};

export class PrincipalRegistry {
  private readonly byAccessKey = new Map<string, Principal>();
  constructor(private readonly file: string) {
    if (existsSync(file)) for (const p of fileSchema.parse(JSON.parse(readFileSync(file, 'utf8'))).principals) this.byAccessKey.set(p.accessKeyId, p);
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

  /** The principal whose PIN this is, among those allowed `roles`; constant-time per candidate. */
  byPin(pin: string, roles: readonly Role[]): Principal | undefined {
    let found: Principal | undefined;
    for (const p of this.byAccessKey.values()) {
      if (!roles.includes(p.role)) continue;
      const a = Buffer.from(hashPin(pin, p.pinSalt), 'hex');
      if (timingSafeEqual(a, Buffer.from(p.pinHash, 'hex'))) found = p;
    }
    return found;
  }
}

// ---- PIN verifiers (public: what the PKCS#11 path derives an application's PIN key with) ----

export const pinVerifiersFile = (gatewayDir: string) => path.join(gatewayDir, 'pin-verifiers.json');
const pinVerifiersSchema = z.strictObject({
  kdf: pinKdfSchema,
  verifiers: z.array(z.strictObject({ principal: z.string(), publicKey: z.string().regex(/^[0-9a-f]{64}$/) })),
});
export type PinVerifiers = z.infer<typeof pinVerifiersSchema>;

export const readPinVerifiers = (gatewayDir: string): PinVerifiers => pinVerifiersSchema.parse(JSON.parse(readFileSync(pinVerifiersFile(gatewayDir), 'utf8')));

export const writePinVerifiers = (gatewayDir: string, v: PinVerifiers): Promise<void> =>
  writeFileAtomic(pinVerifiersFile(gatewayDir), Buffer.from(JSON.stringify(pinVerifiersSchema.parse(v), null, 2) + '\n'), 0o644);
