// The AWS KMS API (JSON 1.1) at POST /: read a bounded body → SigV4 → operation → validate →
// authorize → run, answering in AWS's shapes. Each request leaves one log line (principal,
// operation, key, outcome) and never its body, plaintexts or secrets.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type Koa from 'koa';
import type { GatewayDeps } from '../server.js';
import { authorize } from './authorize.js';
import { OpContext } from './context.js';
import { KmsError, asKmsError } from './errors.js';
import { Arns } from './ids.js';
import { parseInput, parseJsonBody } from './input.js';
import { OPERATIONS } from './ops/index.js';
import { SigV4Verifier } from './sigv4.js';

/** Largest request body accepted: well above KMS's largest request (a 32 KiB policy, escaped). */
const MAX_BODY_BYTES = 256 * 1024;
const CONTENT_TYPE = 'application/x-amz-json-1.1';
const TARGET_PREFIX = 'TrentService.';

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const tooLarge = () => new KmsError('ValidationException', `The request body exceeds ${MAX_BODY_BYTES} bytes`, 413);
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function queryRecord(qs: string): Record<string, string | string[]> {
  const params = new URLSearchParams(qs);
  const out: Record<string, string | string[]> = {};
  for (const k of new Set(params.keys())) {
    const all = params.getAll(k);
    out[k] = all.length === 1 ? all[0]! : all;
  }
  return out;
}

const OUTPUT_OF: Record<string, 'signature' | 'plaintext' | 'key'> = { Sign: 'signature', Decrypt: 'plaintext', CreateKey: 'key' };

/** One audit entry per KMS request: who, what, on which key, with which signers, and how it ended. */
async function recordRequest(
  deps: GatewayDeps,
  r: { requestId: string; started: number; source: string; principal?: { name: string; accessKeyId: string }; opCtx?: OpContext; operation?: string; status: number; outcome: string },
): Promise<void> {
  const ok = r.status < 300;
  const trace = r.opCtx?.trace;
  await deps.audit.append({
    request: trace?.session ?? r.requestId,
    op: r.operation ?? 'unknown',
    principal: { ...(r.principal ? { name: r.principal.name, accessKeyId: r.principal.accessKeyId } : {}), source: r.source },
    keyId: r.opCtx?.keyId,
    algorithm: r.opCtx?.algorithm,
    digest: r.opCtx?.digest,
    signers: trace && trace.signers.length > 0 ? trace.signers : undefined,
    session: trace?.session,
    outcome: ok ? 'ok' : r.status < 500 ? 'refused' : 'failed',
    reason: ok ? undefined : r.outcome,
    output: ok ? (OUTPUT_OF[r.operation ?? ''] ?? 'none') : 'none',
    startedAt: r.started,
    detail: { requestId: r.requestId },
  });
}

export function kmsMiddleware(deps: GatewayDeps): Koa.Middleware {
  const state = deps.kmsState;
  const arns = new Arns(deps.config.region, deps.config.account);
  const verifier = new SigV4Verifier({
    region: deps.config.region,
    service: 'kms',
    secretFor: (id) => deps.principals.byAccessKeyId(id)?.secretAccessKey,
  });

  return async (ctx) => {
    const requestId = randomUUID();
    const started = Date.now();
    const entry: { principal?: string; operation?: string; keyId?: string } = {};
    let principal: { name: string; accessKeyId: string } | undefined;
    let opCtx: OpContext | undefined;
    let status = 200;
    let outcome = 'ok';
    try {
      if (ctx.path !== '/' || ctx.method !== 'POST') {
        throw new KmsError('UnknownOperationException', 'The KMS API is POST / with an X-Amz-Target header', 404);
      }
      if (ctx.get('content-encoding') && ctx.get('content-encoding') !== 'identity') {
        throw new KmsError('SerializationException', 'Compressed request bodies are not accepted');
      }
      const body = await readBody(ctx.req);
      const accessKeyId = await verifier.verify({
        method: ctx.method,
        path: ctx.path,
        query: queryRecord(ctx.querystring),
        headers: ctx.req.headersDistinct,
        body,
      });
      const known = deps.principals.byAccessKeyId(accessKeyId)!;
      principal = known;
      entry.principal = known.name;

      const target = ctx.get('x-amz-target');
      const name = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : '';
      if (!Object.hasOwn(OPERATIONS, name)) {
        throw new KmsError('UnknownOperationException', `Unknown operation '${target.slice(0, 64)}'; X-Amz-Target must be TrentService.<operation>, one of ${Object.keys(OPERATIONS).join(', ')}`);
      }
      entry.operation = name;
      const op = OPERATIONS[name]!;
      if (ctx.get('content-type').split(';')[0]!.trim().toLowerCase() !== CONTENT_TYPE) {
        throw new KmsError('SerializationException', `Content-Type must be ${CONTENT_TYPE}`);
      }
      const input = parseInput(op.input, parseJsonBody(body), name);
      authorize(known, name);
      opCtx = new OpContext(deps, state, arns, known, name);
      try {
        const result = await op.run(opCtx, input);
        ctx.set('Content-Type', CONTENT_TYPE);
        ctx.body = result === undefined ? '' : JSON.stringify(result);
      } finally {
        entry.keyId = opCtx.keyId;
      }
    } catch (e) {
      const err = asKmsError(e);
      // Server-side faults are logged with their message (never a body); client errors by name only.
      if (err.status >= 500) deps.log.warn({ requestId, err: e instanceof Error ? e.message : String(e) }, 'kms request failed');
      status = err.status;
      outcome = err.type;
      ctx.status = err.status;
      // Rather than drain the rest of an oversized body, drop the connection after answering.
      if (err.status === 413) ctx.set('Connection', 'close');
      ctx.set('Content-Type', CONTENT_TYPE);
      ctx.body = JSON.stringify(err.body());
    }
    // The gateway's transcript entry is durable before any answer leaves; without it, nothing does.
    try {
      await recordRequest(deps, { requestId, started, source: `${ctx.ip}`, principal, opCtx, operation: entry.operation, status, outcome });
    } catch (e) {
      deps.log.error({ requestId, err: (e as Error).message }, 'audit append failed; answer withheld');
      const err = new KmsError('KMSInternalException', 'The request could not be recorded; nothing was released', 500);
      status = err.status;
      ctx.status = err.status;
      ctx.body = JSON.stringify(err.body());
    }
    ctx.set('x-amzn-RequestId', requestId);
    deps.log.info({ requestId, ...entry, outcome, status, ms: Date.now() - started }, 'kms');
  };
}
