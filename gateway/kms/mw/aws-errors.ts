// The one place a failed KMS request gets AWS's shape: the error name, message and HTTP status
// (kms/errors.ts). Server-side faults are logged with their message, client errors by name only.
import type { Logger } from 'pino';
import { asKmsError } from '../errors.js';
import { answer, type KmsMiddleware } from './state.js';

export function awsErrors(log: Logger): KmsMiddleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (e) {
      const err = asKmsError(e);
      if (err.status >= 500) log.warn({ requestId: ctx.state.requestId, err: e instanceof Error ? e.message : String(e) }, 'kms request failed');
      Object.assign(ctx.state, { status: err.status, outcome: err.type, reason: `${err.type}: ${err.message}` });
      ctx.status = err.status;
      // Rather than drain the rest of an oversized body, drop the connection after answering.
      if (err.status === 413) ctx.set('Connection', 'close');
      answer(ctx, JSON.stringify(err.body()));
    }
  };
}
