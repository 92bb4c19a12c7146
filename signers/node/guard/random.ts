// GenerateRandom, an account operation (no key): this signer contributes only for a client's own
// SigV4-signed TrentService.GenerateRandom request, checked here — its signature by this signer's
// registry, NumberOfBytes exactly what the gateway asks for, `authorize` under this signer's
// governance (the role ceilings: applications, not administrators or auditors) — and only once:
// a repeat would hand out fresh bytes again, letting the gateway choose among outputs.
import { z } from 'zod';
import { authorize, checkSigV4, EVIDENCE_SKEW_MS, forwardedRequest, sigv4EvidenceSchema } from '../../../policy/index.js';
import { principalInput, requestCheck } from './registry.js';
import { denied, firstIssue, type GuardState } from './state.js';
import { release, type AccountSpend, type UseRecord } from './use.js';

/** The request body the signer accepts: GenerateRandom with nothing the gateway refuses (CustomKeyStoreId, Recipient). */
const bodySchema = z.strictObject({ NumberOfBytes: z.number().int() });

/** A GenerateRandom this signer authorised, until its contribution is released. */
export interface RandomGrant extends AccountSpend {
  session: string;
}

export async function authorizeRandom(s: GuardState, req: { session: string; numberOfBytes: number; evidence: unknown }): Promise<RandomGrant> {
  const e = sigv4EvidenceSchema.safeParse(req.evidence);
  if (!e.success) throw denied(`GenerateRandom is asked through the KMS API only; malformed evidence: ${firstIssue(e.error)}`);
  const now = Date.now();
  const c = await checkSigV4(forwardedRequest(e.data), { ...requestCheck(s), now });
  if (!c.ok) throw denied(c.reason);
  if (c.target !== 'TrentService.GenerateRandom') throw denied(`the signed request is ${c.target ?? 'no operation'}, not TrentService.GenerateRandom`);
  let body: z.infer<typeof bodySchema>;
  try {
    body = bodySchema.parse(JSON.parse(Buffer.from(c.body).toString('utf8')));
  } catch {
    throw denied('the signed request body is not a GenerateRandom request this cluster serves');
  }
  if (body.NumberOfBytes !== req.numberOfBytes) throw denied(`the client asked for ${body.NumberOfBytes} bytes, not ${req.numberOfBytes}`);
  const d = authorize({ principal: principalInput(s, c.principal), operation: 'kms:GenerateRandom', governance: s.governance, now });
  if (!d.allowed) throw denied(d.reason);
  return {
    session: req.session,
    principal: c.principal,
    operation: 'GenerateRandom',
    evidence: req.evidence,
    replayId: `sigv4:${c.signature}`,
    replayUntil: c.signedAt + EVIDENCE_SKEW_MS + 1000,
    approvedBy: d.approvedBy,
    governanceVersion: s.governance.version,
  };
}

/** Spends the request: refused if it was released for before (here or by a concurrent call). */
export async function releaseRandom(s: GuardState, g: RandomGrant): Promise<UseRecord> {
  const asked = await release(s, g, `random:${g.session}`);
  if (asked.detail?.repeat) throw denied('this signed request was already used (replay)');
  return asked;
}
