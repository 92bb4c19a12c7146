// How this signer decides who asked for a key change, a key creation or a refresh: from the
// principal's own signed request the gateway forwards (policy/admin-evidence.ts), checked with
// the secret in this signer's registry — or from an approved proposal — never from a name the
// gateway reports. A request applied at once is spent: it is remembered (sealed, in the ledger)
// until its date leaves the ±5 minute window, so the gateway cannot apply it twice.
import { sameParameters, verifyPrincipalRequest, type RequestExpectation } from '../../policy/index.js';
import type { Proposal } from '../../policy/index.js';
import { RpcError } from './rpc.js';

/** A principal's request that verified here. */
export interface VerifiedRequest {
  principal: string;
  evidenceHash: string;
  replayId: string;
  replayUntil: number;
}

export interface RequestCheck {
  region: string;
  /** This signer's registry: principal name and secret of an access key id. */
  secretFor: (accessKeyId: string) => { principal: string; secret: string } | undefined;
  /** This signer's registry: a principal's PKCS#11 request key (an administrator's generates keys). */
  requestKeyFor: (principal: string) => Uint8Array | undefined;
  /** A key reference (id or ARN of this cluster) as a key id. */
  keyIdOf: (ref: string) => string | undefined;
}

const denied = (why: string) => new RpcError(403, 'access-denied', `access denied: ${why}`);

/** The principal's request for `expect`, verified with this signer's secrets, dated within 5 minutes of `now`. */
export async function verifiedRequest(evidence: unknown, c: RequestCheck, expect: RequestExpectation, now: number): Promise<VerifiedRequest> {
  const r = await verifyPrincipalRequest(evidence, { region: c.region, secretFor: c.secretFor, requestKeyFor: c.requestKeyFor, now, expect });
  if (!r.ok) throw denied(r.reason);
  return { principal: r.principal, evidenceHash: r.evidenceHash, replayId: r.replayId, replayUntil: r.replayUntil };
}

/**
 * The proposer's request that made `proposal`, if the gateway forwarded it: it must verify for
 * exactly the proposal's operation and parameters, dated when the proposal was made, and be
 * the proposer's own. Then it counts as the proposer's approval.
 */
export async function proposerRequest(evidence: unknown, c: RequestCheck, proposal: Proposal, target: string): Promise<VerifiedRequest | undefined> {
  if (evidence === undefined) return undefined;
  const r = await verifiedRequest(evidence, c, { target, check: sameParameters(proposal.parameters, c.keyIdOf) }, proposal.createdAt);
  if (r.principal !== proposal.proposer) throw denied(`the request forwarded with proposal ${proposal.id} is ${r.principal}'s, not its proposer ${proposal.proposer}'s`);
  return r;
}

/** Refuses a request already spent here (`spent`: replay id → until). */
export function checkUnspent(r: VerifiedRequest, spent: Readonly<Record<string, number>>, now: number): void {
  const until = spent[r.replayId];
  if (until !== undefined && until > now) throw denied('this signed request was already used (replay)');
}
