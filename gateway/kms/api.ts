// The AWS KMS API (JSON 1.1) at POST /: read a bounded body → SigV4 → operation → validate →
// authorize → run, answering in AWS's shapes. Each request leaves one log line (principal,
// operation, key, outcome) and never its body, plaintexts or secrets.
//
// Every principal is authenticated by a signer, which alone holds the secrets
// (gateway/governance.ts). An operation under quorum becomes a proposal
// (gateway/proposals.ts); MpcHsm.<name> targets approve and inspect proposals, and propose
// principal and governance changes. Changes the signers keep a copy of are forwarded to them
// once executed.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type Koa from 'koa';
import { sigv4Evidence, sigv4EvidenceSchema } from '../../policy/index.js';
import { gatewayPolicy } from '../governance.js';
import { isMembershipAction } from '../governance/membership.js';
import { reshareAfterRemoval } from '../remove-signer.js';
import { admitSigner } from '../add-signer.js';
import { refreshKeyShares } from '../refresh-shares.js';
import type { StoredProposal } from '../proposals.js';
import { isMpcHsmOperation, runMpcHsm, type Executed } from './mpchsm.js';
import type { AuditEventInput } from '../../audit/entry.js';
import { readLog } from '../../audit/verify.js';
import { abandonedEntries } from '../cluster-outcome.js';
import { auditLogPath } from '../../audit/paths.js';
import type { GatewayDeps } from '../deps.js';
import { OpContext, type OpExtras } from './context.js';
import { KmsError, asKmsError } from './errors.js';
import { executeOperation } from './execute.js';
import { Arns } from './ids.js';
import { parseInput, parseJsonBody } from './input.js';
import { OPERATIONS } from './ops/index.js';
import { RepeatAnswers, type Claim } from './repeats.js';
import type { UnauthenticatedTally } from '../unauthenticated.js';
import type { ReceivedRequest } from '../../policy/index.js';

/** Largest request body accepted: well above KMS's largest request (a 32 KiB policy, escaped). */
const MAX_BODY_BYTES = 256 * 1024;
const CONTENT_TYPE = 'application/x-amz-json-1.1';
const TARGET_PREFIX = 'TrentService.';
const MPCHSM_PREFIX = 'MpcHsm.';

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

const OUTPUT_OF: Record<string, 'signature' | 'plaintext' | 'key'> = { Sign: 'signature', Decrypt: 'plaintext', CreateKey: 'key', RefreshKeyShares: 'key' };

/** One audit entry per KMS request: who, what, on which key, with which signers, and how it ended. */
async function recordRequest(
  deps: GatewayDeps,
  r: { requestId: string; started: number; source: string; principal?: { name: string; accessKeyId: string }; opCtx?: OpContext; operation?: string; status: number; reason: string; via?: string; proposed?: string; keyId?: string; repeatOf?: string },
): Promise<void> {
  const ok = r.status < 300;
  const trace = r.opCtx?.trace;
  const approvedBy = [...(r.opCtx?.approvedBy ?? [])];
  const entry: AuditEventInput = {
    request: trace?.session ?? r.requestId,
    op: r.operation ?? 'unknown',
    principal: { ...(r.principal ? { name: r.principal.name, accessKeyId: r.principal.accessKeyId } : {}), source: r.source },
    keyId: r.opCtx?.keyId ?? r.keyId,
    algorithm: r.opCtx?.algorithm,
    digest: r.opCtx?.digest,
    signers: trace && trace.signers.length > 0 ? trace.signers : undefined,
    session: trace?.session,
    ...(approvedBy.length ? { policy: { version: gatewayPolicy().governance.version, approvals: approvedBy } } : {}),
    outcome: ok ? 'ok' : r.status < 500 ? 'refused' : 'failed',
    reason: ok ? undefined : r.reason.slice(0, 1024),
    // A repeat released nothing new: it was answered as its first request was.
    output: ok && !r.repeatOf ? (OUTPUT_OF[r.operation ?? ''] ?? 'none') : 'none',
    startedAt: r.started,
    detail: {
      requestId: r.requestId,
      ...((r.opCtx?.proposal ?? r.proposed) ? { proposal: r.opCtx?.proposal ?? r.proposed } : {}),
      ...(r.via ? { via: r.via } : {}),
      ...(r.repeatOf ? { repeatOf: r.repeatOf } : {}),
    },
  };
  for (const e of abandonedEntries(trace, entry)) await deps.audit.append(e);
  await deps.audit.append(entry);
}

/** An approved proposal as a request carries it: the approvals, and the proposer's request if it came over the KMS API. */
const approvedOf = (stored: StoredProposal): NonNullable<OpExtras['approved']> => ({
  proposal: stored.proposal,
  approvals: stored.approvals,
  ...(stored.evidence !== undefined ? { evidence: stored.evidence } : {}),
});

/** `unauthenticated` counts requests no principal stands behind (no fsync'd entry each). */
export function kmsMiddleware(deps: GatewayDeps, unauthenticated: UnauthenticatedTally): Koa.Middleware {
  const state = deps.kmsState;
  const arns = new Arns(deps.config.region, deps.config.account);
  const repeats = new RepeatAnswers();
  /** Every request is verified by a signer: the gateway holds no principal's secret. */
  async function authenticate(req: ReceivedRequest, requestId: string): Promise<string> {
    const claimed = /Credential=([A-Za-z0-9]{1,128})\//.exec(req.headers.authorization?.[0] ?? '')?.[1];
    // An access key no principal has is refused without troubling a signer.
    if (claimed !== undefined && !deps.principals.byAccessKeyId(claimed)) throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    // Temporary (STS) credentials are no mpchsm principal's; a request the signers' schema cannot hold is the client's to fix.
    if (req.headers['x-amz-security-token']) throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    const evidence = sigv4EvidenceSchema.safeParse(sigv4Evidence(req));
    if (!evidence.success) throw new KmsError('ValidationException', `The request cannot be authenticated as sent: ${evidence.error.issues[0]?.path.join('.')}: ${evidence.error.issues[0]?.message}`);
    const id = await gatewayPolicy().authenticate(evidence.data, requestId);
    if (id !== claimed) throw new KmsError('KMSInternalException', 'a signer authenticated another access key than the request names');
    return id;
  }

  /** Runs an approved proposal as its proposer; `ran` gets its context (for the audit entry). */
  async function executeProposal(proposerName: string, stored: StoredProposal, ran: (c: OpContext) => void): Promise<Executed> {
    const name = stored.proposal.operation.replace(/^(kms|mpchsm):/, '');
    const proposer = deps.principals.all().find((p) => p.name === proposerName);
    if (!proposer) throw new KmsError('AccessDeniedException', `the proposer ${proposerName} is no longer a principal`);
    if (isMembershipAction(stored.proposal.operation)) {
      // Recorded as the operation it ran, with the proposal and who approved it.
      const opCtx = new OpContext(deps, state, arns, proposer, name, { parameters: {} });
      opCtx.proposal = stored.proposal.id;
      ran(opCtx);
      const r = await gatewayPolicy().membership.execute(stored);
      for (const a of r.approvedBy) opCtx.approvedBy.add(a);
      if (stored.proposal.operation === 'mpchsm:RemoveSigner') {
        const removed = (r.result as { Signer: { Name: string; Id: number } }).Signer;
        const policy = { version: gatewayPolicy().governance.version, approvals: r.approvedBy };
        const keys = await reshareAfterRemoval(deps, { name: removed.Name, id: removed.Id }, { principal: proposerName, proposal: stored.proposal.id, policy });
        return { operation: name, result: { ...r.result, ...keys }, changes: r.changes };
      }
      if (stored.proposal.operation === 'mpchsm:AddSigner') {
        const added = (r.result as { Signer: { Name: string } }).Signer;
        const policy = { version: gatewayPolicy().governance.version, approvals: r.approvedBy };
        const outcome = await admitSigner(deps, added.Name, { principal: proposerName, proposal: stored.proposal.id, request: stored.proposal.id, policy });
        return { operation: name, result: outcome, changes: r.changes };
      }
      return { operation: name, result: r.result, changes: r.changes };
    }
    if (stored.proposal.operation === 'mpchsm:RefreshKeyShares') {
      const opCtx = new OpContext(deps, state, arns, proposer, name, { parameters: stored.proposal.parameters, approved: approvedOf(stored) });
      opCtx.proposal = stored.proposal.id;
      ran(opCtx);
      return { operation: name, result: await refreshKeyShares(opCtx, stored.proposal.parameters) };
    }
    if (!stored.proposal.operation.startsWith('kms:') || !Object.hasOwn(OPERATIONS, name)) {
      throw new KmsError('UnsupportedOperationException', `${stored.proposal.operation} cannot be executed through the KMS API`);
    }
    const op = OPERATIONS[name]!;
    const opCtx = new OpContext(deps, state, arns, proposer, name, { parameters: stored.proposal.parameters, approved: approvedOf(stored) });
    opCtx.proposal = stored.proposal.id;
    ran(opCtx);
    return { operation: name, ...(await executeOperation(opCtx, op, parseInput(op.input, stored.proposal.parameters, name))) };
  }

  return async (ctx) => {
    const requestId = randomUUID();
    const started = Date.now();
    const entry: { principal?: string; operation?: string; keyId?: string } = {};
    let principal: { name: string; accessKeyId: string } | undefined;
    let opCtx: OpContext | undefined;
    let via: string | undefined;
    let proposed: string | undefined;
    let claim: Claim | undefined;
    let repeatOf: string | undefined;
    let reason = '';
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
      const received: ReceivedRequest = { method: ctx.method, path: ctx.path, query: queryRecord(ctx.querystring), headers: ctx.req.headersDistinct, body };
      const accessKeyId = await authenticate(received, requestId);
      const known = deps.principals.byAccessKeyId(accessKeyId)!;
      principal = known;
      entry.principal = known.name;

      const target = ctx.get('x-amz-target');
      claim = await repeats.claim(received);
      if ('earlier' in claim) {
        ({ requestId: repeatOf, operation: entry.operation, keyId: entry.keyId } = claim.earlier);
        ctx.set('Content-Type', CONTENT_TYPE);
        ctx.body = claim.earlier.body;
      } else if (target.startsWith(MPCHSM_PREFIX) && isMpcHsmOperation(target.slice(MPCHSM_PREFIX.length))) {
        const name = target.slice(MPCHSM_PREFIX.length) as Parameters<typeof runMpcHsm>[0];
        entry.operation = via = `MpcHsm.${name}`;
        if (ctx.get('content-type').split(';')[0]!.trim().toLowerCase() !== CONTENT_TYPE) throw new KmsError('SerializationException', `Content-Type must be ${CONTENT_TYPE}`);
        const policy = gatewayPolicy();
        try {
          const r = await runMpcHsm(name, parseJsonBody(body), {
            principal: known,
            store: policy.proposals,
            membership: policy.membership,
            describeCluster: () => policy.describe(),
            approvalsPerSignature: (keyId) => {
              const key = deps.cluster.keys.get(keyId);
              return key && (policy.keyPolicies.keyInput(key).policy.mpchsm?.approvalsPerSignature ?? 0);
            },
            // The approval that completes a proposal is recorded as the operation it ran.
            execute: (proposer, stored) => executeProposal(proposer, stored, (c) => (opCtx = c)),
            admitSigner: (signer) => admitSigner(deps, signer, { principal: known.name, request: requestId, policy: { version: policy.governance.version, approvals: [] } }),
            auditRecords: async () => (await readLog(auditLogPath(deps.dir), 'gateway')).lines.map((l) => ({ seq: l.entry.seq, entry: l.entry as unknown as Record<string, unknown> })),
          });
          proposed = r.proposed;
          ctx.set('Content-Type', CONTENT_TYPE);
          ctx.body = JSON.stringify(r.result);
        } finally {
          if (opCtx) [entry.operation, entry.keyId] = [opCtx.operation, opCtx.keyId];
        }
      } else if (target === `${MPCHSM_PREFIX}RefreshKeyShares`) {
        // A key operation of the cluster's own, recorded like one: its session, signers and new shares.
        entry.operation = 'RefreshKeyShares';
        via = target;
        if (ctx.get('content-type').split(';')[0]!.trim().toLowerCase() !== CONTENT_TYPE) throw new KmsError('SerializationException', `Content-Type must be ${CONTENT_TYPE}`);
        const json = parseJsonBody(body);
        const parameters = Object.fromEntries(Object.entries(json as object).filter(([, v]) => v !== null));
        const refresh = (opCtx = new OpContext(deps, state, arns, known, 'RefreshKeyShares', { parameters, evidence: sigv4Evidence(received) }));
        try {
          const result = await refreshKeyShares(refresh, json);
          ctx.set('Content-Type', CONTENT_TYPE);
          ctx.body = JSON.stringify(result);
        } finally {
          entry.keyId = refresh.keyId;
        }
      } else {
        const name = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : '';
        if (!Object.hasOwn(OPERATIONS, name)) {
          throw new KmsError('UnknownOperationException', `Unknown operation '${target.slice(0, 64)}'; X-Amz-Target must be TrentService.<operation>, one of ${Object.keys(OPERATIONS).join(', ')}`);
        }
        entry.operation = name;
        const op = OPERATIONS[name]!;
        if (ctx.get('content-type').split(';')[0]!.trim().toLowerCase() !== CONTENT_TYPE) {
          throw new KmsError('SerializationException', `Content-Type must be ${CONTENT_TYPE}`);
        }
        const json = parseJsonBody(body);
        const input = parseInput(op.input, json, name);
        const parameters = Object.fromEntries(Object.entries(json as object).filter(([, v]) => v !== null));
        opCtx = new OpContext(deps, state, arns, known, name, { parameters, evidence: sigv4Evidence(received) });
        try {
          const { result } = await executeOperation(opCtx, op, input);
          ctx.set('Content-Type', CONTENT_TYPE);
          ctx.body = result === undefined ? '' : JSON.stringify(result);
        } finally {
          entry.keyId = opCtx.keyId;
        }
      }
    } catch (e) {
      const err = asKmsError(e);
      // Server-side faults are logged with their message (never a body); client errors by name only.
      if (err.status >= 500) deps.log.warn({ requestId, err: e instanceof Error ? e.message : String(e) }, 'kms request failed');
      status = err.status;
      outcome = err.type;
      reason = `${err.type}: ${err.message}`;
      ctx.status = err.status;
      // Rather than drain the rest of an oversized body, drop the connection after answering.
      if (err.status === 413) ctx.set('Connection', 'close');
      ctx.set('Content-Type', CONTENT_TYPE);
      ctx.body = JSON.stringify(err.body());
    }
    // The gateway's transcript entry is durable before any answer leaves; without it, nothing does.
    try {
      if (!principal) unauthenticated.count(outcome.replace(/Exception$/, '').replace(/[^A-Za-z0-9]/g, '').slice(0, 32) || 'failed', ctx.ip);
      else await recordRequest(deps, {
        requestId,
        started,
        source: `${ctx.ip}`,
        principal,
        opCtx,
        operation: entry.operation,
        status,
        reason,
        ...(via ? { via } : {}),
        ...(proposed ? { proposed } : {}),
        ...(repeatOf ? { repeatOf, keyId: entry.keyId } : {}),
      });
    } catch (e) {
      deps.log.error({ requestId, err: (e as Error).message }, 'audit append failed; answer withheld');
      const err = new KmsError('KMSInternalException', 'The request could not be recorded; nothing was released', 500);
      status = err.status;
      ctx.status = err.status;
      ctx.body = JSON.stringify(err.body());
    }
    // Repeats get this answer only once it is recorded (an unrecorded answer was withheld).
    if (claim && 'settle' in claim) claim.settle(status < 300 && entry.operation ? { requestId, operation: entry.operation, ...(entry.keyId ? { keyId: entry.keyId } : {}), body: typeof ctx.body === 'string' ? ctx.body : '' } : undefined);
    ctx.set('x-amzn-RequestId', requestId);
    deps.log.info({ requestId, ...entry, outcome, status, ms: Date.now() - started, ...(repeatOf ? { repeatOf } : {}) }, 'kms');
  };
}
