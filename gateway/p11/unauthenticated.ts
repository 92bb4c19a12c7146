// Which count of the unauthenticated tally (gateway/unauthenticated.ts) a PKCS#11 request with
// no login behind it goes to.
import { CKR } from '../../contract/pkcs11/ck.js';
import type { RequestLog } from './request.js';

export function classify(log: RequestLog): string {
  if (log.op === 'login') return 'loginFailed';
  if (log.op === 'find' && log.rv === CKR.OK) return 'publicFinds';
  if (log.rv === CKR.OK) return 'publicKeyOps';
  if (log.rv === CKR.USER_NOT_LOGGED_IN) return 'noLogin';
  if (log.rv === CKR.ARGUMENTS_BAD) return 'malformed';
  return 'otherFailed';
}
