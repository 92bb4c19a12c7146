// Logging in and out, the cluster's PIN parameters, and what the module asks before an
// operation it expects this login to be refused (C_*Init, C_InitPIN, C_SetPIN), so that the
// refusal is decided and recorded by the gateway.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { CKR, CKU, P11Error } from '../../../contract/pkcs11/ck.js';
import { anyArgs, bytes, p11Operation, uint } from '../request.js';
import { checkNamed, requireRole } from '../roles.js';
import { keyOf } from '../token.js';

/** Slows every wrong PIN a little: each guess costs the caller a PBKDF2 derivation too. */
const PIN_FAILURE_DELAY_MS = 250;

/** C_Login: the module sends the PIN's login key (policy/evidence.ts), never the PIN. */
export const login = p11Operation({ login: 'none', args: z.tuple([uint, bytes]) }, async (deps, { args: [userType, loginKey], log }) => {
  if (userType !== CKU.USER && userType !== CKU.SO) throw new P11Error(CKR.USER_TYPE_INVALID, `user type ${userType}`);
  const role = userType === CKU.SO ? 'admin' : 'app';
  const principal = loginKey.length === 32 ? deps.principals.byLoginKey(loginKey, [role]) : undefined;
  loginKey.fill(0);
  if (!principal) {
    await sleep(PIN_FAILURE_DELAY_MS);
    throw new P11Error(CKR.PIN_INCORRECT, `no ${role === 'admin' ? 'key administrator' : 'application principal'} has this PIN`);
  }
  log.principal = principal.name;
  log.authenticated = true;
  return [Buffer.from(deps.credentials.issue(principal)), Buffer.from(principal.name)];
});

/** The cluster's PIN key derivation (public), which the module needs before it can log in. */
export const pinKdf = p11Operation({ login: 'none', args: anyArgs }, (deps) => [Buffer.from(deps.pinKdf.salt, 'hex'), deps.pinKdf.iterations]);

/** C_Logout: ending a login needs only a genuine credential; one that already expired ends quietly too. */
export const logout = p11Operation({ login: 'none', args: anyArgs }, (deps, { credential, log }) => {
  const name = deps.credentials.revoke(credential);
  if (name === undefined) throw new P11Error(CKR.USER_NOT_LOGGED_IN, 'no valid session credential to log out');
  log.principal = name;
  return [];
});

/**
 * C_SignInit, C_DecryptInit, C_VerifyInit and C_EncryptInit with a token key under a login whose
 * role may not use keys, and C_InitPIN and C_SetPIN: the module asks here so that the refusal
 * is decided and recorded by the gateway. Principals and their PINs are the gateway's registry
 * (made by `mpchsm up`), so PINs are never set through PKCS#11.
 */
export const check = p11Operation({ login: 'principal', args: z.tuple([bytes, bytes]) }, (deps, { principal, args: [nameBytes, uid], log }) => {
  const name = nameBytes.toString('utf8');
  if (name === 'init_pin' || name === 'set_pin') {
    log.op = name;
    // C_InitPIN belongs to the security officer (PKCS#11 3.0 §5.6: "R/W SO Functions" state).
    if (name === 'init_pin' && principal.role !== 'admin') throw new P11Error(CKR.USER_NOT_LOGGED_IN, 'C_InitPIN needs a key administrator (CKU_SO) login');
    throw new P11Error(CKR.FUNCTION_NOT_SUPPORTED, "PINs belong to mpchsm's principals and are set when a principal is made, not through PKCS#11");
  }
  const c = checkNamed(name);
  if (!c) throw new P11Error(CKR.ARGUMENTS_BAD, `nothing to check called ${name.slice(0, 32)}`);
  log.op = `${name}_init`;
  keyOf(deps, uid, c.key, log);
  requireRole(principal, c.operation, c.what);
  return [];
});
