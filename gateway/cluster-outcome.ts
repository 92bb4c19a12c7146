// How a cluster operation ends, for the facades and the audit: the error of a request the cluster
// cannot serve, and the trace of the session that served it. Apart from cluster.ts so that the
// scheme coordinators (rsa.ts, ecdsa.ts), which cluster.ts uses, need not import it back.
import type { Attempt } from './planner.js';
import { SignerUnavailableError, type CallOptions, type SignerClient } from './signer-client.js';

/** A request the cluster cannot serve as asked (maps to a 4xx / CKR_* by the facades). */
export class ClusterError extends Error {
  override readonly name = 'ClusterError';
  constructor(
    readonly code: 'unsupported' | 'not-found' | 'invalid-state' | 'invalid-usage' | 'quorum-unavailable' | 'signer-refused' | 'internal',
    message: string,
  ) {
    super(message);
  }
}

/**
 * What a session did, for the caller's audit entry: its correlation id (the protocol session,
 * which the signers record too) and the signers that took part, each with the head of its own
 * audit entry for it.
 */
export interface Trace {
  session?: string;
  /** The key a request that named none was about: one being created (its id is made here). */
  keyId?: string;
  signers: { name: string; id: number; entry?: { seq: number; hash: string } }[];
  /**
   * Sessions given up (a bad partial, a signer that failed), and signers asked in the request's own
   * session whose answers were not used (a hedge): partials may have left the signers in them too.
   */
  abandoned?: { session: string; signers: Trace['signers'] }[];
}

/** A signer's answer carries the head of its audit entry for the request. */
export type Audited<T> = T & { audit?: { seq: number; hash: string } };

export const traceOf = (chosen: readonly SignerClient[], answers: readonly Audited<unknown>[]): Trace['signers'] =>
  chosen.map((c, i) => ({ name: c.name, id: c.id, ...(answers[i]?.audit ? { entry: answers[i].audit } : {}) }));

/** Records the session every chosen signer answered, keeping one it replaces in `abandoned`. */
export function traceSession(trace: Trace, session: string, chosen: readonly SignerClient[], answers: readonly Audited<unknown>[]): void {
  if (trace.session !== undefined && trace.session !== session) (trace.abandoned ??= []).push({ session: trace.session, signers: trace.signers });
  Object.assign(trace, { session, signers: traceOf(chosen, answers) });
}

/**
 * Asks each chosen signer for its partial. With `laggardMs`, a signer that has not answered
 * that long after the first answer is given up (its call aborted). When a call fails after
 * another signer answered, the session goes to `trace.abandoned`, naming every signer asked (one
 * that timed out may have released too), before the failure reaches the planner, which may
 * retry without it. The failure reported is one that names a signer that failed rather than lagged, if any.
 */
export async function askAll<T>(trace: Trace, session: string, chosen: readonly SignerClient[], ask: (c: SignerClient, opts: CallOptions) => Promise<Audited<T>>, laggardMs?: number): Promise<Audited<T>[]> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const answered = () => {
    if (laggardMs !== undefined && timer === undefined) timer = setTimeout(() => abort.abort(new Error(`no answer within ${laggardMs} ms of another signer's`)), laggardMs);
  };
  const settled = await Promise.allSettled(chosen.map((c) => ask(c, { signal: abort.signal }).then((a) => (answered(), a))));
  clearTimeout(timer);
  const answers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const rejected = settled.flatMap((s) => (s.status === 'rejected' ? [s] : []));
  const failed = rejected.find((s) => !(s.reason instanceof SignerUnavailableError && s.reason.timedOut)) ?? rejected[0];
  if (!failed) return answers;
  // A signer that answered, or one that may yet (it timed out), may have released: name them all.
  if (answers.length > 0 || rejected.some((r) => r.reason instanceof SignerUnavailableError && r.reason.timedOut)) (trace.abandoned ??= []).push({ session, signers: traceOf(chosen, settled.map((s) => (s.status === 'fulfilled' ? s.value : {}))) });
  throw failed.reason;
}

/**
 * One hedged phase of `session` (planner.ts `gather`) traced for the audit: every signer asked
 * may have released, so those whose answers are not used (or all asked, when it fails) are named
 * in an abandoned entry, and those answering become the session's signers. Answers in the order
 * of `signers`.
 */
export async function gatherTraced<A>(plan: Attempt, trace: Trace, session: string, ask: (c: SignerClient, opts: CallOptions) => Promise<Audited<A>>): Promise<{ signers: SignerClient[]; answers: Audited<A>[] }> {
  const gathered = await plan.gather(ask).catch((e: unknown) => {
    traceUnused(trace, session, plan.asked);
    throw e;
  });
  traceUnused(trace, session, gathered.unused);
  const signers = gathered.answers.map((a) => a.client);
  const answers = gathered.answers.map((a) => a.answer);
  traceSession(trace, session, signers, answers);
  return { signers, answers };
}

/**
 * Names signers asked in `session` whose answers the request does not use (a hedged phase's
 * late or failed ones, a session that failed): each may have released its partial, so the
 * request's audit entries name it, in an abandoned entry of that session.
 */
export function traceUnused(trace: Trace, session: string, unused: readonly SignerClient[]): void {
  if (unused.length > 0) (trace.abandoned ??= []).push({ session, signers: traceOf(unused, []) });
}
