// The role ceilings of PKCS#11 requests: the KMS operation each amounts to, checked as for the
// KMS API (policy/roles.ts), and what the module asks before an operation it expects refused.
import { CKR, P11Error } from '../../contract/pkcs11/ck.js';
import { roleAllows, type Action } from '../../policy/roles.js';
import type { Principal } from '../principals.js';

/**
 * The role ceiling of the KMS operation a request amounts to (policy/roles.ts, as for the KMS
 * API). Refused with CKR_USER_NOT_LOGGED_IN: "the appropriate user is not logged in" is what
 * PKCS#11 answers when the other user type could do it.
 */
export function requireRole(p: Principal, operation: string, what: string): void {
  const action = `kms:${operation}` as Action;
  if (roleAllows(p.role, action)) return;
  const need = roleAllows('app', action) ? 'an application principal (CKU_USER)' : 'a key administrator (CKU_SO)';
  const why = p.role === 'admin' ? '; key administrators never sign, verify, encrypt or decrypt' : p.role === 'app' ? '; applications do not create, relabel or delete keys' : '';
  throw new P11Error(CKR.USER_NOT_LOGGED_IN, `${what} needs ${need}${why}`);
}

/** The role ceiling of an operation, and what it is called in a refusal. */
export interface RoleNeed {
  operation: string;
  what: string;
}
type Checked = RoleNeed & { key: 'priv' | 'any' };

/** What the module asks before starting an operation it expects this login to be refused. */
export const CHECKED = {
  sign: { operation: 'Sign', what: 'signing', key: 'priv' },
  decrypt: { operation: 'Decrypt', what: 'decryption', key: 'priv' },
  verify: { operation: 'Verify', what: 'verification with a token key', key: 'any' },
  encrypt: { operation: 'Encrypt', what: 'encryption with a token key', key: 'any' },
} as const satisfies Readonly<Record<string, Checked>>;

/** The check the module asks for by `name` (own names only: `toString` is not a check). */
export const checkNamed = (name: string): Checked | undefined => (Object.hasOwn(CHECKED, name) ? (CHECKED as Readonly<Record<string, Checked>>)[name] : undefined);
