// The keys a benchmark run signs with: one per path and algorithm, the PKCS#11 path reusing the
// key made through KMS, and the dev cluster's administrators approving each held CreateKey.

import { z } from 'zod';
import { BOOTSTRAP_PRINCIPALS } from '../../cli/layout.js';
import type { BenchCluster } from './cluster.js';
import type { Alg, KeygenResult, Target } from './types.js';

export const keyOf = (keys: Map<string, KeygenResult>, target: Target, alg: Alg) => keys.get(`${target}/${alg}`);

/**
 * The key each path signs with: PKCS#11 uses the key made through KMS — the same key behind
 * both facades, found by its CKA_ID (the UUID's 16 bytes) — or, failing that, its own.
 */
export function signingKey(keys: Map<string, KeygenResult>, target: Target, alg: Alg): KeygenResult | undefined {
  const viaKms = keyOf(keys, 'kms', alg);
  if (target === 'p11' && viaKms) return { ...viaKms, keyRef: viaKms.keyRef.replace(/-/g, '') };
  return keyOf(keys, target, alg);
}

const approveAnswerSchema = z.object({
  Status: z.string(),
  Result: z.object({ KeyMetadata: z.object({ KeyId: z.string() }) }).optional(),
});

/**
 * Approves a held CreateKey as the dev cluster's administrators, one after another, until the
 * gateway executes it; resolves with the new key and the time the approvals took (each a
 * `mpchsm approve` process: the key generation runs inside the approval that completes quorum).
 */
export async function approveProposal(cluster: BenchCluster, proposalId: string): Promise<{ keyId: string; ms: number }> {
  const t = performance.now();
  for (const admin of BOOTSTRAP_PRINCIPALS.filter((p) => p.startsWith('admin'))) {
    const a = approveAnswerSchema.parse(await cluster.approve(proposalId, admin));
    if (a.Status === 'Executed' && a.Result) return { keyId: a.Result.KeyMetadata.KeyId, ms: performance.now() - t };
    if (a.Status !== 'Pending') throw new Error(`proposal ${proposalId}: ${a.Status}`);
  }
  throw new Error(`proposal ${proposalId} still pending after every administrator approved it`);
}
