// Last in the chain: runs what X-Amz-Target named as the authenticated principal — a KMS
// operation (kms/execute.ts), an MpcHsm.* operation (kms/mpchsm.ts), or a key refresh — and
// answers it; the operation and key it concerned go to ctx.state for the audit entry.
import { sigv4Evidence } from '../../../policy/index.js';
import { readEntries } from '../../../audit/page.js';
import { auditLogPath } from '../../../audit/paths.js';
import { admitSigner } from '../../add-signer.js';
import type { GatewayDeps } from '../../deps.js';
import { gatewayPolicy } from '../../governance.js';
import type { Principal } from '../../principals.js';
import { auditLogPage, clusterPosture } from '../../posture.js';
import { refreshKeyShares } from '../../refresh-shares.js';
import { executeProposal } from '../approved.js';
import { OpContext, type Operation } from '../context.js';
import { executeOperation } from '../execute.js';
import type { Arns } from '../ids.js';
import { parseInput, parseJsonBody } from '../input.js';
import { runMpcHsm, type MpcHsmOperation } from '../mpchsm.js';
import { answer, type KmsContext, type KmsMiddleware, type KmsRequest } from './state.js';

/** The request's JSON parameters as sent, without nulls (policy conditions, proposals). */
const parametersOf = (json: unknown): Record<string, unknown> => Object.fromEntries(Object.entries(json as object).filter(([, v]) => v !== null));

/**
 * Runs MpcHsm.<name> as `principal` for request `s` — the KMS API's, or the approval console's
 * (gateway/console/) — and answers its result; an approval that completes a proposal is
 * recorded as the operation it ran.
 */
export async function runMpcHsmRequest(deps: GatewayDeps, arns: Arns, s: KmsRequest, name: MpcHsmOperation, raw: unknown, principal: Principal): Promise<object> {
  const policy = gatewayPolicy();
  try {
    const r = await runMpcHsm(name, raw, {
      principal,
      store: policy.proposals,
      membership: policy.membership,
      describeCluster: () => policy.describe(),
      approvalsPerSignature: (keyId) => {
        const key = deps.cluster.keys.get(keyId);
        return key && (policy.keyPolicies.keyInput(key).policy.mpchsm?.approvalsPerSignature ?? 0);
      },
      execute: (proposer, stored) => executeProposal(deps, arns, proposer, stored, (c) => (s.opCtx = c)),
      admitSigner: (signer) => admitSigner(deps, signer, { principal: principal.name, request: s.requestId, policy: { version: policy.governance.version, approvals: [] } }),
      posture: (nonce, packages) => clusterPosture(deps, nonce, packages),
      auditLog: (party, from, limit) => auditLogPage(deps, party, from, limit),
      auditRecords: (after, limit, keyId) => readEntries(auditLogPath(deps.dir), after, limit, (e) => keyId === undefined || ('keyId' in e && e.keyId === keyId)),
    });
    s.proposed = r.proposed;
    return r.result;
  } finally {
    if (s.opCtx) [s.operation, s.keyId] = [s.opCtx.operation, s.opCtx.keyId];
  }
}

/** MpcHsm.RefreshKeyShares: a key operation of the cluster's own, recorded like one (its session, signers and new shares). */
async function refresh(deps: GatewayDeps, arns: Arns, ctx: KmsContext, principal: Principal): Promise<void> {
  const s = ctx.state;
  const json = parseJsonBody(s.payload!);
  const opCtx = (s.opCtx = new OpContext(deps, deps.kmsState, arns, principal, 'RefreshKeyShares', { parameters: parametersOf(json), evidence: sigv4Evidence(s.received!) }));
  try {
    answer(ctx, JSON.stringify(await refreshKeyShares(opCtx, json)));
  } finally {
    s.keyId = opCtx.keyId;
  }
}

/** A KMS operation (TrentService.<name>). */
async function kms(deps: GatewayDeps, arns: Arns, ctx: KmsContext, t: { name: string; op: Operation }, principal: Principal): Promise<void> {
  const s = ctx.state;
  const json = parseJsonBody(s.payload!);
  const input = parseInput(t.op.input, json, t.name);
  const opCtx = (s.opCtx = new OpContext(deps, deps.kmsState, arns, principal, t.name, { parameters: parametersOf(json), evidence: sigv4Evidence(s.received!) }));
  try {
    const { result } = await executeOperation(opCtx, t.op, input);
    answer(ctx, result === undefined ? '' : JSON.stringify(result));
  } finally {
    s.keyId = opCtx.keyId;
  }
}

export function execute(deps: GatewayDeps, arns: Arns): KmsMiddleware {
  return async (ctx) => {
    const t = ctx.state.target!;
    const principal = ctx.state.principal!;
    if (t.kind === 'mpchsm') return answer(ctx, JSON.stringify(await runMpcHsmRequest(deps, arns, ctx.state, t.name, parseJsonBody(ctx.state.payload!), principal)));
    if (t.kind === 'refresh') return refresh(deps, arns, ctx, principal);
    return kms(deps, arns, ctx, t, principal);
  };
}
