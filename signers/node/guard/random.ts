// GenerateRandom, an account operation (no key): this signer contributes only for a client's own
// SigV4-signed TrentService.GenerateRandom request, checked here — its signature by this signer's
// registry, NumberOfBytes exactly what the gateway asks for, `authorize` under this signer's
// governance (the role ceilings: applications, not administrators or auditors) — and only once:
// a repeat would hand out fresh bytes again, letting the gateway choose among outputs.
import { z } from 'zod';
import { authorize, checkKmsRequest } from '../../../policy/index.js';
import { principalInput, requestCheck } from './registry.js';
import { denied, type GuardState } from './state.js';
import { release, type AccountSpend, type UseRecord } from './use.js';

/** The request body the signer accepts: GenerateRandom with nothing the gateway refuses (CustomKeyStoreId, Recipient). */
const bodySchema = z.strictObject({ NumberOfBytes: z.number().int() });

/** A GenerateRandom this signer authorised, until its contribution is released. */
export interface RandomGrant extends AccountSpend {
  session: string;
}

export async function authorizeRandom(s: GuardState, req: { session: string; numberOfBytes: number; evidence: unknown }): Promise<RandomGrant> {
  const now = Date.now();
  const c = await checkKmsRequest(req.evidence, { ...requestCheck(s), now });
  if (!c.ok) throw denied(c.reason);
  if (c.target !== 'TrentService.GenerateRandom') throw denied(`the signed request is ${c.target ?? 'no operation'}, not TrentService.GenerateRandom`);
  const body = bodySchema.safeParse(c.body);
  if (!body.success) throw denied('the signed request body is not a GenerateRandom request this cluster serves');
  if (body.data.NumberOfBytes !== req.numberOfBytes) throw denied(`the client asked for ${body.data.NumberOfBytes} bytes, not ${req.numberOfBytes}`);
  const d = authorize({ principal: principalInput(s, c.principal), operation: 'kms:GenerateRandom', governance: s.governance, now });
  if (!d.allowed) throw denied(d.reason);
  return {
    session: req.session,
    principal: c.principal,
    operation: 'GenerateRandom',
    evidence: req.evidence,
    replayId: c.replayId,
    replayUntil: c.replayUntil,
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
