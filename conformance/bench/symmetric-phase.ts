// The benchmark's symmetric phase (issue #22): a SYMMETRIC_DEFAULT key made through KMS
// CreateKey (by DKG: no whole key anywhere), then closed-loop clients calling GenerateDataKey
// (AES_256) and Decrypt (of one data key's blob) with it at the run's concurrency levels — the
// calls envelope encryption (the AWS Encryption SDK, client-side encryption) makes per message.
// Each call is a threshold PRF evaluation: t signers' partials with proofs the gateway checks.

import type { Held } from './held.js';
import { approveProposal } from './keys.js';
import { clientsLabel, measurePoint, pointLine, warmupFor } from './measure.js';
import type { Options } from './options.js';
import type { Progress } from './progress.js';
import type { SymmetricPoint, SymmetricResults } from './results.js';
import { SYMMETRIC_LABEL, SYMMETRIC_OPS, loadResultSchema, symmetricKeyAnswerSchema } from './types.js';

/** Makes the key, then measures every operation at every concurrency; `pids`: the cluster's processes. */
export async function symmetricPhase(o: Options, progress: Progress, held: Held, pids: Readonly<Record<string, number>>, noClient: string | undefined): Promise<SymmetricResults> {
  const cp = held.clients.get('kms');
  if (!cp) return { key: { status: 'unavailable', reason: noClient ?? 'no KMS client' }, points: [] };
  const keyLabel = 'symmetric key (SYMMETRIC_DEFAULT) via mpchsm KMS';
  let keyRef: string;
  let key: Extract<SymmetricResults, { key: unknown }>['key'];
  try {
    const a = await progress.during(keyLabel, 0, cp.call({ op: 'symmetricKey', label: 'bench-symmetric' }, symmetricKeyAnswerSchema, 300_000));
    if (a.status === 'unavailable') {
      progress.step(`${keyLabel}: not available yet — ${a.reason}`);
      return { key: { status: 'unavailable', reason: a.reason }, points: [] };
    }
    if (a.status === 'proposal') {
      const done = await progress.during(`${keyLabel}: approving proposal ${a.proposalId}`, 0, approveProposal(held.cluster!, a.proposalId));
      [keyRef, key] = [done.keyId, { status: 'ok', ms: Math.round((a.ms + done.ms) * 10) / 10, approved: true }];
    } else [keyRef, key] = [a.keyRef, { status: 'ok', ms: Math.round(a.ms * 10) / 10 }];
  } catch (e) {
    progress.step(`${keyLabel}: failed — ${(e as Error).message}`);
    return { key: { status: 'failed', reason: (e as Error).message }, points: [] };
  }
  progress.step(`${keyLabel}: ${key.ms} ms${key.approved ? ' (incl. approval)' : ''}`);

  const points: SymmetricPoint[] = [];
  const total = SYMMETRIC_OPS.length * o.concurrency.length;
  for (const operation of SYMMETRIC_OPS)
    for (const c of o.concurrency) {
      const label = `[${points.length + 1}/${total}] ${SYMMETRIC_LABEL[operation]} via mpchsm KMS, ${clientsLabel(c)}`;
      const load = (durationMs: number) => cp.call({ op: 'symmetric', operation, keyRef, concurrency: c, durationMs }, loadResultSchema, durationMs + 120_000);
      try {
        const m = await measurePoint(progress, label, { client: cp.pid, ...pids }, { warmMs: warmupFor(o, c), durationMs: o.durationMs }, operation, load);
        points.push({ operation, concurrency: c, status: 'ok', ...m });
        progress.step(`${label}: ${pointLine(m, 'calls/s')}`);
      } catch (e) {
        points.push({ operation, concurrency: c, status: 'failed', reason: (e as Error).message });
        progress.step(`${label}: failed — ${(e as Error).message}`);
      }
    }
  return { key, points };
}
