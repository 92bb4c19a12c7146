// The gateway's side of governance, behind the one facade both facades' seams use: the verified
// governance chain (governance/chain.ts), key policies and principals as the policy engine sees
// them (key-policies.ts), authentication by a signer, the signers it asks (signers.ts),
// principal, signer and governance changes (membership.ts), and the numbered log that forwards
// every change to the signers' own copies (change-log.ts).
import path from 'node:path';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.js';
import type { UnnumberedChange } from '../contract/signer-rpc/authority.js';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import type { AuthorizeInput, GovernanceDocument } from '../policy/index.js';
import type { GatewayConfig, SignerEntry } from './config.js';
import type { KeyStore } from './keys.js';
import { KmsError, type KmsErrorName } from './kms/errors.js';
import type { KmsState } from './kms/state.js';
import { readPinKdf, type Principal, type PrincipalRegistry } from './principals.js';
import { ProposalStore } from './proposals.js';
import { SignerRefusedError, type SignerClient } from './signer-client.js';
import { isTransient, QuorumUnavailableError, type FirstAnswer } from './planner.js';
import { GovernanceChain } from './governance/chain.js';
import { ChangeLog, type ChangeResult } from './governance/change-log.js';
import { KeyPolicies } from './governance/key-policies.js';
import { Membership } from './governance/membership.js';
import { refusal, SignerRoster } from './governance/signers.js';

/**
 * What the gateway holds: the governance chain (public, verified at start), the principals'
 * names, roles, access key ids and PIN login hashes (no one's secret), the proposals and
 * approvals it collects (proposals.ts), and the changes it forwarded to the signers. What it
 * does not decide alone: every request is authenticated by a signer (/v1/auth/sigv4); every
 * Sign or Decrypt is re-checked by each participating signer from the client's own signed
 * request; every approved change reaches the signers with its proposal and approvals, which
 * they verify against their own governance. The gateway's decisions here are the first line,
 * so that honest requests get AWS's answers; the signers' are the ones that hold.
 */
export class GatewayPolicy {
  private constructor(
    readonly proposals: ProposalStore,
    private readonly dir: string,
    private readonly principals: PrincipalRegistry,
    private readonly chain: GovernanceChain,
    private readonly signers: SignerRoster,
    /** Key policies and principals as the policy engine sees them. */
    readonly keyPolicies: KeyPolicies,
    private readonly changes: ChangeLog,
    /** Principal, signer and governance changes: the checks before proposing, and executing approved ones. */
    readonly membership: Membership,
    /** One signer's answer, hedged over the signers (Cluster.firstAnswer). */
    private readonly firstAnswer: FirstAnswer,
  ) {}

  /** Loads and verifies the governance chain (the gateway does not start without one), then the rest of the gateway's governance state. */
  static load(o: {
    dir: string;
    config: GatewayConfig;
    principals: PrincipalRegistry;
    kmsState: KmsState;
    log: Logger;
    clientFor: (s: SignerEntry) => SignerClient;
    firstAnswer: FirstAnswer;
    keys: KeyStore;
    audit: AuditLog;
  }): GatewayPolicy {
    const chain = GovernanceChain.load(o.dir);
    const signers = new SignerRoster(o.dir, o.config, o.clientFor);
    const proposals = new ProposalStore(path.join(o.dir, 'proposals.json'), () => chain.governance);
    const keyPolicies = new KeyPolicies(o.config, o.principals, o.kmsState);
    const changes = new ChangeLog(o.dir, signers, o.audit, o.log);
    const membership = new Membership(o.config, o.principals, o.keys, chain, signers, changes, keyPolicies);
    void changes.resync();
    return new GatewayPolicy(proposals, o.dir, o.principals, chain, signers, keyPolicies, changes, membership, o.firstAnswer);
  }

  close(): void {
    this.changes.close();
    this.signers.close();
  }

  // ---- the policy engine's view -------------------------------------------------------------

  /** The governance version in force. */
  get governance(): GovernanceDocument {
    return this.chain.governance;
  }

  principalOf(p: Principal): AuthorizeInput['principal'] {
    return this.keyPolicies.principalOf(p);
  }

  // ---- application authentication, by a signer ----------------------------------------------

  /**
   * Has a signer verify an application's SigV4 request (the gateway holds no application
   * secret). Resolves the access key id, or throws the AWS error the signer found.
   */
  async authenticate(evidence: unknown, requestId: string): Promise<string> {
    try {
      return (await this.firstAnswer(this.signers.activeIds(), (c, opts) => c.call(signerRoutes.auth.sigv4, { session: requestId, request: evidence }, opts))).accessKeyId;
    } catch (e) {
      if (e instanceof SignerRefusedError && /^[A-Z][A-Za-z]+Exception$/.test(e.code)) throw new KmsError(e.code as KmsErrorName, refusal(e));
      // Every signer asked failed or was silent (planner.ts): a retry may find one.
      if (e instanceof QuorumUnavailableError || isTransient(e)) throw new KmsError('DependencyTimeoutException', 'No signer answered to authenticate the request; retry later');
      throw new KmsError('KMSInternalException', `authentication failed at a signer: ${(e as Error).message}`);
    }
  }

  // ---- principals, signers and governance ----------------------------------------------------

  /** What administrators' tools read: the governance chain, the PIN key derivation, the principals (no secret), the signers. */
  describe(): object {
    return {
      Governance: this.chain.links,
      PinKdf: readPinKdf(this.dir),
      Principals: this.principals.all().map((p) => ({ Name: p.name, Role: p.role, AccessKeyId: p.accessKeyId })).sort((a, b) => (a.Name < b.Name ? -1 : 1)),
      Signers: this.signers.describe(),
    };
  }

  /** Signers removed by approved proposals (party ids). */
  get retired(): ReadonlySet<number> {
    return this.signers.retired;
  }

  awaitingAdmission(): string[] {
    return this.signers.awaitingAdmission();
  }

  addedSigner(name: string): { entry: SignerEntry; admitted: boolean } | undefined {
    return this.signers.addedSigner(name);
  }

  /**
   * Makes an enrolled newcomer a signer of the gateway's: in the configuration (saved), asked
   * every change after `seq` (the last one its enrolment state had processed). Runs in the
   * change queue, so no change is forwarded between the enrolment and this.
   */
  completeAdmission(entry: SignerEntry, enrol: () => Promise<{ seq: number }>): Promise<void> {
    return this.changes.exclusive(async () => {
      const { seq } = await enrol();
      await this.signers.admit(entry);
      await this.changes.acknowledged(entry.id, seq);
      await this.signers.admitted(entry.id);
    });
  }

  /** Forwards an executed change of a key or alias to every signer's own copy. */
  forward(change: UnnumberedChange, principal: string): Promise<ChangeResult[]> {
    return this.changes.forward(change, principal);
  }
}

let installed: GatewayPolicy | undefined;

/** Installs the gateway's policy (gateway start); both facades' seams use it. */
export function installGatewayPolicy(p: GatewayPolicy): void {
  installed = p;
}

export function gatewayPolicy(): GatewayPolicy {
  if (!installed) throw new KmsError('KMSInternalException', 'the gateway has no governance loaded');
  return installed;
}
