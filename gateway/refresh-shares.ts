// MpcHsm.RefreshKeyShares {KeyId} (issue #7): a key administrator reshares a key to its active
// holders at its threshold — the same public key, new share bytes at every holder, for ECDSA
// fresh pairwise setups (which also replaces a pair discarded after an aborted signature). A
// share stolen before the refresh is useless beside the new ones. It is also the retry when the
// resharing after a signer removal failed: the retired signer is left out. Not under quorum: it
// changes no key, holder or policy, and every signer checks the new set itself
// (signers/node/guard.ts checkReshare).
import { z } from 'zod';
import { quorumFor, requiredRoleText, roleAllows } from '../policy/index.js';
import { gatewayPolicy } from './governance.js';
import { ClusterError } from './cluster.js';
import type { OpContext } from './kms/context.js';
import { KmsError, keyStateError } from './kms/errors.js';
import { parseInput } from './kms/input.js';
import { resumeReshares } from './reshare-journal.js';

const inputSchema = z.strictObject({ KeyId: z.string().min(1).max(2048) });

/** Runs the refresh for `opCtx.principal`; the request's audit entry gets the session and signers from `opCtx.trace`. */
export async function refreshKeyShares(opCtx: OpContext, raw: unknown): Promise<{ KeyId: string; Holders: number[] }> {
  const { principal, deps } = opCtx;
  if (!roleAllows(principal.role, 'mpchsm:RefreshKeyShares'))
    throw new KmsError('AccessDeniedException', `principal ${principal.name} is not allowed mpchsm:RefreshKeyShares: ${requiredRoleText('mpchsm:RefreshKeyShares')} [missing: mpchsm:RefreshKeyShares]`);
  const governance = gatewayPolicy().governance;
  // Refreshes do not run as proposals: a governance that asks approval for them is not obeyed silently.
  if (quorumFor(governance, 'mpchsm:RefreshKeyShares') > 0)
    throw new KmsError('UnsupportedOperationException', `governance v${governance.version} puts mpchsm:RefreshKeyShares under quorum, which this version cannot run as a proposal`);
  const input = parseInput(inputSchema, raw, 'RefreshKeyShares');
  const ref = opCtx.arns.parseKeyRef(input.KeyId);
  if (ref.kind !== 'key') throw new KmsError('NotFoundException', `Invalid keyId '${input.KeyId.slice(0, 256)}': RefreshKeyShares takes a key ID or key ARN, not an alias`);
  const key = deps.cluster.keys.get(ref.keyId);
  const arn = opCtx.arns.key(ref.keyId);
  if (!key) throw new KmsError('NotFoundException', `Key '${arn}' does not exist`);
  opCtx.keyId = key.keyId;
  if (key.state === 'PendingDeletion') throw keyStateError(key, arn);
  // A resharing interrupted between its adopts is finished first: until then the holders are split.
  const [unfinished] = await resumeReshares(deps, { keyId: key.keyId, principal: principal.name });
  if (unfinished?.Error) throw new KmsError('KMSInvalidStateException', `${arn}: an interrupted resharing could not be finished: ${unfinished.Error}`);
  try {
    const next = await deps.cluster.reshare(key, opCtx.trace);
    return { KeyId: next.keyId, Holders: next.holders };
  } catch (e) {
    throw e instanceof ClusterError && e.code === 'invalid-state' ? new KmsError('KMSInvalidStateException', `${arn}: ${e.message}`) : opCtx.clusterFailure(e);
  }
}
