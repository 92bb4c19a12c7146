// The gateway's side of governance: the verified governance document, the principals as the
// policy engine sees them, key policies, and the channel to the signers' own copies.
//
// What the gateway holds: the governance chain (public, verified at start), the principals'
// names, roles, access key ids and PIN login hashes (no one's secret), the proposals and
// approvals it collects (proposals.ts), and a numbered log of the changes it forwarded to the
// signers. What it does not decide alone: every request is authenticated by a signer
// (/v1/auth/sigv4);
// every Sign or Decrypt is re-checked by each participating signer from the client's own
// signed request; every approved change reaches the signers with its proposal and approvals,
// which they verify against their own governance. The gateway's decisions here are the first
// line, so that honest requests get AWS's answers; the signers' are the ones that hold.
//
// Principal and governance changes (policy/membership.ts) are proposals too. Once approved the
// gateway applies them to its own copies — the principals it authenticates, the governance
// chain, the PIN verifiers — and forwards them in the same numbered log, so each signer applies
// them in the same order relative to key changes, after verifying them itself. A signer's
// removal goes the same way; then the gateway stops asking that signer anything (its keys are
// reshared by remove-signer.ts).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  administratorChanges,
  authorize,
  defaultKeyPolicy,
  enrolmentProblem,
  governanceUpdateSchema,
  parseKeyPolicy,
  principalEnrolmentSchema,
  principalRemovalSchema,
  signedUpdate,
  signerAdmissionSchema,
  signerRemovalSchema,
  successorProblem,
  verifyGovernanceChain,
  verifyGovernanceUpdate,
  type AuthorizeInput,
  type GovernanceDocument,
  type GovernanceUpdate,
  type KeyPolicy,
  type PrincipalEnrolment,
  type SignerAdmission,
} from '../policy/index.js';
import type { AuditLog } from '../audit/log.js';
import { writeFileAtomic } from '../contract/io/atomic.js';
import type { SignerChange, UnnumberedChange } from '../contract/signer-rpc/authority.js';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import { parsePublicIdentity, type PublicIdentity } from '../contract/identity/identity.js';
import { gatewayPaths, signerEntrySchema, type GatewayConfig, type SignerEntry } from './config.js';
import type { KeyRecord, KeyStore } from './keys.js';
import { KmsError, type KmsErrorName } from './kms/errors.js';
import type { KmsState } from './kms/state.js';
import { readPinKdf, type Principal, type PrincipalRegistry } from './principals.js';
import { ProposalStore, type StoredProposal } from './proposals.js';
import { SignerClient, SignerRefusedError, SignerUnavailableError } from './signer-client.js';
import { SerialQueue } from './serial-queue.js';

/** Where the gateway keeps the governance chain it was given at bootstrap. */
export const governanceFile = (dir: string) => path.join(dir, 'governance.json');
export const governanceFileSchema = z.strictObject({ chain: z.array(z.unknown()).min(1) });

const RESYNC_MS = 15_000;
const DOWN_FOR_MS = 10_000;

const changeLogSchema = z.object({
  next: z.number().int().min(1),
  /** Per signer id: the last change it processed. */
  acked: z.record(z.string(), z.number().int().min(0)),
  pending: z.array(z.object({ seq: z.number().int() }).passthrough()),
});
type ChangeLog = { next: number; acked: Record<string, number>; pending: SignerChange[] };

/** How one signer took a forwarded change. */
export interface ChangeResult {
  signer: string;
  applied: boolean;
  reason?: string;
}

/** The operations that change who may act. */
const MEMBERSHIP_ACTIONS = ['mpchsm:AddPrincipal', 'mpchsm:RemovePrincipal', 'mpchsm:UpdateGovernance', 'mpchsm:AddSigner', 'mpchsm:RemoveSigner'] as const;
export type MembershipAction = (typeof MEMBERSHIP_ACTIONS)[number];
export const isMembershipAction = (a: string): a is MembershipAction => (MEMBERSHIP_ACTIONS as readonly string[]).includes(a);

/** Signers removed by approved proposals (party ids), kept by the gateway beside its change log. */
const retiredFileSchema = z.strictObject({ retired: z.array(z.number().int().min(1).max(255)) });
/** Signers added by approved proposals that are not yet admitted (gateway/add-signer.ts). */
const admissionsFileSchema = z.strictObject({ pending: z.array(signerEntrySchema) });

export class GatewayPolicy {
  readonly proposals: ProposalStore;
  private readonly clients: SignerClient[];
  private readonly downUntil = new Map<number, number>();
  private readonly parsed = new Map<string, KeyPolicy>();
  private defaultText = '';
  private changes: ChangeLog;
  /** The change log: forwarding, resync and admissions, one at a time. */
  private readonly queue = new SerialQueue();
  /** Principal and governance changes, one at a time (each is checked against the state the last left). */
  private readonly membershipQueue = new SerialQueue();
  private readonly timer: NodeJS.Timeout;
  private readonly changesFile: string;
  private readonly retiredFile: string;
  private retiredIds: Set<number>;
  private readonly admissionsFile: string;
  private pendingAdmissions: SignerEntry[];

  private constructor(
    /** The verified governance chain; its last version is in force. */
    private chain: unknown[],
    private current: GovernanceDocument,
    private readonly dir: string,
    private readonly config: GatewayConfig,
    private readonly principals: PrincipalRegistry,
    private readonly kmsState: KmsState,
    private readonly log: Logger,
    /** A client of the gateway's own for a signer (Cluster.clientFor). */
    private readonly clientFor: (s: SignerEntry) => SignerClient,
    private readonly keys: KeyStore,
    private readonly audit: AuditLog,
  ) {
    this.changesFile = path.join(dir, 'signer-changes.json');
    this.retiredFile = path.join(dir, 'retired-signers.json');
    const retired = readJson(this.retiredFile);
    this.retiredIds = new Set(retired === undefined ? [] : retiredFileSchema.parse(retired).retired);
    this.admissionsFile = path.join(dir, 'signer-admissions.json');
    const admissions = readJson(this.admissionsFile);
    this.pendingAdmissions = admissions === undefined ? [] : admissionsFileSchema.parse(admissions).pending;
    this.proposals = new ProposalStore(path.join(dir, 'proposals.json'), () => this.current);
    this.clients = config.signers.map(clientFor);
    this.refreshDefaultPolicy();
    // A damaged log must stop the gateway: renumbering from 1 would make every signer take new
    // changes for ones it already processed.
    const saved = readJson(this.changesFile);
    this.changes = saved === undefined ? { next: 1, acked: {}, pending: [] } : (changeLogSchema.parse(saved) as ChangeLog);
    this.timer = setInterval(() => void this.resync(), RESYNC_MS);
    this.timer.unref();
  }

  /** Loads and verifies the governance chain; the gateway does not start without one. */
  static load(o: {
    dir: string;
    config: GatewayConfig;
    principals: PrincipalRegistry;
    kmsState: KmsState;
    log: Logger;
    clientFor: (s: SignerEntry) => SignerClient;
    keys: KeyStore;
    audit: AuditLog;
  }): GatewayPolicy {
    const file = governanceFile(o.dir);
    const raw = readJson(file);
    if (raw === undefined) throw new Error(`${file} is missing: this gateway has no governance (re-initialise the cluster)`);
    const { chain } = governanceFileSchema.parse(raw);
    const g = verifyGovernanceChain(chain);
    if (!g.ok) throw new Error(`${file}: ${g.reason}`);
    const p = new GatewayPolicy(chain, g.governance, o.dir, o.config, o.principals, o.kmsState, o.log, o.clientFor, o.keys, o.audit);
    void p.resync();
    return p;
  }

  close(): void {
    clearInterval(this.timer);
    for (const c of this.clients) c.close();
  }

  // ---- the policy engine's view -------------------------------------------------------------

  /** The governance version in force. */
  get governance(): GovernanceDocument {
    return this.current;
  }

  /** Computed exactly as each signer computes it from its own registry (signers/node/guard.ts). */
  private refreshDefaultPolicy(): void {
    const named = (role: Principal['role']) => this.principals.all().filter((p) => p.role === role).map((p) => p.name).sort();
    this.defaultText = JSON.stringify(defaultKeyPolicy(this.config.account, named('admin'), named('app'), named('auditor')), null, 2);
  }

  principalOf(p: Principal): AuthorizeInput['principal'] {
    return { name: p.name, role: p.role, arn: `arn:aws:iam::${this.config.account}:user/${p.name}` };
  }

  /** The policy of a key created without one (the same document the signers compute). */
  defaultPolicyText(): string {
    return this.defaultText;
  }

  policyText(keyId: string): string {
    return this.kmsState.policy(keyId) ?? this.defaultText;
  }

  keyInput(key: KeyRecord): NonNullable<AuthorizeInput['key']> {
    const text = this.policyText(key.keyId);
    let policy = this.parsed.get(text);
    if (!policy) {
      try {
        policy = parseKeyPolicy(text);
      } catch (e) {
        throw new KmsError('AccessDeniedException', `key ${key.keyId} has a key policy mpchsm cannot evaluate (${(e as Error).message}); nothing is allowed on it until an approved PutKeyPolicy replaces it`);
      }
      if (this.parsed.size > 10_000) this.parsed.clear();
      this.parsed.set(text, policy);
    }
    return { arn: `arn:aws:kms:${this.config.region}:${this.config.account}:key/${key.keyId}`, policy, keySpec: key.keySpec, keyUsage: key.keyUsage, origin: key.origin };
  }

  // ---- application authentication, by a signer ----------------------------------------------

  /**
   * Has a signer verify an application's SigV4 request (the gateway holds no application
   * secret). Resolves the access key id, or throws the AWS error the signer found.
   */
  async authenticate(evidence: unknown, requestId: string): Promise<string> {
    const now = Date.now();
    const ordered = this.active().sort((a, b) => Number((this.downUntil.get(a.id) ?? 0) > now) - Number((this.downUntil.get(b.id) ?? 0) > now));
    for (const c of ordered) {
      try {
        return (await c.call(signerRoutes.auth.sigv4, { session: requestId, request: evidence })).accessKeyId;
      } catch (e) {
        if (e instanceof SignerUnavailableError) {
          this.downUntil.set(c.id, Date.now() + DOWN_FOR_MS);
          continue;
        }
        if (e instanceof SignerRefusedError && /^[A-Z][A-Za-z]+Exception$/.test(e.code)) throw new KmsError(e.code as KmsErrorName, refusal(e));
        throw new KmsError('KMSInternalException', `authentication failed at a signer: ${(e as Error).message}`);
      }
    }
    throw new KmsError('DependencyTimeoutException', 'No signer answered to authenticate the request; retry later');
  }

  // ---- principals and governance -------------------------------------------------------------

  /** What administrators' tools read: the governance chain, the PIN key derivation, the principals (no secret). */
  describe(): object {
    return {
      Governance: this.chain,
      PinKdf: readPinKdf(this.dir),
      Principals: this.principals.all().map((p) => ({ Name: p.name, Role: p.role, AccessKeyId: p.accessKeyId })).sort((a, b) => (a.Name < b.Name ? -1 : 1)),
      Signers: [
        ...this.config.signers.map((s) => ({ Name: s.name, Id: s.id, State: this.retiredIds.has(s.id) ? 'Retired' : 'Active' })),
        ...this.pendingAdmissions.map((s) => ({ Name: s.name, Id: s.id, State: 'AwaitingAdmission' })),
      ],
    };
  }

  /** Refuses adding a principal that could not be added, before anyone approves it. */
  checkAddPrincipal(e: PrincipalEnrolment): void {
    if (e.Role === 'admin') throw invalid(`${e.Name}: administrators are added by a governance update (mpchsm governance propose), which gives them an approval key`);
    this.checkNewPrincipal(e);
  }

  /** A new principal's secret is sealed to every active signer and to nobody else: the gateway must never hold it. */
  private checkSealedToSigners(e: PrincipalEnrolment): void {
    const parties = e.Secrets.map((s) => s.Party).sort((a, b) => a - b);
    const expected = this.activeIds();
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

  /** Signers removed by approved proposals (party ids). */
  get retired(): ReadonlySet<number> {
    return this.retiredIds;
  }

  /**
   * Refuses removing a signer that is not an active one, or one without which some key could no
   * longer be used: fewer signers than a key's threshold (or the cluster's) would remain.
   */
  checkRemoveSigner(name: string): { name: string; id: number } {
    const s = this.config.signers.find((x) => x.name === name);
    if (!s) throw new KmsError('NotFoundException', `signer ${name} does not exist`);
    if (this.retiredIds.has(s.id)) throw invalid(`signer ${name} is already removed`);
    const remaining = this.activeIds().filter((id) => id !== s.id);
    if (remaining.length < this.config.threshold) throw invalid(`removing ${name} would leave ${remaining.length} signers, fewer than the cluster's threshold ${this.config.threshold}`);
    for (const k of this.keys.list()) {
      const left = k.holders.filter((id) => remaining.includes(id)).length;
      if (left < k.threshold) throw invalid(`removing ${name} would leave key ${k.keyId} with ${left} of its holders, fewer than its threshold ${k.threshold}`);
    }
    return { name: s.name, id: s.id };
  }

  /** Party ids of the signers not removed, ascending. */
  private activeIds(): number[] {
    return this.config.signers.map((s) => s.id).filter((id) => !this.retiredIds.has(id)).sort((a, b) => a - b);
  }

  /** Refuses adding a signer whose name, party id or identity is already used, before anyone approves it. */
  checkAddSigner(a: SignerAdmission): SignerEntry {
    let identity: PublicIdentity;
    try {
      identity = parsePublicIdentity(a.Identity);
    } catch (e) {
      throw invalid((e as Error).message);
    }
    const known = [...this.config.signers, ...this.pendingAdmissions];
    const clash = known.find((s) => s.name === a.Name || s.id === a.Id || s.identity.signPublicKey === identity.signPublicKey || s.identity.kexPublicKey === identity.kexPublicKey);
    if (clash) throw new KmsError('AlreadyExistsException', `signer ${a.Name} (party ${a.Id}) clashes with signer ${clash.name}: names, party ids and identities are never reused`);
    return { name: a.Name, id: a.Id, url: a.Endpoint, identity };
  }

  /** Signers whose addition is approved but who are not admitted yet. */
  awaitingAdmission(): string[] {
    return this.pendingAdmissions.map((s) => s.name);
  }

  /** A signer added by an approved proposal: pending admission, or admitted (then in the configuration). */
  addedSigner(name: string): { entry: SignerEntry; admitted: boolean } | undefined {
    const pending = this.pendingAdmissions.find((s) => s.name === name);
    if (pending) return { entry: pending, admitted: false };
    const s = this.config.signers.find((x) => x.name === name);
    return s && !this.retiredIds.has(s.id) ? { entry: s, admitted: true } : undefined;
  }

  /**
   * Makes an enrolled newcomer a signer of the gateway's: in the configuration (saved), asked
   * every change after `seq` (the last one its enrolment state had processed). Runs in the
   * change queue, so no change is forwarded between the enrolment and this.
   */
  completeAdmission(entry: SignerEntry, enrol: () => Promise<{ seq: number }>): Promise<void> {
    return this.queue.run(async () => {
      const { seq } = await enrol();
      this.config.signers.push(entry);
      await writeFileAtomic(gatewayPaths(this.dir).config, Buffer.from(JSON.stringify(this.config, null, 2) + '\n'), 0o600);
      this.clients.push(this.clientFor(entry));
      this.changes.acked[entry.id] = seq;
      await this.save();
      await this.savePendingAdmissions(this.pendingAdmissions.filter((s) => s.id !== entry.id));
    });
  }

  private async savePendingAdmissions(pending: SignerEntry[]): Promise<void> {
    await writeFileAtomic(this.admissionsFile, Buffer.from(JSON.stringify({ pending }) + '\n'), 0o600);
    this.pendingAdmissions = pending;
  }

  /** Refuses a governance update that cannot follow the version in force, before anyone approves it. */
  checkGovernanceUpdate(u: GovernanceUpdate): void {
    const problem = successorProblem(this.current, u.Document) ?? enrolmentProblem(this.current, u.Document, u.Principals);
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
  executeMembership(stored: StoredProposal): Promise<{ result: object; changes: ChangeResult[]; approvedBy: string[] }> {
    return this.membershipQueue.run(() => this.executeMembershipNow(stored));
  }

  private async executeMembershipNow({ proposal, approvals }: StoredProposal): Promise<{ result: object; changes: ChangeResult[]; approvedBy: string[] }> {
    const proposer = this.principals.byName(proposal.proposer);
    if (!proposer) throw new KmsError('AccessDeniedException', `the proposer ${proposal.proposer} is no longer a principal`);
    const d = authorize({
      principal: this.principalOf(proposer),
      operation: proposal.operation,
      governance: this.current,
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
        const r = verifyGovernanceUpdate(this.current, signed);
        if (!r.ok) throw new KmsError('AccessDeniedException', r.reason);
        const { added, removed } = administratorChanges(this.current, r.governance);
        await this.principals.update(removed, u.Principals.map((e) => this.recordOf(e)));
        const chain = [...this.chain, signed];
        await writeFileAtomic(governanceFile(this.dir), Buffer.from(JSON.stringify({ chain }, null, 2) + '\n'), 0o644);
        [this.chain, this.current] = [chain, r.governance];
        // With the new chain link, which administrators' tools verify and keep.
        result = { Governance: { Version: r.governance.version, Administrators: r.governance.administrators.map((a) => a.name), Added: added, Removed: removed, Quorum: r.governance.quorum }, Link: signed };
        // A signed chain link proves itself: the signers need no proposal beside it.
        change = { principal: proposal.proposer, operation: 'UpdateGovernance', parameters: { Governance: signed, Principals: u.Principals } };
        break;
      }
      case 'mpchsm:AddSigner': {
        const entry = this.checkAddSigner(signerAdmissionSchema.parse(proposal.parameters));
        // Every active signer pins the newcomer first; it is admitted after (gateway/add-signer.ts).
        const changes = await this.forward({ ...approved, operation: 'AddSigner', parameters: proposal.parameters }, proposal.proposer);
        await this.savePendingAdmissions([...this.pendingAdmissions, entry]);
        return { result: { Signer: { Name: entry.name, Id: entry.id } }, changes, approvedBy: d.approvedBy };
      }
      case 'mpchsm:RemoveSigner': {
        const s = this.checkRemoveSigner(signerRemovalSchema.parse(proposal.parameters).Name);
        // Every signer (the removed one too, if it still answers) hears of it before the
        // gateway stops asking the removed one anything.
        const changes = await this.forward({ ...approved, operation: 'RemoveSigner', parameters: proposal.parameters }, proposal.proposer);
        const retired = [...this.retiredIds, s.id].sort((a, b) => a - b);
        await writeFileAtomic(this.retiredFile, Buffer.from(JSON.stringify({ retired }) + '\n'), 0o600);
        this.retiredIds = new Set(retired);
        await this.queue.run(() => this.prune()); // the removed signer's acknowledgements no longer hold changes back
        return { result: { Signer: { Name: s.name, Id: s.id } }, changes, approvedBy: d.approvedBy };
      }
      default:
        throw new KmsError('UnsupportedOperationException', `${proposal.operation} is not a principal or governance change`);
    }
    this.refreshDefaultPolicy();
    return { result, changes: await this.forward(change, proposal.proposer), approvedBy: d.approvedBy };
  }

  /** The gateway's record of a new principal: no secret (its sealed copies are the signers'). */
  private recordOf(e: PrincipalEnrolment): Principal {
    return { name: e.Name, role: e.Role, accessKeyId: e.AccessKeyId, pinLoginHash: e.PinLoginHash };
  }

  // ---- changes the signers keep their own copy of -------------------------------------------

  /**
   * Forwards an executed change (with its proposal and approvals when under quorum) to every
   * signer, in order. A signer that is down gets it later (resync); one that refuses says why.
   */
  forward(change: UnnumberedChange, principal: string): Promise<ChangeResult[]> {
    return this.queue.run(async () => {
      const entry = { ...change, seq: this.changes.next } as SignerChange;
      // Recorded under the number each signer's own entry for it carries, before any signer sees it.
      await this.audit.append({
        request: `change-${entry.seq}`,
        op: `change.${entry.operation}`,
        operation: entry.operation,
        principal: { name: principal },
        keyId: 'keyId' in entry ? entry.keyId : undefined,
        signers: this.active().map((c) => ({ name: c.name, id: c.id })),
        outcome: 'ok',
        startedAt: Date.now(),
      });
      this.changes = { ...this.changes, next: entry.seq + 1, pending: [...this.changes.pending, entry] };
      await this.save();
      const results = await Promise.all(this.active().map((c) => this.push(c, entry.seq)));
      await this.prune();
      return results;
    });
  }

  /** Pushes changes signers missed (they were down), oldest first. */
  resync(): Promise<unknown> {
    if (this.changes.pending.length === 0) return Promise.resolve();
    return this.queue.run(async () => {
      await Promise.all(this.active().map((c) => this.push(c)));
      await this.prune();
    }).catch((e: Error) => this.log.warn({ err: e.message }, 'resync failed'));
  }

  /** Sends `c` every pending change after its last; answers how it took change `target`. */
  private async push(c: SignerClient, target?: number): Promise<ChangeResult> {
    let result: ChangeResult = { signer: c.name, applied: false, reason: 'not sent' };
    for (const change of this.changes.pending) {
      if (change.seq <= (this.changes.acked[c.id] ?? 0)) continue;
      let outcome: ChangeResult;
      try {
        const r = await c.call(signerRoutes.policy.apply, change);
        outcome = { signer: c.name, applied: r.applied, ...(r.applied ? {} : { reason: 'already applied' }) };
      } catch (e) {
        if (e instanceof SignerRefusedError && e.code !== 'out-of-order' && e.code !== 'unauthenticated') {
          outcome = { signer: c.name, applied: false, reason: refusal(e) };
          this.log.error({ signer: c.name, seq: change.seq, operation: change.operation, reason: outcome.reason }, 'a signer refused a change');
        } else {
          this.log.warn({ signer: c.name, seq: change.seq, err: (e as Error).message }, 'change not delivered; will retry');
          return { signer: c.name, applied: false, reason: (e as Error).message };
        }
      }
      this.changes.acked[c.id] = change.seq;
      if (change.seq === target) result = outcome;
    }
    return result;
  }

  private async prune(): Promise<void> {
    const done = Math.min(...this.active().map((c) => this.changes.acked[c.id] ?? 0));
    this.changes = { ...this.changes, pending: this.changes.pending.filter((c) => c.seq > done) };
    await this.save();
  }

  /** The signers not removed: the only ones asked anything. */
  private active(): SignerClient[] {
    return this.clients.filter((c) => !this.retiredIds.has(c.id));
  }

  private save(): Promise<void> {
    return writeFileAtomic(this.changesFile, Buffer.from(JSON.stringify(this.changes) + '\n'), 0o600);
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

const invalid = (message: string) => new KmsError('ValidationException', message);

/** A signer's refusal message without the client's "signer X refused:" prefix. */
const refusal = (e: SignerRefusedError) => e.message.replace(/^signer \S+ refused: /, '');

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
