// The key policies and principals as the policy engine sees them at the gateway: a key's policy
// document (the one PutKeyPolicy gave it, or the default, computed exactly as each signer
// computes it from its own registry), parsed once per text, and a principal's ARN.
import { defaultKeyPolicy, parseKeyPolicy, type AuthorizeInput, type KeyPolicy } from '../../policy/index.js';
import type { GatewayConfig } from '../config.js';
import type { KeyRecord } from '../keys.js';
import { KmsError } from '../kms/errors.js';
import type { KmsState } from '../kms/state.js';
import type { Principal, PrincipalRegistry } from '../principals.js';

export class KeyPolicies {
  private readonly parsed = new Map<string, KeyPolicy>();
  private defaultText = '';

  constructor(
    private readonly config: GatewayConfig,
    private readonly principals: PrincipalRegistry,
    private readonly kmsState: KmsState,
  ) {
    this.refresh();
  }

  /** Computed exactly as each signer computes it from its own registry (signers/node/guard/); again after each change of principals. */
  refresh(): void {
    const named = (role: Principal['role']) => this.principals.all().filter((p) => p.role === role).map((p) => p.name).sort();
    this.defaultText = JSON.stringify(defaultKeyPolicy(this.config.account, named('admin'), named('app'), named('auditor')), null, 2);
  }

  principalOf(p: Principal): AuthorizeInput['principal'] {
    return { name: p.name, role: p.role, arn: `arn:aws:iam::${this.config.account}:user/${p.name}` };
  }

  /** The policy of a key created without one (the same document the signers compute). */
  defaultPolicyText(): string {
    return this.defaultText;
  }

  policyText(keyId: string): string {
    return this.kmsState.policy(keyId) ?? this.defaultText;
  }

  /** Whether a key's policy sets a rate limit (one it cannot evaluate allows nothing anyway). */
  rateLimited(keyId: string): boolean {
    try {
      return this.parsedPolicy(keyId).mpchsm?.rateLimit !== undefined;
    } catch {
      return false;
    }
  }

  keyInput(key: KeyRecord): NonNullable<AuthorizeInput['key']> {
    return { arn: `arn:aws:kms:${this.config.region}:${this.config.account}:key/${key.keyId}`, policy: this.parsedPolicy(key.keyId), keySpec: key.keySpec, keyUsage: key.keyUsage, origin: key.origin };
  }

  private parsedPolicy(keyId: string): KeyPolicy {
    const text = this.policyText(keyId);
    let policy = this.parsed.get(text);
    if (!policy) {
      try {
        policy = parseKeyPolicy(text);
      } catch (e) {
        throw new KmsError('AccessDeniedException', `key ${keyId} has a key policy mpchsm cannot evaluate (${(e as Error).message}); nothing is allowed on it until an approved PutKeyPolicy replaces it`);
      }
      if (this.parsed.size > 10_000) this.parsed.clear();
      this.parsed.set(text, policy);
    }
    return policy;
  }
}
