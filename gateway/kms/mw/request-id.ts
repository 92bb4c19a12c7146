// First in the chain: the request's id and start, and after it, the id to the client
// (x-amzn-RequestId) and one log line (principal, operation, key, outcome), never the body.
// The line's `requestId` is the gateway's audit entries' `detail.requestId`; its `session`, where
// the request ran one, is their `request` and the signers' entries' `request` (docs/operations.md, "Logs").
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { KmsMiddleware } from './state.js';

export function requestId(log: Logger): KmsMiddleware {
  return async (ctx, next) => {
    const s = Object.assign(ctx.state, { requestId: randomUUID(), started: Date.now(), status: 200, outcome: 'ok', reason: '' });
    await next();
    ctx.set('x-amzn-RequestId', s.requestId);
    log.info({ requestId: s.requestId, principal: s.principal?.name, operation: s.operation, keyId: s.keyId, ...(s.opCtx?.trace?.session ? { session: s.opCtx.trace.session } : {}), outcome: s.outcome, status: s.status, ms: Date.now() - s.started, ...(s.repeatOf ? { repeatOf: s.repeatOf } : {}) }, 'kms');
  };
}
