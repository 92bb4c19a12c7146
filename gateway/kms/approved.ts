// An approved proposal run as its proposer (MpcHsm.Approve completing the quorum): a principal,
// signer or governance change (then the resharing or admission a signer's change needs), a key
// refresh, or a KMS operation, each recorded as the operation it ran.
import { admitSigner } from '../add-signer.js';
import type { GatewayDeps } from '../deps.js';
import { gatewayPolicy } from '../governance.js';
import { isMembershipAction } from '../governance/membership.js';
import type { StoredProposal } from '../proposals.js';
import { refreshKeyShares } from '../refresh-shares.js';
import { reshareAfterRemoval } from '../remove-signer.js';
import { OpContext, type OpExtras } from './context.js';
import { KmsError } from './errors.js';
import { executeOperation } from './execute.js';
import type { Arns } from './ids.js';
import { parseInput } from './input.js';
import type { Executed } from './mpchsm.js';
import { OPERATIONS } from './ops/index.js';

/** An approved proposal as a request carries it: the approvals, and the proposer's request if it came over the KMS API. */
const approvedOf = (stored: StoredProposal): NonNullable<OpExtras['approved']> => ({
  proposal: stored.proposal,
  approvals: stored.approvals,
  ...(stored.evidence !== undefined ? { evidence: stored.evidence } : {}),
});

/** Runs an approved proposal as its proposer; `ran` gets its context (for the audit entry). */
export async function executeProposal(deps: GatewayDeps, arns: Arns, proposerName: string, stored: StoredProposal, ran: (c: OpContext) => void): Promise<Executed> {
  const name = stored.proposal.operation.replace(/^(kms|mpchsm):/, '');
  const proposer = deps.principals.all().find((p) => p.name === proposerName);
  if (!proposer) throw new KmsError('AccessDeniedException', `the proposer ${proposerName} is no longer a principal`);
  /** The context the proposal runs in, recorded as the operation it ran, with the proposal and who approved it. */
  const begin = (extras: OpExtras): OpContext => {
    const opCtx = new OpContext(deps, deps.kmsState, arns, proposer, name, extras);
    opCtx.proposal = stored.proposal.id;
    ran(opCtx);
    return opCtx;
  };
  if (isMembershipAction(stored.proposal.operation)) {
    const opCtx = begin({ parameters: {} });
    const r = await gatewayPolicy().membership.execute(stored);
    for (const a of r.approvedBy) opCtx.approvedBy.add(a);
    if (stored.proposal.operation === 'mpchsm:RemoveSigner') {
      const removed = (r.result as { Signer: { Name: string; Id: number } }).Signer;
      const policy = { version: gatewayPolicy().governance.version, approvals: r.approvedBy };
      const keys = await reshareAfterRemoval(deps, { name: removed.Name, id: removed.Id }, { principal: proposerName, proposal: stored.proposal.id, policy });
      return { operation: name, result: { ...r.result, ...keys }, changes: r.changes };
    }
    if (stored.proposal.operation === 'mpchsm:AddSigner' || stored.proposal.operation === 'mpchsm:RestoreSigner') {
      const added = (r.result as { Signer: { Name: string } }).Signer;
      const policy = { version: gatewayPolicy().governance.version, approvals: r.approvedBy };
      const outcome = await admitSigner(deps, added.Name, { principal: proposerName, proposal: stored.proposal.id, request: stored.proposal.id, policy });
      return { operation: name, result: { ...r.result, ...outcome }, changes: r.changes };
    }
    return { operation: name, result: r.result, changes: r.changes };
  }
  if (stored.proposal.operation === 'mpchsm:RefreshKeyShares') {
    const opCtx = begin({ parameters: stored.proposal.parameters, approved: approvedOf(stored) });
    return { operation: name, result: await refreshKeyShares(opCtx, stored.proposal.parameters) };
  }
  if (!stored.proposal.operation.startsWith('kms:') || !Object.hasOwn(OPERATIONS, name)) {
    throw new KmsError('UnsupportedOperationException', `${stored.proposal.operation} cannot be executed through the KMS API`);
  }
  const op = OPERATIONS[name]!;
  const opCtx = begin({ parameters: stored.proposal.parameters, approved: approvedOf(stored) });
  return { operation: name, ...(await executeOperation(opCtx, op, parseInput(op.input, stored.proposal.parameters, name))) };
}
