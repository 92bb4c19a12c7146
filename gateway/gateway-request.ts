// A key operation the gateway runs as a request of its own — a resharing (asked for, or resumed
// from the journal), an automatic rotation — audited as any request is: its intents before its
// signer calls, then one entry with its outcome under the session it ran, naming the signers.
import type { AuditEventInput } from '../audit/entry.js';
import type { AuditLog } from '../audit/log.js';
import { AuditedRequest, type IntentFields } from './audit-intent.js';
import type { Trace } from './cluster-outcome.js';

export type GatewayRequestOutcome<T> = { ok: true; value: T } | { ok: false; reason: string };

export async function auditedGatewayRequest<T>(
  audit: AuditLog,
  described: IntentFields & { op: string; keyId: string },
  run: (trace: Trace) => Promise<T>,
  /** The request id when no session ran; the entry's policy and detail. */
  entry: { request: string } & Pick<AuditEventInput, 'policy' | 'detail'>,
): Promise<GatewayRequestOutcome<T>> {
  const trace: Trace = { signers: [] };
  const startedAt = Date.now();
  const request = new AuditedRequest(audit, () => described);
  let outcome: GatewayRequestOutcome<T>;
  try {
    outcome = { ok: true, value: await request.run(() => run(trace)) };
  } catch (e) {
    outcome = { ok: false, reason: (e as Error).message.slice(0, 1000) };
  }
  await request.finish(
    {
      ...described,
      ...entry,
      request: trace.session ?? entry.request,
      signers: trace.signers.length ? trace.signers : undefined,
      session: trace.session,
      outcome: outcome.ok ? 'ok' : 'failed',
      reason: outcome.ok ? undefined : outcome.reason,
      output: outcome.ok ? 'key' : 'none',
      startedAt,
    },
    trace,
  );
  return outcome;
}
