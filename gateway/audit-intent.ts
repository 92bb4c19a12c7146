// Write-ahead audit at the gateway: every request the gateway fans out to signers is recorded as
// intended before any signer can release under it, and as finished after.
//
// A request runs inside an `AuditedRequest` (the KMS middleware, the PKCS#11 listener, the
// cluster's own resharings). Every signer call passes `beforeSignerCall` (gateway/signer-client.ts):
// the first call under a request id the signers record (signerAuditRequest: the protocol session,
// or the key of an RSA share) starts an intent entry naming that id, the operation, key,
// principal and digest; a call that may release a partial or a key share (its answer carries the
// signer's audit head) leaves only once the intent is durable. Earlier rounds (commitments,
// round-1 messages) release nothing and go out while the intent is written, so the fsync overlaps
// them. `finish` then records the outcome: the request's entry, one for each session it gave up,
// and a failed entry for each intent no other entry closes. A crash between the two leaves an
// intent without outcome, which `audit verify` reports as an interrupted request, not tampering.
import { AsyncLocalStorage } from 'node:async_hooks';
import { z } from 'zod';
import type { AuditEventInput, AuditIntentInput } from '../audit/entry.js';
import type { AuditLog } from '../audit/log.js';
import { signerAuditRequest } from '../contract/signer-rpc/audit.js';
import type { Route } from '../contract/signer-rpc/route.js';
import { signerRoutes } from '../contract/signer-rpc/routes.js';

/** What an intent says about its request, read when the first signer call goes out. */
export type IntentFields = Pick<AuditIntentInput, 'op' | 'principal' | 'keyId' | 'operation' | 'algorithm' | 'digest' | 'detail'>;

interface Intent {
  /** The intent's durable write. */
  written: Promise<unknown>;
  /** The signers called under it. */
  signers: Map<string, { name: string; id: number }>;
}

const current = new AsyncLocalStorage<AuditedRequest>();

/** What `finish` reads of a request's trace (gateway/cluster-outcome.ts `Trace`, which imports the signer client). */
interface Sessions {
  session?: string;
  signers?: readonly { name: string; id: number }[];
  abandoned?: { session: string; signers: { name: string; id: number }[] }[];
}

/** The entries of the sessions a request abandoned, beside its own `entry`: it asked for the partials released in them too. */
export const abandonedEntries = (trace: Sessions | undefined, entry: AuditEventInput): AuditEventInput[] =>
  (trace?.abandoned ?? []).map((a) => ({
    ...entry,
    request: a.session,
    session: a.session,
    signers: a.signers,
    outcome: 'failed',
    reason:
      a.session === trace!.session
        ? 'asked, answer not used: the request was served by the other signers of this session'
        : `session abandoned${trace!.session ? `; the request went on as session ${trace!.session}` : ''}`,
    output: 'none',
  }));

/** A route whose answer carries the signer's audit head: one that may release a partial or a key share. */
const releases = (route: Route): boolean => route.response instanceof z.ZodObject && 'audit' in route.response.shape;

export class AuditedRequest {
  private readonly intents = new Map<string, Intent>();

  constructor(
    private readonly audit: AuditLog,
    /** Read at the first signer call, when the request's key and digest are known. */
    private readonly describe: () => IntentFields,
  ) {}

  /** Runs `f` as this request: its signer calls are preceded by intents. */
  run<T>(f: () => Promise<T>): Promise<T> {
    return current.run(this, f);
  }

  /**
   * Records how the request ended, in one group commit: an entry for each session `trace` gave
   * up, a failed entry for each intent nothing else closes (a session no signer answered), and
   * `entry` itself.
   */
  async finish(entry: AuditEventInput, trace: Sessions | undefined): Promise<void> {
    const entries = [...abandonedEntries(trace, entry), entry];
    const closed = new Set(entries.map((e) => e.request));
    const open = [...this.intents].filter(([request]) => !closed.has(request));
    const unfinished = open.map(([request, i]): AuditEventInput => ({
      ...entry,
      request,
      session: request,
      signers: [...i.signers.values()],
      outcome: 'failed',
      reason: `session not completed${entry.request === request ? '' : `; the request went on as ${entry.request}`}`,
      output: 'none',
    }));
    await Promise.all([...unfinished, ...entries].map((e) => this.audit.append(e)));
  }

  /** Starts (once per request id) the intent for a call; resolves when the call may leave. */
  intend(signer: { name: string; id: number }, route: Route, body: unknown): Promise<unknown> | undefined {
    const request = signerAuditRequest(body);
    let intent = this.intents.get(request);
    if (!intent) {
      const session = typeof (body as { session?: unknown }).session === 'string' ? request : undefined;
      const written = this.audit.intend({ ...this.describe(), request, ...(session ? { session } : {}), startedAt: Date.now() });
      // A failed write is reported by the call that waits for it, and by the outcome.
      written.catch(() => undefined);
      intent = { written, signers: new Map() };
      this.intents.set(request, intent);
    }
    intent.signers.set(signer.name, { name: signer.name, id: signer.id });
    return releases(route) ? intent.written : undefined;
  }
}

/**
 * Called by the signer client before a request leaves: inside an audited request, a call under
 * a protocol session (or one that may release) waits for its intent as `intend` says. Outside
 * one (health, anchors, changes the change log records first), or for a SigV4 check (it comes
 * before any fan-out and releases nothing), there is nothing to wait for.
 */
export function beforeSignerCall(signer: { name: string; id: number }, route: Route, body: unknown): Promise<unknown> | undefined {
  const request = current.getStore();
  if (!request || route.path === signerRoutes.auth.sigv4.path) return undefined;
  const underSession = typeof (body as { session?: unknown } | null)?.session === 'string';
  if (!underSession && !releases(route)) return undefined;
  return request.intend(signer, route, body);
}
