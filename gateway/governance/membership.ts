// Principal, signer and governance changes (policy/membership.ts): the gateway's checks before
// anyone approves one, and an approved one executed here first, on the gateway's own copies,
// then forwarded in the numbered log (change-log.ts).
import {
  administratorChanges,
  authorize,
  enrolmentProblem,
  governanceUpdateSchema,
  principalEnrolmentSchema,
  principalRemovalSchema,
  signedUpdate,
  signerAdmissionSchema,
  signerRemovalSchema,
  signerRestorationSchema,
  successorProblem,
  verifyGovernanceUpdate,
  type GovernanceUpdate,
  type PrincipalEnrolment,
  type SignerAdmission,
  type SignerRestoration,
} from '../../policy/index.js';
import type { UnnumberedChange } from '../../contract/signer-rpc/authority.js';
import { parsePublicIdentity, type PublicIdentity } from '../../contract/identity/identity.js';
import type { GatewayConfig, SignerEntry } from '../config.js';
import type { KeyStore } from '../keys.js';
import { KmsError } from '../kms/errors.js';
import type { Principal, PrincipalRegistry } from '../principals.js';
import type { StoredProposal } from '../proposals.js';
import { SerialQueue } from '../../contract/serial-queue.js';
import { recordRestoration } from '../revival.js';
import type { GovernanceChain } from './chain.js';
import type { ChangeLog, ChangeResult } from './change-log.js';
import type { KeyPolicies } from './key-policies.js';
import type { SignerRoster } from './signers.js';

/** The operations that change who may act. */
const MEMBERSHIP_ACTIONS = ['mpchsm:AddPrincipal', 'mpchsm:RemovePrincipal', 'mpchsm:UpdateGovernance', 'mpchsm:AddSigner', 'mpchsm:RemoveSigner', 'mpchsm:RestoreSigner'] as const;
export type MembershipAction = (typeof MEMBERSHIP_ACTIONS)[number];
export const isMembershipAction = (a: string): a is MembershipAction => (MEMBERSHIP_ACTIONS as readonly string[]).includes(a);

const invalid = (message: string) => new KmsError('ValidationException', message);

/**
 * An approved change is applied to the gateway's own copies — the principals it authenticates,
 * the governance chain, the signers it asks, the PIN verifiers — then forwarded in the same
 * numbered log as key changes, so that each signer applies it in the same order, after verifying
 * it itself. A removed signer is asked nothing more (its keys are reshared by remove-signer.ts);
 * an added one is admitted by add-signer.ts.
 */
export class Membership {
  /** Principal and governance changes, one at a time (each is checked against the state the last left). */
  private readonly queue = new SerialQueue();

  constructor(
    private readonly config: GatewayConfig,
    private readonly principals: PrincipalRegistry,
    private readonly keys: KeyStore,
    private readonly chain: GovernanceChain,
    private readonly signers: SignerRoster,
    private readonly changes: ChangeLog,
    private readonly keyPolicies: KeyPolicies,
  ) {}

  /** Refuses adding a principal that could not be added, before anyone approves it. */
  checkAddPrincipal(e: PrincipalEnrolment): void {
    if (e.Role === 'admin') throw invalid(`${e.Name}: administrators are added by a governance update (mpchsm governance propose), which gives them an approval key`);
    this.checkNewPrincipal(e);
  }

  /** A new principal's secret is sealed to every active signer and to nobody else: the gateway must never hold it. */
  private checkSealedToSigners(e: PrincipalEnrolment): void {
    const parties = e.Secrets.map((s) => s.Party).sort((a, b) => a - b);
    const expected = this.signers.activeIds();
    if (parties.join() !== expected.join())
      throw invalid(`the secret of ${e.Name} (${e.Role}) is sealed to every signer (${expected.join(', ')}) and to nobody else; this proposal seals it to parties ${parties.join(', ')}`);
  }

  /** Refuses removing a principal that is not there, or an administrator. */
  checkRemovePrincipal(name: string): Principal {
    const p = this.principals.byName(name);
    if (!p) throw new KmsError('NotFoundException', `principal ${name} does not exist`);
    if (p.role === 'admin') throw invalid(`${name} is an administrator: administrators are removed by a governance update (mpchsm governance propose)`);
    return p;
  }

  /**
   * Refuses removing a signer that is not an active one, or one without which some key could no
   * longer be used: fewer signers than a key's threshold (or the cluster's) would remain.
   */
  checkRemoveSigner(name: string): { name: string; id: number } {
    const s = this.signers.configured(name);
    if (!s) throw new KmsError('NotFoundException', `signer ${name} does not exist`);
    if (this.signers.retired.has(s.id)) throw invalid(`signer ${name} is already removed`);
    const remaining = this.signers.activeIds().filter((id) => id !== s.id);
    if (remaining.length < this.config.threshold) throw invalid(`removing ${name} would leave ${remaining.length} signers, fewer than the cluster's threshold ${this.config.threshold}`);
    for (const k of this.keys.list()) {
      const left = k.holders.filter((id) => remaining.includes(id)).length;
      if (left < k.threshold) throw invalid(`removing ${name} would leave key ${k.keyId} with ${left} of its holders, fewer than its threshold ${k.threshold}`);
    }
    return { name: s.name, id: s.id };
  }

  /** Refuses adding a signer whose name, party id or identity is already used, before anyone approves it. */
  checkAddSigner(a: SignerAdmission): SignerEntry {
    let identity: PublicIdentity;
    try {
      identity = parsePublicIdentity(a.Identity);
    } catch (e) {
      throw invalid((e as Error).message);
    }
    const clash = this.signers.known().find((s) => s.name === a.Name || s.id === a.Id || s.identity.signPublicKey === identity.signPublicKey || s.identity.kexPublicKey === identity.kexPublicKey);
    if (clash) throw new KmsError('AlreadyExistsException', `signer ${a.Name} (party ${a.Id}) clashes with signer ${clash.name}: names, party ids and identities are never reused`);
    return { name: a.Name, id: a.Id, url: a.Endpoint, identity };
  }

  /**
   * Refuses restoring a signer that is not a lost party of this cluster, or with an identity
   * already used, before anyone approves it. Whether the backup is current each signer checks
   * against its own shares (signers/node/guard/restore.ts).
   */
  checkRestoreSigner(r: SignerRestoration): SignerEntry {
    const s = this.signers.configured(r.Name);
    if (!s || s.id !== r.Id) throw new KmsError('NotFoundException', `no signer ${r.Name} with party id ${r.Id}: only a lost signer of this cluster is restored`);
    if (this.signers.retired.has(s.id)) throw invalid(`signer ${r.Name} was removed: a removed signer is never restored`);
    if (r.Backup.ClusterId !== this.chain.governance.clusterId) throw invalid(`the backup is of cluster ${r.Backup.ClusterId}, not of this cluster (${this.chain.governance.clusterId})`);
    let identity: PublicIdentity;
    try {
      identity = parsePublicIdentity(r.Identity);
    } catch (e) {
      throw invalid((e as Error).message);
    }
    const clash = this.signers.known().find((x) => x.identity.signPublicKey === identity.signPublicKey || x.identity.kexPublicKey === identity.kexPublicKey);
    if (clash) throw new KmsError('AlreadyExistsException', `the restored ${r.Name}'s identity is signer ${clash.name}'s: a restored signer makes a new one`);
    return { name: r.Name, id: r.Id, url: r.Endpoint, identity };
  }

  /** Refuses a governance update that cannot follow the version in force, before anyone approves it. */
  checkGovernanceUpdate(u: GovernanceUpdate): void {
    const current = this.chain.governance;
    const problem = successorProblem(current, u.Document) ?? enrolmentProblem(current, u.Document, u.Principals);
    if (problem) throw invalid(problem);
    for (const e of u.Principals) {
      this.checkNewPrincipal(e);
    }
  }

  private checkNewPrincipal(e: PrincipalEnrolment): void {
    this.checkSealedToSigners(e);
    if (this.principals.byName(e.Name)) throw new KmsError('AlreadyExistsException', `principal ${e.Name} already exists`);
    if (this.principals.byAccessKeyId(e.AccessKeyId)) throw new KmsError('AlreadyExistsException', `access key id ${e.AccessKeyId} is already in use`);
  }

  /**
   * Executes an approved principal or governance change here, then forwards it to every signer.
   * The approvals are verified again as the signers will (policy/evaluate.ts); a governance
   * update must verify as the successor of the version in force.
   */
  execute(stored: StoredProposal): Promise<{ result: object; changes: ChangeResult[]; approvedBy: string[] }> {
    return this.queue.run(() => this.executeNow(stored));
  }

  private async executeNow({ proposal, approvals }: StoredProposal): Promise<{ result: object; changes: ChangeResult[]; approvedBy: string[] }> {
    const proposer = this.principals.byName(proposal.proposer);
    if (!proposer) throw new KmsError('AccessDeniedException', `the proposer ${proposal.proposer} is no longer a principal`);
    const d = authorize({
      principal: this.keyPolicies.principalOf(proposer),
      operation: proposal.operation,
      governance: this.chain.governance,
      now: Date.now(),
      approval: { proposal, approvals, parameters: proposal.parameters },
    });
    if (!d.allowed) throw new KmsError('AccessDeniedException', d.reason);
    const approved = { principal: proposal.proposer, proposal, approvals };
    let result: object;
    let change: UnnumberedChange;
    switch (proposal.operation) {
      case 'mpchsm:AddPrincipal': {
        const e = principalEnrolmentSchema.parse(proposal.parameters);
        this.checkAddPrincipal(e);
        await this.principals.update([], [this.recordOf(e)]);
        result = { Principal: { Name: e.Name, Role: e.Role, AccessKeyId: e.AccessKeyId } };
        change = { ...approved, operation: 'AddPrincipal', parameters: proposal.parameters };
        break;
      }
      case 'mpchsm:RemovePrincipal': {
        const p = this.checkRemovePrincipal(principalRemovalSchema.parse(proposal.parameters).Name);
        await this.principals.update([p.name], []);
        result = { Principal: { Name: p.name, Role: p.role, AccessKeyId: p.accessKeyId } };
        change = { ...approved, operation: 'RemovePrincipal', parameters: proposal.parameters };
        break;
      }
      case 'mpchsm:UpdateGovernance': {
        const u = governanceUpdateSchema.parse(proposal.parameters);
        this.checkGovernanceUpdate(u);
        const signed = signedUpdate(u, approvals);
        const current = this.chain.governance;
        const r = verifyGovernanceUpdate(current, signed);
        if (!r.ok) throw new KmsError('AccessDeniedException', r.reason);
        const { added, removed } = administratorChanges(current, r.governance);
        await this.principals.update(removed, u.Principals.map((e) => this.recordOf(e)));
        await this.chain.append(signed, r.governance);
        // With the new chain link, which administrators' tools verify and keep.
        result = { Governance: { Version: r.governance.version, Administrators: r.governance.administrators.map((a) => a.name), Added: added, Removed: removed, Quorum: r.governance.quorum }, Link: signed };
        // A signed chain link proves itself: the signers need no proposal beside it.
        change = { principal: proposal.proposer, operation: 'UpdateGovernance', parameters: { Governance: signed, Principals: u.Principals } };
        break;
      }
      case 'mpchsm:AddSigner': {
        const entry = this.checkAddSigner(signerAdmissionSchema.parse(proposal.parameters));
        // Every active signer pins the newcomer first; it is admitted after (gateway/add-signer.ts).
        const changes = await this.changes.forward({ ...approved, operation: 'AddSigner', parameters: proposal.parameters }, proposal.proposer);
        await this.signers.awaitAdmission(entry);
        return { result: { Signer: { Name: entry.name, Id: entry.id } }, changes, approvedBy: d.approvedBy };
      }
      case 'mpchsm:RestoreSigner': {
        const r = signerRestorationSchema.parse(proposal.parameters);
        const entry = this.checkRestoreSigner(r);
        // Every active signer checks the backup and pins the new identity first; the restored
        // signer is enrolled after (gateway/add-signer.ts), as a newcomer is.
        const changes = await this.changes.forward({ ...approved, operation: 'RestoreSigner', parameters: proposal.parameters }, proposal.proposer);
        if (!changes.some((c) => c.applied)) throw new KmsError('AccessDeniedException', `no signer applied the restoration of ${entry.name}: ${changes.map((c) => `${c.signer}: ${c.reason ?? 'not applied'}`).join('; ')}`);
        const lacking = await recordRestoration(this.keys, r);
        await this.signers.awaitReadmission(entry);
        // Keys made after the backup: the restored signer receives a share at their next refresh.
        return { result: { Signer: { Name: entry.name, Id: entry.id }, KeysToRefresh: lacking }, changes, approvedBy: d.approvedBy };
      }
      case 'mpchsm:RemoveSigner': {
        const s = this.checkRemoveSigner(signerRemovalSchema.parse(proposal.parameters).Name);
        // Every signer (the removed one too, if it still answers) hears of it before the
        // gateway stops asking the removed one anything.
        const changes = await this.changes.forward({ ...approved, operation: 'RemoveSigner', parameters: proposal.parameters }, proposal.proposer);
        await this.signers.retire(s.id);
        await this.changes.settle();
        return { result: { Signer: { Name: s.name, Id: s.id } }, changes, approvedBy: d.approvedBy };
      }
      default:
        throw new KmsError('UnsupportedOperationException', `${proposal.operation} is not a principal or governance change`);
    }
    this.keyPolicies.refresh();
    return { result, changes: await this.changes.forward(change, proposal.proposer), approvedBy: d.approvedBy };
  }

  /** The gateway's record of a new principal: no secret (its sealed copies are the signers'). */
  private recordOf(e: PrincipalEnrolment): Principal {
    return { name: e.Name, role: e.Role, accessKeyId: e.AccessKeyId, pinLoginHash: e.PinLoginHash };
  }
}
