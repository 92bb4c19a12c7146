// MpcHsm.RefreshKeyShares {KeyId} (issue #7): a key administrator reshares a key to its active
// holders at its threshold — the same public key, new share bytes at every holder, for ECDSA
// fresh pairwise setups (which also replaces a pair discarded after an aborted signature). A
// share stolen before the refresh is useless beside the new ones. It is also the retry when the
// resharing after a signer removal failed: the retired signer is left out.
//
// It is a key-lifecycle operation like the others (issue #16): under the governance's quorum
// for mpchsm:RefreshKeyShares it becomes a proposal, and the signers refresh a key only on the
// administrator's own signed request — its approval — or an approved proposal, which each
// checks itself (signers/node/guard/peers.ts, authorizeRefresh). An RSA key's shares widen with every
// resharing (signers/protocols/rsa/reshare.ts), so a refresh that would leave no room for the
// resharing a signer's removal or admission needs is refused, here and at each signer.
import { z } from 'zod';
import { authorize, requiredRoleText, roleAllows, type Action } from '../policy/index.js';
import { parsePublicParams } from '../signers/protocols/rsa/key.js';
import { refreshHeadroomProblem } from '../signers/protocols/rsa/reshare.js';
import type { ReshareAuthority } from '../contract/signer-rpc/authority.js';
import { gatewayPolicy } from './governance.js';
import { ClusterError } from './cluster-outcome.js';
import type { OpContext } from './kms/context.js';
import { KmsError, keyStateError } from './kms/errors.js';
import { parseInput } from './kms/input.js';
import { heldByProposal } from './proposals.js';
import { resumeReshares } from './reshare-resume.js';

const inputSchema = z.strictObject({ KeyId: z.string().min(1).max(2048) });
const ACTION: Action = 'mpchsm:RefreshKeyShares';

/** Runs the refresh for `opCtx.principal`; the request's audit entry gets the session and signers from `opCtx.trace`. */
export async function refreshKeyShares(opCtx: OpContext, raw: unknown): Promise<{ KeyId: string; Holders: number[] }> {
  const { principal, deps } = opCtx;
  if (!roleAllows(principal.role, ACTION)) throw new KmsError('AccessDeniedException', `principal ${principal.name} is not allowed ${ACTION}: ${requiredRoleText(ACTION)} [missing: ${ACTION}]`);
  const input = parseInput(inputSchema, raw, 'RefreshKeyShares');
  const ref = opCtx.arns.parseKeyRef(input.KeyId);
  if (ref.kind !== 'key') throw new KmsError('NotFoundException', `Invalid keyId '${input.KeyId.slice(0, 256)}': RefreshKeyShares takes a key ID or key ARN, not an alias`);
  const key = deps.cluster.keys.get(ref.keyId);
  const arn = opCtx.arns.key(ref.keyId);
  if (!key) throw new KmsError('NotFoundException', `Key '${arn}' does not exist`);
  opCtx.keyId = key.keyId;
  await decide(opCtx, { KeyId: key.keyId });
  if (key.state === 'PendingDeletion') throw keyStateError(key, arn);
  // Leaving out a retired holder is the resharing a removal needs, whatever its width; a refresh is not.
  const refresh = key.holders.every((id) => !gatewayPolicy().retired.has(id));
  const tight = refresh && key.rsa && refreshHeadroomProblem(parsePublicParams(key.rsa));
  if (tight) throw new KmsError('KMSInvalidStateException', `${arn}: ${tight}`);
  // A resharing interrupted between its adopts is finished first: until then the holders are split.
  const [unfinished] = await resumeReshares(deps, { keyId: key.keyId, principal: principal.name });
  if (unfinished?.Error) throw new KmsError('KMSInvalidStateException', `${arn}: an interrupted resharing could not be finished: ${unfinished.Error}`);
  try {
    const next = await deps.cluster.reshare(key, opCtx.trace, undefined, authority(opCtx));
    return { KeyId: next.keyId, Holders: next.holders };
  } catch (e) {
    throw e instanceof ClusterError && e.code === 'invalid-state' ? new KmsError('KMSInvalidStateException', `${arn}: ${e.message}`) : opCtx.clusterFailure(e);
  }
}

/**
 * The governance's decision, as each signer will make it: the role, and the quorum — the
 * administrator's request being one approval. A refresh that needs more becomes a proposal
 * (parameters: the key id), answered AccessDeniedException naming it.
 */
async function decide(opCtx: OpContext, parameters: { KeyId: string }): Promise<void> {
  const policy = gatewayPolicy();
  const a = opCtx.extras.approved;
  const d = authorize({
    principal: policy.principalOf(opCtx.principal),
    operation: ACTION,
    governance: policy.governance,
    now: Date.now(),
    requestApproved: opCtx.signersEvidence() !== undefined,
    ...(a ? { approval: { proposal: a.proposal, approvals: a.approvals, parameters } } : {}),
  });
  if (d.allowed) {
    for (const name of d.approvedBy) opCtx.approvedBy.add(name);
    return;
  }
  if (!d.needsApproval || a) throw new KmsError('AccessDeniedException', `${d.reason} [missing: ${d.missing}]`);
  const evidence = opCtx.extras.evidence;
  const p = await policy.proposals.create(opCtx.principal.name, ACTION, parameters, evidence);
  opCtx.proposal = p.id;
  throw heldByProposal(d.reason, p, d.needsApproval, policy.proposals.approvers(policy.proposals.get(p.id)!).includes(p.proposer));
}

/** What each signer checks before refreshing: the administrator's request, and the approved proposal. */
function authority(opCtx: OpContext): ReshareAuthority {
  const a = opCtx.extras.approved;
  const evidence = opCtx.signersEvidence();
  return { parameters: { KeyId: opCtx.keyId! }, ...(evidence !== undefined ? { evidence } : {}), ...(a ? { proposal: a.proposal, approvals: a.approvals } : {}) };
}
