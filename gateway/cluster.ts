// The gateway core: creates keys across the signers and runs signing/decryption sessions —
// plan → fan out → combine → verify. It holds public material only.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ProtocolError } from '../signers/protocols/common.js';
import { publicPackageSchema } from '../signers/protocols/dkg.js';
import { keyPackageSchema, type KeyPackage } from '../signers/protocols/key-package.js';
import { packageField, publicKeyOfPackage } from './key-package.js';
import { resharePlan } from './revival.js';
import { ReshareJournal, type JournalRecord } from './reshare-journal.js';
import { commitCreation, CreateJournal, recordOfCreation, rollBackCreation, schemeOfSpec, type CreationRecord } from './create-journal.js';
import { proposalSchema } from '../policy/index.js';
import { relayRounds, type Rounds } from './relay.js';
import type { IdentitySecrets } from '../contract/identity/identity.js';
import { type Creation, type RequestEvidence, type ReshareAuthority } from '../contract/signer-rpc/authority.js';
import type { keygenAnswer } from '../contract/signer-rpc/route.js';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import type { GatewayConfig, SignerEntry } from './config.js';
import { KeyStore, type KeyRecord } from './keys.js';
import { DKG_GROUP_OF_SPEC, RSA_PKCS1_RAW, type CreatableKeySpec, type KeySpec } from '../contract/keys/specs.js';
import { BadPartialError, Planner, QuorumUnavailableError, type AbortReason, type Attempt, type FirstAnswer } from './planner.js';
import { SignerClient, SignerRefusedError, SignerUnavailableError } from './signer-client.js';
import { verifySignature } from './verify.js';
import { RsaCoordinator } from './rsa.js';
import { type EncryptionAlgorithm } from '../contract/keys/specs.js';
import { EcdsaCoordinator } from './ecdsa.js';
import { FrostCoordinator } from './frost.js';
import { PrfCoordinator } from './tprf.js';
import { gatherRandom, type RandomRequest } from './random.js';
import { SerialQueue } from '../contract/serial-queue.js';
import type { ClusterSessions, KeygenCommon, SignRequest } from './coordinator.js';
import { ClusterError, traceOf, type Trace } from './cluster-outcome.js';

export { ClusterError, type Trace };


export class Cluster implements ClusterSessions {
  readonly keys: KeyStore;
  private readonly clients: Map<number, SignerClient>;
  private readonly planner: Planner;
  readonly rsa: RsaCoordinator;
  private readonly ecdsa: EcdsaCoordinator;
  private readonly frost: FrostCoordinator;
  /** Symmetric keys' threshold PRF. */
  readonly prf: PrfCoordinator;
  /** Resharings told to adopt but not yet adopted everywhere (gateway/reshare-journal.ts). */
  readonly journal: ReshareJournal;
  /** Resharings, one at a time. */
  private readonly reshares = new SerialQueue();
  /** Key creations not finished at every signer yet (gateway/create-journal.ts). */
  readonly creations: CreateJournal;
  /**
   * Marks a proposal executed once the key it creates is recorded (gateway/main.ts sets it), before
   * the journal record goes: a crash after that cannot leave the proposal open for a second key.
   */
  proposalExecuted?: (id: string) => Promise<void>;
  /** Whether a key's policy limits its rate: its sessions then keep to the same signers (planner.ts). */
  rateLimited: (keyId: string) => boolean = () => false;
  /** Told when a signer's failure ends its part in a session (gateway/metrics.ts counts them). */
  signerAborted: (signer: string, reason: AbortReason) => void = () => undefined;

  constructor(
    readonly config: GatewayConfig,
    keysDir: string,
    identity: IdentitySecrets,
    private readonly log: Logger,
    auditHead?: () => { seq: number; hash: string },
  ) {
    this.keys = new KeyStore(keysDir);
    this.journal = new ReshareJournal(path.join(path.dirname(keysDir), 'reshare-journal'));
    this.creations = new CreateJournal(path.join(path.dirname(keysDir), 'create-journal'));
    this.clientFor = (s) => new SignerClient(s, identity, config.signerTimeoutMs, auditHead);
    this.clients = new Map(config.signers.map((s) => [s.id, this.clientFor(s)]));
    this.planner = new Planner(this.clients, config, (level, what) => log[level](what), (c, reason) => this.signerAborted(c.name, reason));
    this.rsa = new RsaCoordinator(this, this.clients, log);
    this.ecdsa = new EcdsaCoordinator(this, identity, log);
    this.frost = new FrostCoordinator(this, this.clients, log);
    this.prf = new PrfCoordinator(this);
  }

  close(): void {
    this.planner.close();
    this.ecdsa.close();
    this.frost.close();
    for (const c of this.clients.values()) c.close();
  }

  /** A client for a signer (one added by an approved proposal is admitted with it before it is planned with). */
  readonly clientFor: (s: SignerEntry) => SignerClient;

  /** The signers planned with: configured or admitted, not removed. */
  get active(): SignerClient[] {
    return [...this.clients.values()];
  }

  /** Each active signer and whether it is reachable, as the planner holds now (not marked down): asks no signer. */
  reachability(): { name: string; reachable: boolean }[] {
    return this.active.map((c) => ({ name: c.name, reachable: this.planner.markOf(c.id) !== 'down' }));
  }

  /**
   * Plans with an admitted signer from now on: new keys include it, resharing may. A restored
   * signer replaces its lost entry: what was prepared with the lost one (FROST nonces, ECDSA
   * presignatures) is dropped, for nobody holds its half any more.
   */
  admit(entry: SignerEntry): void {
    const lost = this.clients.get(entry.id);
    if (lost && lost.entry.identity.signPublicKey === entry.identity.signPublicKey) return;
    if (lost) {
      lost.close();
      this.frost.forget({ signer: entry.id });
      this.ecdsa.dropSigners([entry.id]);
    }
    this.clients.set(entry.id, this.clientFor(entry));
  }

  /** Stops planning with removed signers: no session, key generation or ceremony asks them again. */
  retire(ids: Iterable<number>): void {
    const gone = [...ids];
    for (const id of gone) {
      this.clients.get(id)?.close();
      this.clients.delete(id);
      this.frost.forget({ signer: id });
    }
    this.ecdsa.dropSigners(gone);
  }

  /** Forgets what the gateway holds ahead for a key (FROST nonce commitments, ECDSA presignature ids): it is deleted. */
  forgetPreprocessed(keyId: string): void {
    this.frost.forget({ keyId });
    this.ecdsa.dropKey(keyId);
  }

  /**
   * Reshares a key at its threshold to `participants` (default: its holders that are active;
   * the same set is a refresh — new shares, fresh ECDSA pairs), dealt by its active
   * holders (signers/node/reshare.ts): every new holder must finish with the same public package,
   * with the key's public key, before any of them is told to adopt its new share. One resharing
   * runs at a time, so two approved at once do not interleave at the signers. `authority`: what
   * each signer checks before a refresh (the same holders): who asked, and its approval. Answers
   * the record with the new holders and package.
   */
  reshare(key: KeyRecord, trace: Trace, participants?: readonly number[], authority?: ReshareAuthority): Promise<KeyRecord> {
    return this.reshares.run(async () => {
      // The record as it is now: a resharing queued before this one may have changed it.
      const current = this.keys.get(key.keyId) ?? key;
      const unfinished = this.journal.get(key.keyId);
      // Its holders are split between old and new shares until that one is adopted everywhere.
      if (unfinished) throw new ClusterError('invalid-state', `an interrupted resharing of key ${key.keyId} (session ${unfinished.session}) is not adopted by every holder yet; the repair sweep, MpcHsm.RefreshKeyShares or a gateway restart finishes it`);
      const holders = [...new Set(participants ?? current.holders.filter((id) => this.clients.has(id)))].sort((a, b) => a - b);
      const inactive = holders.filter((id) => !this.clients.has(id));
      if (inactive.length) throw new ClusterError('invalid-state', `key ${key.keyId} cannot be reshared to ${inactive.join(', ')}: not an active signer here`);
      const chosen = holders.map((id) => this.clients.get(id)!);
      const { old, dealers } = resharePlan(current, holders);
      if (!old) throw new ClusterError('internal', `key ${key.keyId} has no public package`);
      const session = randomUUID();
      trace.session = session;
      try {
        // Shoup RSA takes one round (dealers to holders); FROST and DKLs23 two (views, pairings).
        const rounds = current.scheme === 'rsa-shoup' ? 1 : 2;
        const done = await relayRounds(chosen, signerRoutes.reshare, { session, keyId: key.keyId, participants: holders, threshold: current.threshold, old, ...(authority ? { authority } : {}), ...(dealers ? { dealers } : {}) }, rounds);
        const first = JSON.stringify(done[0]?.publicPackage);
        done.forEach((d, i) => {
          if (JSON.stringify(d.publicPackage) !== first) throw new ClusterError('internal', `signer ${chosen[i]!.name} finished resharing with a different public package; nothing was adopted`);
        });
        const pkg = keyPackageSchema.parse(done[0]!.publicPackage);
        if (publicKeyOfPackage(pkg) !== publicKeyOfPackage(old)) throw new ClusterError('internal', `resharing key ${key.keyId} changed its public key; nothing was adopted`);
        const journaled: JournalRecord = { keyId: key.keyId, session, publicPackage: pkg, holders };
        await this.journal.put(journaled);
        return await this.adoptReshare(journaled, trace);
      } catch (e) {
        throw this.asClusterError(e, 'resharing');
      }
    });
  }

  /** Finishes a journaled resharing: adopt again at every holder, then the key record. */
  resumeReshare(r: JournalRecord, trace: Trace): Promise<KeyRecord> {
    trace.session = r.session;
    return this.reshares.run(() => this.adoptReshare(r, trace).catch((e: unknown) => Promise.reject(this.asClusterError(e, 'finishing a resharing'))));
  }

  /**
   * Tells every holder of a journaled resharing to adopt its new share, then names the new
   * holders and package in the key record and forgets the journal record. The trace names the
   * holders that adopted, even when another failed (each recorded its adopt).
   */
  private async adoptReshare(r: JournalRecord, trace: Trace): Promise<KeyRecord> {
    // A holder retired since the record was written has nothing to adopt that matters.
    const chosen = r.holders.filter((id) => this.clients.has(id)).map((id) => this.clients.get(id)!);
    const settled = await Promise.allSettled(chosen.map((c) => c.call(signerRoutes.reshare.adopt, { session: r.session, keyId: r.keyId, publicPackage: r.publicPackage })));
    const adopted = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [{ c: chosen[i]!, answer: s.value }] : []));
    trace.signers = traceOf(
      adopted.map((a) => a.c),
      adopted.map((a) => a.answer),
    );
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const key = this.keys.get(r.keyId);
    if (!key) throw new ClusterError('not-found', `key ${r.keyId} does not exist`);
    // The current record: its state or description may have changed while the signers worked.
    const { revival: _revived, missing: _missing, ...kept } = key;
    const record: KeyRecord = { ...kept, holders: r.holders, ...packageField(r.publicPackage) };
    await this.keys.put(record);
    // Presignatures made with the old shares are refused by the signers now: not asked for.
    this.ecdsa.dropKey(r.keyId);
    await this.journal.delete(r.keyId);
    this.log.info({ keyId: r.keyId, holders: r.holders }, 'key reshared');
    return record;
  }

  /**
   * Liveness of every signer, probed in parallel (bounded): whether it answers and can write its
   * store (`detail` names a full disk). What it finds also steers the planner.
   */
  async signerHealth(): Promise<{ name: string; id: number; healthy: boolean; detail: string }[]> {
    return Promise.all(
      [...this.clients.values()].map(async (c) => {
        const p = await c.probe();
        // Only a signer's own answer steers the planner here (its probes decide about silence).
        if (p.answered) this.planner.observe(c, p);
        return { name: c.name, id: c.id, healthy: p.healthy, detail: p.detail };
      }),
    );
  }

  /**
   * Creates a key: DKG across all signers (EC/Edwards) or the RSA ceremony, as a journaled
   * transaction (create-journal.ts): journaled before the first signer is asked, rolled back
   * everywhere if it fails, committed at every signer once recorded here.
   */
  async createKey(req: { keySpec: CreatableKeySpec; keyUsage: KeyRecord['keyUsage']; description?: string; pkcs8Pem?: string; trace?: Trace; evidence?: Creation }): Promise<KeyRecord> {
    const trace = req.trace ?? { signers: [] };
    const keyId = randomUUID();
    // Named in the request's audit entries, also when the creation fails: its signers record it.
    trace.keyId = keyId;
    const rsa = req.keySpec.startsWith('RSA_');
    const scheme = schemeOfSpec(req.keySpec);
    if (!scheme) throw new ClusterError('unsupported', `${req.keySpec} keys are not supported`);
    const usage = rsa ? req.keyUsage : scheme === 'tprf-ristretto255' ? 'ENCRYPT_DECRYPT' : 'SIGN_VERIFY';
    if (req.keyUsage !== usage) throw new ClusterError('invalid-usage', `${req.keySpec} keys are for ${usage} only`);
    await this.everySignerAnswers();
    const proposal = proposalSchema.safeParse(req.evidence?.proposal).data?.id;
    const journaled: CreationRecord = {
      keyId,
      // The request id the signers record it under: an RSA installation's is the key id.
      session: rsa ? keyId : randomUUID(),
      scheme,
      keySpec: req.keySpec,
      keyUsage: req.keyUsage,
      origin: req.pkcs8Pem ? 'EXTERNAL' : 'AWS_KMS',
      description: req.description ?? '',
      creationDate: Date.now(),
      participants: [...this.clients.keys()],
      threshold: this.config.threshold,
      ...(req.evidence?.policy !== undefined ? { policy: req.evidence.policy } : {}),
      ...(proposal ? { proposal } : {}),
    };
    const target = { keyId, session: journaled.session };
    await this.creations.put(journaled);
    let pkg: KeyPackage;
    try {
      if (rsa) pkg = await this.rsa.ceremony(keyId, req.keySpec, trace, req.pkcs8Pem, req.evidence);
      else if (scheme === 'ecdsa-dkls23') pkg = await this.ecdsa.keygen(target, req.keySpec as KeySpec, trace, req.evidence);
      else {
        pkg = await this.generate(target, trace, signerRoutes.dkg, (common) => ({ ...common, suite: DKG_GROUP_OF_SPEC[req.keySpec]!, ...(req.evidence ? { creation: req.evidence } : {}) }), (p) => publicPackageSchema.parse(p));
      }
    } catch (e) {
      // No partial keys: every signer forgets its pending share (a dead one is asked at the next start).
      await rollBackCreation(this.active, this.creations, journaled, this.log);
      throw e;
    }
    const record = recordOfCreation(journaled, pkg);
    await this.keys.put(record);
    if (proposal) await this.proposalExecuted?.(proposal);
    await commitCreation(this.active, this.creations, journaled, this.log);
    if (record.scheme === 'frost-ed25519') this.frost.warm(record);
    this.log.info({ keyId, keySpec: req.keySpec, scheme: record.scheme }, 'key created');
    return record;
  }

  /**
   * Key generation needs every signer. Each is probed first, given quorumWaitMs (a loaded signer
   * may be slow to answer): one that does not answer (hung, down) or cannot write its store fails
   * the creation within the bound a request waits for signers, rather than after its calls'
   * signerTimeoutMs and a rollback it cannot answer either.
   */
  private async everySignerAnswers(): Promise<void> {
    const probed = await Promise.all([...this.clients.values()].map(async (c) => ({ c, probe: await c.probe(this.config.quorumWaitMs) })));
    const missing = probed.filter((p) => !p.probe.healthy);
    for (const { c, probe } of missing) this.planner.observe(c, probe);
    if (missing.length > 0) {
      const why = missing.map(({ c, probe }) => `${c.name} (${probe.detail})`).join(', ');
      throw new ClusterError('quorum-unavailable', `key generation needs every signer; ${why} failed its health probe`);
    }
  }

  /**
   * Distributed key generation with every signer (FROST's DKG, DKLs23's), relayed for the two
   * rounds after the start; `body` completes the start's body with the scheme's members.
   * The gateway only relays: broadcasts go to everyone (each signer checks that all saw the
   * same), shares are encrypted end to end. Every signer stores a pending share; the key exists
   * once all of them report the same public package (createKey then commits it).
   */
  async generate<Q extends z.ZodType<unknown, { session: string }>, P>(target: { keyId: string; session: string }, trace: Trace, routes: Rounds<Q, typeof keygenAnswer>, body: (common: KeygenCommon) => z.input<Q>, parse: (pkg: unknown) => P): Promise<P> {
    const { keyId, session } = target;
    trace.session = session;
    const all = [...this.clients.values()];
    const participants = all.map((c) => c.id);
    // Every signer asked may store a share, so a failed generation's entry names them all too.
    trace.signers = traceOf(all, []);
    try {
      const done = await relayRounds(all, routes, body({ session, keyId, participants, threshold: this.config.threshold }), 2);
      trace.signers = traceOf(all, done);
      const first = JSON.stringify(done[0]?.publicPackage);
      done.forEach((d, i) => {
        if (JSON.stringify(d.publicPackage) !== first) throw new ClusterError('internal', `signer ${all[i]!.name} finished key generation with a different public key`);
      });
      return parse(done[0]!.publicPackage);
    } catch (e) {
      throw this.asClusterError(e, 'key generation');
    }
  }

  /** Usable-key lookup shared by every cryptographic operation. */
  usableKey(keyId: string, usage: KeyRecord['keyUsage']): KeyRecord {
    const key = this.keys.get(keyId);
    if (!key) throw new ClusterError('not-found', `key ${keyId} does not exist`);
    if (key.state === 'Disabled') throw new ClusterError('invalid-state', `key ${keyId} is disabled`);
    if (key.state !== 'Enabled') throw new ClusterError('invalid-state', `key ${keyId} is ${key.state}`);
    if (key.keyUsage !== usage) throw new ClusterError('invalid-usage', `key ${keyId} is for ${key.keyUsage}`);
    return key;
  }

  /** Signs with t signers; the signature is verified against the public key before release. */
  async sign(req: SignRequest): Promise<Uint8Array> {
    const key = this.usableKey(req.keyId, 'SIGN_VERIFY');
    const trace = req.trace ?? { signers: [] };
    const { algorithm } = req;
    let signature: Uint8Array;
    if (key.scheme === 'rsa-shoup') signature = await this.rsa.sign(key, req, trace);
    else if (algorithm === RSA_PKCS1_RAW) throw new ClusterError('invalid-usage', `${algorithm} is not valid for ${key.keySpec}`);
    else signature = key.scheme === 'ecdsa-dkls23' ? await this.ecdsa.sign(key, { ...req, algorithm }, trace) : await this.frost.sign(key, { ...req, algorithm }, trace);
    const ok = verifySignature({
      keySpec: key.keySpec as KeySpec,
      spki: Buffer.from(key.publicKey, 'base64'),
      algorithm: req.algorithm,
      messageType: req.messageType,
      message: req.message,
      signature,
    });
    if (!ok) throw new ClusterError('internal', 'the combined signature did not verify against the public key; nothing was released');
    return signature;
  }

  /** Decrypts with t signers; the combined plaintext is checked (y^e ≡ c) before unpadding. */
  async decrypt(req: { keyId: string; algorithm: EncryptionAlgorithm; ciphertext: Uint8Array; trace?: Trace; evidence?: RequestEvidence }): Promise<Uint8Array> {
    const key = this.usableKey(req.keyId, 'ENCRYPT_DECRYPT');
    return this.rsa.decrypt(key, req.algorithm, req.ciphertext, req.trace ?? { signers: [] }, req.evidence);
  }

  /** GenerateRandom: contributions of t of the active signers, combined (random.ts); it names no key. */
  async generateRandom(req: RandomRequest): Promise<Uint8Array> {
    try {
      return await this.planner.run([...this.clients.keys()], this.config.threshold, (plan) => gatherRandom(plan, req), (what) => this.log.warn(what));
    } catch (e) {
      throw this.asClusterError(e, 'GenerateRandom');
    }
  }

  /** One answer from any of the signers `ids` (authentication), hedged like a session's phase. */
  readonly firstAnswer: FirstAnswer = (ids, ask) => this.planner.run(ids, 1, async (plan) => (await plan.gather(ask)).answers[0]!.answer);

  /** Runs a t-signer session through the planner, turning failures into ClusterErrors. */
  async runSession<T>(key: KeyRecord, session: (plan: Attempt) => Promise<T>): Promise<T> {
    try {
      return await this.planner.run(key.holders, key.threshold, session, (what) => this.log.warn({ keyId: key.keyId }, what), this.rateLimited(key.keyId));
    } catch (e) {
      throw this.asClusterError(e, 'signing session');
    }
  }

  asClusterError(e: unknown, what: string): Error {
    if (e instanceof ClusterError) return e;
    if (e instanceof QuorumUnavailableError) return new ClusterError('quorum-unavailable', e.message);
    if (e instanceof SignerUnavailableError) return new ClusterError('quorum-unavailable', `${what} failed: ${e.message}`);
    if (e instanceof SignerRefusedError) return new ClusterError('signer-refused', `${what}: ${e.message}`);
    if (e instanceof BadPartialError || e instanceof ProtocolError) return new ClusterError('internal', `${what} aborted: ${e.message}`);
    if (e instanceof z.ZodError) return new ClusterError('internal', `${what}: a signer answered malformed data`);
    return e as Error;
  }
}
