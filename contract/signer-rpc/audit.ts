// The audit between gateway and signers: which request id a signer records a call under (the
// gateway's write-ahead intent names the same id, gateway/audit-intent.ts), and the anchor route
// by which the gateway has every signer record the head of its log after its last entries, so
// that cutting entries off the gateway's log is caught (audit/crosscheck.ts collectKnownHeads);
// and the reading of a signer's log in pages (audit/page.ts), which the gateway relays to an
// auditor's host: a cut page is caught against the head the signer signs in its posture report.
import { z } from 'zod';
import { logHeadSchema, route } from './route.js';

const idPart = (v: unknown): string | undefined => (typeof v === 'string' && /^[A-Za-z0-9-]{1,128}$/.test(v) ? v : undefined);

/**
 * The request id a signer's audit entry for a call carries: the protocol session, else the key
 * (an RSA share installed), else the numbered change (`change-N`), else `malformed`.
 */
export function signerAuditRequest(body: unknown): string {
  const b = (body ?? {}) as { session?: unknown; keyId?: unknown; seq?: unknown };
  return idPart(b.session) ?? idPart(b.keyId) ?? (Number.isSafeInteger(b.seq) ? `change-${String(b.seq)}` : 'malformed');
}

export const audit = {
  /**
   * The gateway's head travels as `callerHead`, as with every call; this route has the signer
   * record it now, in its own log. `anchored`: false when it holds as recent a head already or
   * recorded one too recently (it records at most a few a second); `head`: the latest it holds.
   */
  anchor: route('/v1/audit/anchor', z.strictObject({}), z.object({ anchored: z.boolean(), head: logHeadSchema.optional() })),
  /** Lines of this signer's log from position `from`: at most `limit` and about 1 MiB (audit/page.ts). */
  read: route(
    '/v1/audit/read',
    z.strictObject({ from: z.number().int().min(0), limit: z.number().int().min(1).max(10_000) }),
    z.object({ lines: z.array(z.string().max(1024 * 1024)).max(10_000), head: logHeadSchema, more: z.boolean() }),
  ),
};
