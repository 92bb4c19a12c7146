// How a cluster operation ends, for the facades and the audit: the error of a request the cluster
// cannot serve, and the trace of the session that served it. Apart from cluster.ts so that the
// scheme coordinators (rsa.ts, ecdsa.ts), which cluster.ts uses, need not import it back.
import type { SignerClient } from './signer-client.js';

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
  signers: { name: string; id: number; entry?: { seq: number; hash: string } }[];
  /** Sessions given up (a bad partial, a signer that failed): partials left the signers in them too. */
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
 * Asks each chosen signer for its partial. When a call fails after another signer answered,
 * the session goes to `trace.abandoned`, naming every signer asked (one that timed out may
 * have released too), before the failure reaches the planner, which may retry without it.
 */
export async function askAll<T>(trace: Trace, session: string, chosen: readonly SignerClient[], ask: (c: SignerClient) => Promise<Audited<T>>): Promise<Audited<T>[]> {
  const settled = await Promise.allSettled(chosen.map(ask));
  const answers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s) => s.status === 'rejected');
  if (!failed) return answers;
  if (answers.length > 0) (trace.abandoned ??= []).push({ session, signers: traceOf(chosen, settled.map((s) => (s.status === 'fulfilled' ? s.value : {}))) });
  throw failed.reason;
}
