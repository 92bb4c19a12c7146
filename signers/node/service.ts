// What a signer does when the gateway asks: take part in key generation, hold shares sealed,
// and produce partial signatures/decryptions — checking for itself everything it can (who
// takes part, which key, which session) rather than taking the gateway's word.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { dkgStart, dkgStep, publicPackage, type DkgState } from '../protocols/dkg.js';
import { groupNames } from '../protocols/suites.js';
import type { SignerConfig } from './config.js';
import type { IdentitySecrets } from '../../contract/identity/identity.js';
import { EcdsaSessions } from './ecdsa.js';
import { PolicyGuard, type CreateRecord, type PendingKey } from './guard/index.js';
import { guardEcdsaRoutes } from './guard/ecdsa-routes.js';
import { encodeShareRecord } from './key-records.js';
import { Relay, keyRecordName } from './relay.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { RpcError, type Answer, type Recorded, type RpcHandler, type RpcMeta } from './rpc.js';
import { signerAuditRequest } from '../../contract/signer-rpc/audit.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';
import { RsaShares } from './rsa.js';
import { protocolFailure, runStep, sealStep, SessionTable } from './sessions.js';
import { FrostSigning } from './frost.js';
import { PrfEvaluations } from './tprf.js';
import { randomRoutes } from './random.js';
import { DKG_GROUP_OF_SPEC } from '../../contract/keys/specs.js';
import { inventoryAnswer } from './inventory.js';
import { Posture } from './posture.js';
import { StoreCheck } from './store-check.js';
import { ReshareSessions, pendingName } from './reshare.js';
import { answerCredentials, sealAdmissionState, type OwnTpm } from './admission.js';
import { ActivationChallenges, ActivationError } from './tpm/activation.js';
import { fingerprint } from '../../contract/identity/identity.js';
import type { AuditLog } from '../../audit/log.js';
import type { Released } from '../../contract/signer-rpc/released.js';

const keyRecord = keyRecordName;
const { dkg, rsa, keys, auth, policy, admission, audit, posture } = signerRoutes;
/** Anchors recorded at most this often: a gateway asking more often is answered, not recorded. */
const ANCHOR_MIN_MS = 200;
// The members only the protocols parse, narrowed here; the rest as the contract says.
const dkgStartRequest = dkg.start.request.extend({ suite: z.enum(groupNames) });

/** What an answer adds to this signer's audit log: a release, or (`recorded`) another act. */
type Handler = (body: unknown, meta: RpcMeta) => Promise<{ released?: Released; recorded?: Recorded; [k: string]: unknown }>;

interface DkgSession {
  kind: 'dkg';
  keyId: string;
  state: DkgState;
  /** What the DKG makes: a new key (authorised, pending), or a new material of a symmetric key. */
  makes: { pending: PendingKey } | { material: number };
}

export class SignerService {
  private readonly sessions = new SessionTable<DkgSession>();
  private readonly relay: Relay;
  private readonly ecdsa: EcdsaSessions;
  /** Key ids this signer holds a share of (the shares themselves stay in the sealed store). */
  private readonly keyIds = new Set<string>();
  private readonly rsa: RsaShares;
  private readonly frost: FrostSigning;
  private readonly prf: PrfEvaluations;
  private readonly reshare: ReshareSessions;
  /** The gateway head last anchored here, and when (audit anchors, bounded in rate). */
  private anchored: { head?: { seq: number; hash: string }; at: number } = { at: 0 };
  private readonly storeCheck: StoreCheck;
  private readonly posture: Posture;
  /** Credentials made for newcomers' and founders' TPMs, awaiting their answers. */
  private readonly activations: ActivationChallenges;

  private constructor(
    private readonly config: SignerConfig,
    private readonly store: ShareStore,
    private readonly identity: IdentitySecrets,
    private readonly log: Logger,
    private readonly audit: AuditLog,
    private readonly guard: PolicyGuard,
    /** A TPM-sealed signer's TPM and attestation key: it answers the other signers' credentials with them. */
    private readonly tpm: OwnTpm | undefined,
  ) {
    this.relay = new Relay(config, identity, guard.retired, (ids) => guard.checkProven(ids));
    this.relay.admit(guard.peers, guard.retired);
    this.rsa = new RsaShares(config, store, identity, this.relay, guard);
    this.frost = new FrostSigning(config, store, this.relay, guard, log);
    this.prf = new PrfEvaluations(store, guard, log);
    this.ecdsa = new EcdsaSessions(config, store, this.relay, log);
    this.reshare = new ReshareSessions(config, store, this.relay, guard, log);
    this.storeCheck = new StoreCheck(store.dir);
    this.posture = new Posture(identity, store, guard, audit, tpm);
    this.activations = new ActivationChallenges(config.id);
  }

  static async start(ctx: { config: SignerConfig; store: ShareStore; identity: IdentitySecrets; log: Logger; audit: AuditLog; tpm?: OwnTpm | undefined }): Promise<SignerService> {
    const guard = await PolicyGuard.load(ctx.store, ctx.audit, { identity: ctx.identity, party: ctx.config.id, peers: ctx.config.peers, threshold: ctx.config.threshold });
    const s = new SignerService(ctx.config, ctx.store, ctx.identity, ctx.log, ctx.audit, guard, ctx.tpm);
    for (const name of await ctx.store.list()) if (name.startsWith('key.')) s.keyIds.add(name.slice(4));
    return s;
  }

  /** Unauthenticated: who this is, and whether it can serve — its store writable, as last checked (store-check.ts). */
  health() {
    const store = this.storeCheck.status;
    return {
      status: store === 'writable' ? 'ok' : 'degraded',
      store,
      pid: process.pid,
      name: this.config.name,
      id: this.config.id,
      fingerprint: this.identity.fingerprint,
      keys: this.keyIds.size,
      sessions: this.sessions.size + this.frost.held.sessions,
      preprocessed: this.frost.held.preprocessed,
      retired: this.guard.retired.has(this.config.id),
    };
  }

  /** What /metrics reads of this signer's state (signers/node/metrics.ts): its epoch, as its posture report gives it, and the keys it holds. */
  metricsState(): { epoch: { governanceVersion: number; ledgerSeq: number }; keys: number } {
    return { epoch: this.guard.epoch, keys: this.keyIds.size };
  }

  routes(): Record<string, RpcHandler> {
    const routes: Record<string, Handler> = {
      [dkg.start.path]: (b) => this.dkgStart(b),
      [dkg.step.path]: (b) => this.dkgStep(b),
      ...this.frost.routes(),
      ...this.prf.routes(),
      ...randomRoutes(this.guard),
      [rsa.install.path]: async (b) => this.installed(await this.rsa.install(b)),
      [rsa.partial.path]: (b) => this.rsa.partial(b),
      [keys.forget.path]: (b) => this.forget(b),
      [keys.commit.path]: (b) => this.commit(b),
      [keys.inventory.path]: (b) => inventoryAnswer(this.store, this.guard, b),
      [keys.destroy.path]: (b) => this.destroy(b),
      [auth.sigv4.path]: (b) => this.guard.authenticate(b),
      [policy.apply.path]: async (b) => {
        const r = await this.guard.apply(b);
        this.relay.admit(this.guard.peers, this.guard.retired);
        this.relay.retire(this.guard.retired);
        this.ecdsa.dropPresignatures((p) => p.signers.some((id) => this.guard.retired.has(id)));
        return r;
      },
      [admission.activation.path]: (b) => this.activationCredential(b),
      [admission.package.path]: (b) => this.admissionPackage(b),
      [admission.activate.path]: (b) => answerCredentials(this.tpm, this.identity, b),
      [admission.confirm.path]: (b) => this.confirmActivation(b),
      [audit.anchor.path]: (b, meta) => this.anchor(b, meta),
      [audit.read.path]: (b) => this.posture.readAudit(b),
      [posture.report.path]: async (b) => this.posture.report(b),
      ...this.reshare.routes((keyId) => {
        this.keyIds.add(keyId);
      }),
      ...guardEcdsaRoutes(this.guard, this.ecdsa.routes((keyId) => this.keyIds.add(keyId))),
    };
    return Object.fromEntries(Object.entries(routes).map(([path, h]) => [path, this.audited(path.slice(4).replaceAll('/', '.'), h)]));
  }

  /**
   * Runs a handler and writes this signer's audit entry before the answer leaves: every
   * release (partial, key share), every act a handler reports as recorded, and every refusal. The entry's head goes back to the gateway,
   * which records it, so a signer log cut short later is caught by the cross-check.
   */
  private audited(op: string, handler: Handler): RpcHandler {
    return async (body, meta) => {
      const startedAt = Date.now();
      const b = (body ?? {}) as { session?: unknown; keyId?: unknown };
      const str = (v: unknown) => (typeof v === 'string' && /^[A-Za-z0-9-]{1,128}$/.test(v) ? v : undefined);
      // The id the gateway's intent and outcome name too.
      const request = signerAuditRequest(body);
      const heads = meta.callerHead ? [{ party: this.config.gateway.name, ...meta.callerHead }] : undefined;
      const base = { request, op, caller: this.config.gateway.name, heads, startedAt };
      // One line a call, under the audit entry's `request` (the gateway's log line names it `session`).
      const logged = (outcome: string, keyId: string | undefined, output = 'none') =>
        this.log.info({ request, op, ...(keyId ? { keyId } : {}), outcome, output, ms: Date.now() - startedAt }, 'call');
      let result: Awaited<ReturnType<Handler>>;
      try {
        result = await handler(body, meta);
      } catch (e) {
        const refused = e instanceof RpcError || e instanceof z.ZodError;
        if (!refused) this.storeCheck.failed();
        const reason = e instanceof z.ZodError ? 'malformed request' : (e as Error).message.slice(0, 1000);
        await this.audit.append({ ...base, keyId: str(b.keyId), outcome: refused ? 'refused' : 'failed', reason, output: 'none' });
        logged(refused ? 'refused' : 'failed', str(b.keyId));
        throw e;
      }
      const { released, recorded, ...answer } = result;
      if (recorded) await this.audit.append({ ...base, ...recorded, outcome: 'ok', output: 'none' });
      if (!released) {
        logged('ok', recorded?.keyId ?? str(b.keyId));
        return answer;
      }
      const { keyId, ...rest } = released;
      const head = await this.audit.append({ ...base, keyId, session: str(b.session), ...rest, outcome: 'ok' });
      logged('ok', keyId, released.output);
      return { ...answer, audit: head };
    };
  }

  /** A credential for the TPM of a signer pinned under require_attestation (a newcomer, a founder) for `challenge` (tpm/activation.ts); none for another. */
  private async activationCredential(body: unknown): Promise<Answer<typeof admission.activation>> {
    const req = admission.activation.request.parse(body);
    const awaiting = this.guard.awaitingActivation(req.name);
    if (!awaiting) return { from: this.config.id };
    const credential = await this.activations.issue(req.name, req.challenge, awaiting.target);
    return { from: this.config.id, credential, recorded: { request: `admission-${req.name}`, detail: { newcomer: req.name, activation: 'challenged' } } };
  }

  /**
   * Hands a newly admitted signer this one's policy state, sealed to it; recorded here. A newcomer
   * pinned under require_attestation must first have answered this signer's credential.
   */
  private async admissionPackage(body: unknown): Promise<Answer<typeof admission.package>> {
    const req = admission.package.request.parse(body);
    const activated = await this.activate(req.name, req.challenge, req.proof);
    const sealed = sealAdmissionState(this.guard, this.config, this.identity, req);
    return { ...sealed, recorded: { request: `admission-${req.name}`, detail: { newcomer: req.name, ...(activated ? { activated: true } : {}) } } };
  }

  /** A founding signer's TPM answered this signer's credential (signers/node/genesis.ts): from now on sessions including it are joined; recorded. */
  private async confirmActivation(body: unknown): Promise<Answer<typeof admission.confirm>> {
    const req = admission.confirm.request.parse(body);
    if (!this.guard.peers.some((p) => p.name === req.name && !this.guard.retired.has(p.id))) throw new RpcError(403, 'access-denied', `access denied: ${req.name} is not an active signer of this cluster`);
    if (!(await this.activate(req.name, req.challenge, req.proof))) return { from: this.config.id };
    return { from: this.config.id, recorded: { request: `activation-${req.name}`, detail: { signer: req.name, activated: true } } };
  }

  /** Where `name` awaits activation here: its `proof` must answer the credential made for `challenge`, which ends the wait. False: nothing awaited. */
  private async activate(name: string, challenge: string, proof: string | undefined): Promise<boolean> {
    const awaiting = this.guard.awaitingActivation(name);
    if (!awaiting) return false;
    try {
      this.activations.check(name, challenge, fingerprint(awaiting.peer.identity), proof);
    } catch (e) {
      if (e instanceof ActivationError) throw new RpcError(403, 'access-denied', `access denied: ${e.message}`);
      throw e;
    }
    await this.guard.activated(name);
    return true;
  }

  /**
   * Records the gateway's audit head it sent (`callerHead`) in this signer's log: its last
   * entries are then anchored here, and cutting them off its log is caught. At most one a
   * `ANCHOR_MIN_MS`, and only a head later than the last anchored, so a gateway cannot flood the log.
   */
  private async anchor(body: unknown, meta: RpcMeta): Promise<Answer<typeof audit.anchor>> {
    audit.anchor.request.parse(body);
    const head = meta.callerHead;
    if (!head) throw new RpcError(400, 'malformed', 'an audit anchor carries the gateway head as callerHead');
    const now = Date.now();
    const last = this.anchored.head;
    if ((last && head.seq <= last.seq) || now - this.anchored.at < ANCHOR_MIN_MS) return { anchored: false, ...(last && { head: last }) };
    this.anchored = { head, at: now };
    return { anchored: true, head, recorded: { request: 'audit-anchor', detail: { gatewaySeq: head.seq } } };
  }

  private installed({ record, ...r }: { keyId: string; record: CreateRecord }): Answer<typeof rsa.install> {
    this.keyIds.add(r.keyId);
    return { ...r, released: { output: 'key' as const, keyId: r.keyId, ...record } };
  }

  // ---- distributed key generation ---------------------------------------------------------

  private async dkgStart(body: unknown): Promise<Answer<typeof dkg.start>> {
    const req = dkgStartRequest.parse(body);
    // DKG involves every admitted signer: a key exists only where all of them hold a share.
    this.relay.checkKeygenParticipants(req.participants, req.threshold);
    this.sessions.checkFree(req.session);
    let makes: DkgSession['makes'];
    if (req.material !== undefined) {
      await this.prf.checkRotation(req.keyId, req.material, req.suite);
      makes = { material: req.material };
    } else {
      if (this.keyIds.has(req.keyId)) throw new RpcError(409, 'key-exists', `key ${req.keyId} already exists here`);
      const pending = await this.guard.authorizeCreate(req.keyId, req.creation);
      if (DKG_GROUP_OF_SPEC[pending.keySpec] !== req.suite) throw new RpcError(403, 'wrong-suite', `a ${pending.keySpec} key is not made by ${req.suite} key generation`);
      makes = { pending };
    }
    const step = dkgStart({ suite: req.suite, session: req.session, self: this.config.id, participants: req.participants, threshold: req.threshold }, randomBytes);
    this.sessions.begin(req.session, { kind: 'dkg', keyId: req.keyId, state: step.state, makes });
    return { outbound: sealStep(this.relay, `dkg:${req.keyId}`, step) };
  }

  private async dkgStep(body: unknown): Promise<Answer<typeof dkg.step>> {
    const req = dkg.step.request.parse(body);
    const s = this.sessions.take(req.session);
    if (!s || s.kind !== 'dkg') throw new RpcError(404, 'no-session', `no key generation session ${req.session}`);
    return runStep(s.state, async ({ spend, keep }) => {
      const round = s.state.phase === 'round1' ? 1 : 2;
      const step = dkgStep(s.state, spend(this.relay.open(`dkg:${s.keyId}`, req.session, round, req.inbound)));
      if (!step.output) {
        this.sessions.put(req.session, { ...s, state: keep(step.state) });
        return { outbound: sealStep(this.relay, `dkg:${s.keyId}`, step) };
      }
      spend(step.output);
      if ('material' in s.makes) return { outbound: [], publicPackage: publicPackage(step.output), released: await this.prf.storeMaterial(s.keyId, s.makes.material, step.output) };
      // Stored (sealed, atomically) before we tell anyone the key exists.
      await this.store.put(keyRecord(s.keyId), encodeShareRecord(step.output));
      const record = await this.guard.recordCreated(s.makes.pending);
      this.keyIds.add(s.keyId);
      this.log.info({ keyId: s.keyId, session: req.session }, 'key share stored');
      return { outbound: [], publicPackage: publicPackage(step.output), released: { output: 'key' as const, keyId: s.keyId, ...record } };
    }).catch(protocolFailure);
  }

  private async forget(body: unknown): Promise<Answer<typeof keys.forget>> {
    const req = keys.forget.request.parse(body);
    this.guard.checkForget(req.keyId);
    return this.remove(req.keyId);
  }

  /** Commits a new key: from now on only an approved deletion removes it (guard/keys.ts); recorded. */
  private async commit(body: unknown): Promise<Answer<typeof keys.commit>> {
    const req = keys.commit.request.parse(body);
    const committed = (await this.store.has(keyRecord(req.keyId))) && (await this.guard.commitKey(req.keyId));
    return { keyId: req.keyId, committed, recorded: { request: `commit-${req.keyId}`, keyId: req.keyId, detail: { committed } } };
  }

  /** Destroys this signer's share of a key whose approved deletion is due here; recorded. */
  private async destroy(body: unknown): Promise<Answer<typeof keys.destroy>> {
    const req = keys.destroy.request.parse(body);
    this.guard.checkDestroy(req.keyId);
    const r = await this.remove(req.keyId);
    this.log.info({ keyId: req.keyId }, 'key share destroyed: its deletion was due');
    return { ...r, recorded: { request: `destroy-${req.keyId}`, keyId: req.keyId, detail: { held: r.existed } } };
  }

  private async remove(keyId: string) {
    const existed = await this.store.delete(keyRecord(keyId));
    await this.store.delete(pendingName(keyId));
    await this.prf.deleteMaterials(keyId);
    await this.guard.forgotten(keyId);
    this.keyIds.delete(keyId);
    this.ecdsa.dropPresignatures((p) => p.keyId === keyId);
    this.frost.forget(keyId);
    return { keyId, existed };
  }

}
