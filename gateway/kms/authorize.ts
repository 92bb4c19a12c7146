// The one place the KMS facade decides whether a principal may call an operation (on a key).
// Until the policy engine lands, every bootstrap principal may call everything; the engine
// replaces this body (roles, key policies), and every operation already passes through here:
// once for the operation, and once for each key it touches.
import type { KeyRecord } from '../keys.js';
import type { Principal } from '../principals.js';
import { KmsError } from './errors.js';

const BOOTSTRAP_ROLES: ReadonlySet<Principal['role']> = new Set(['admin', 'app', 'auditor']);

export function authorize(principal: Principal, operation: string, key?: KeyRecord): void {
  if (BOOTSTRAP_ROLES.has(principal.role)) return;
  const on = key ? ` on key ${key.keyId}` : '';
  throw new KmsError('AccessDeniedException', `${principal.name} is not authorized to perform kms:${operation}${on}`);
}
