// Repeats of a signed request (kms/repeats.ts): `claim` answers one as its first request was
// answered; `release`, outside the audit, gives this request's answer to its repeats once recorded.
import type { RepeatAnswers } from '../repeats.js';
import { answer, type KmsMiddleware } from './state.js';

export function claim(repeats: RepeatAnswers): KmsMiddleware {
  return async (ctx, next) => {
    const s = ctx.state;
    const claimed = (s.claim = await repeats.claim(s.received!));
    if (!('earlier' in claimed)) return next();
    ({ requestId: s.repeatOf, operation: s.operation, keyId: s.keyId } = claimed.earlier);
    answer(ctx, claimed.earlier.body);
  };
}

/** Repeats get this answer only once it is recorded (an unrecorded answer was withheld). */
export const release: KmsMiddleware = async (ctx, next) => {
  await next();
  const s = ctx.state;
  if (!s.claim || !('settle' in s.claim)) return;
  s.claim.settle(s.status < 300 && s.operation ? { requestId: s.requestId, operation: s.operation, ...(s.keyId ? { keyId: s.keyId } : {}), body: typeof ctx.body === 'string' ? ctx.body : '' } : undefined);
};
