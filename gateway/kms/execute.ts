// Running an authenticated KMS operation, for both facades (the PKCS#11 one runs its key
// management through here): authorize, run; one under quorum becomes a proposal; an executed
// change of a key or alias is forwarded to the signers' own copies.
import { SIGNER_CHANGES } from '../../contract/signer-rpc/authority.js';
import { gatewayPolicy } from '../governance.js';
import type { ChangeResult } from '../governance/change-log.js';
import { heldByProposal } from '../proposals.js';
import { ApprovalRequired } from './authorize.js';
import type { OpContext, Operation } from './context.js';

/**
 * Authorises and runs an operation; one under quorum becomes a proposal; changes reach the
 * signers. The PKCS#11 facade runs its key management (labels, deletion) through here too.
 */
export async function executeOperation(opCtx: OpContext, op: Operation, input: unknown): Promise<{ result: object | undefined; changes?: ChangeResult[] }> {
  let result: object | undefined;
  try {
    opCtx.authorizeOperation();
    result = await op.run(opCtx, input as never);
  } catch (e) {
    if (!(e instanceof ApprovalRequired) || e.need.kind !== 'quorum' || opCtx.extras.approved) throw e;
    const parameters = { ...opCtx.extras.parameters, ...(opCtx.keyId !== undefined && typeof opCtx.extras.parameters.KeyId === 'string' ? { KeyId: opCtx.keyId } : {}) };
    const evidence = opCtx.extras.evidence;
    const store = gatewayPolicy().proposals;
    const p = await store.create(opCtx.principal.name, e.need.operation, parameters, evidence);
    opCtx.proposal = p.id;
    throw heldByProposal(e.message, p, e.need, store.approvers(store.get(p.id)!).includes(p.proposer));
  }
  const changes = await forward(opCtx);
  await opCtx.succeeded();
  return { result, ...(changes ? { changes } : {}) };
}

/** Sends an executed change of a key or alias to the signers' own copies. */
async function forward(opCtx: OpContext): Promise<ChangeResult[] | undefined> {
  const operation = SIGNER_CHANGES.find((o) => o === opCtx.operation);
  if (!operation) return undefined;
  const a = opCtx.extras.approved;
  const parameters = a?.proposal.parameters ?? opCtx.extras.parameters;
  const target = operation === 'CreateAlias' || operation === 'UpdateAlias' ? opCtx.arns.parseKeyRef(String(parameters.TargetKeyId)) : undefined;
  const keyId = target ? (target.kind === 'key' ? target.keyId : undefined) : opCtx.keyId;
  if (keyId === undefined) return undefined;
  const evidence = opCtx.signersEvidence();
  const change = { keyId, operation, parameters, ...(evidence !== undefined ? { evidence } : {}), ...(a ? { proposal: a.proposal, approvals: a.approvals } : {}) };
  // Recorded in the name the signers apply it in: the proposer of an approved change, else who asked.
  return gatewayPolicy().forward(change, a?.proposal.proposer ?? opCtx.principal.name);
}
