// FROST signing at the gateway (Ed25519, Ed25519ph: signers/protocols/frost.ts, RFC 9591), in one
// round per signer when it can: each signer makes nonce pairs for a key ahead of any message and
// hands over only their commitments, which the gateway keeps per (signer, key) in a pool refilled
// in the background (preprocessed-pool.ts). A signature then takes t signers that each have one:
// the signing package is built from those commitments and each signer is asked once, with the
// client's evidence. Otherwise (a pool still empty, a signer restarted since) it takes the two
// rounds, commit then sign. Which nonce is still good is the signers' to say: one restarted
// answers 'not-preprocessed', its pools are dropped and the request goes on in two rounds.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Message } from '../signers/protocols/common.js';
import { publicPackageSchema, type PublicPackage } from '../signers/protocols/dkg.js';
import { frostAggregate, frostSigningPackage, type SigningPackage } from '../signers/protocols/frost.js';
import type { SuiteName } from '../signers/protocols/suites.js';
import { useOf, type Use } from '../contract/signer-rpc/authority.js';
import { FROST_PREPROCESS_MAX } from '../contract/signer-rpc/frost.js';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import { ALGORITHM_INFO, HASHES } from '../contract/keys/specs.js';
import { askAll, ClusterError, traceSession, type Trace } from './cluster-outcome.js';
import type { AwsSignRequest, ClusterSessions } from './coordinator.js';
import type { KeyRecord } from './keys.js';
import type { Attempt } from './planner.js';
import { PreprocessedPool } from './preprocessed-pool.js';
import { SignerRefusedError, type SignerClient } from './signer-client.js';

/** Below this many commitments held for a (signer, key), a refill of FROST_PREPROCESS_MAX starts. */
const POOL_LOW_WATER = 16;
/** Commitments older than this are dropped unused: well within the signers' own 10 minutes. */
const POOL_MAX_AGE_MS = 5 * 60_000;
/** After a refill failed (a signer down, its table full), how long before that scope is asked again. */
const POOL_RETRY_MS = 5_000;

/** A nonce pair a signer holds for a key: its id there and its public commitment. */
interface Held {
  id: string;
  commitment: unknown;
}

const scopeOf = (signer: number, keyId: string): string => `${signer}/${keyId}`;

export class FrostCoordinator {
  private readonly pool: PreprocessedPool<Held>;

  constructor(
    private readonly cluster: ClusterSessions,
    private readonly clients: ReadonlyMap<number, SignerClient>,
    private readonly log: Logger,
  ) {
    this.pool = new PreprocessedPool<Held>({
      batch: FROST_PREPROCESS_MAX,
      lowWater: POOL_LOW_WATER,
      maxAgeMs: POOL_MAX_AGE_MS,
      retryAfterMs: POOL_RETRY_MS,
      fetch: async (scope, count) => {
        const [signer, keyId] = scope.split('/') as [string, string];
        const c = this.clients.get(Number(signer));
        if (!c) throw new Error(`signer ${signer} is not active`);
        return (await c.call(signerRoutes.frost.preprocess, { keyId, count })).nonces;
      },
      onError: (scope, e) => this.log.warn({ scope, err: (e as Error).message }, 'could not fetch FROST nonce commitments made ahead; signing in two rounds meanwhile'),
    });
  }

  close(): void {
    this.pool.close();
  }

  /** Has every holder of a new key make nonce pairs ahead, so that its first signature takes one round. */
  warm(key: KeyRecord): void {
    for (const id of key.holders) if (this.clients.has(id)) void this.pool.refill(scopeOf(id, key.keyId));
  }

  /** Forgets what is held for a key (destroyed) or for a signer (removed, restarted). */
  forget(what: { keyId?: string; signer?: number }): void {
    this.pool.drop((scope) => {
      const [signer, keyId] = scope.split('/');
      return keyId === what.keyId || Number(signer) === what.signer;
    });
  }

  /** Signs with t signers, in one round if each has a nonce pair held ahead; the caller verifies the signature. */
  sign(key: KeyRecord, req: AwsSignRequest, trace: Trace): Promise<Uint8Array> {
    const info = ALGORITHM_INFO[req.algorithm];
    let suite: SuiteName;
    let message: Uint8Array;
    if (info.scheme === 'ED25519') [suite, message] = ['ed25519', req.message];
    else if (info.scheme === 'ED25519_PH') [suite, message] = ['ed25519ph', req.messageType === 'RAW' ? HASHES['SHA-512'](req.message) : req.message];
    else throw new ClusterError('invalid-usage', `${req.algorithm} is not valid for ${key.keySpec}`);
    if (!key.frost) throw new ClusterError('internal', `key ${key.keyId} has no public package`);
    const pub = publicPackageSchema.parse(key.frost);
    const use = useOf('Sign', req.algorithm, req.messageType, req.message, req.evidence);
    const request = { key, pub, suite, message, use, trace };
    return this.cluster.runSession(key, async (plan) => (await this.oneRound(plan, request)) ?? this.twoRounds(plan, request));
  }

  /**
   * The first t candidates, each with a nonce pair held for the key: one call each. Undefined
   * when one has none (refills start) or turned out not to hold it any more (restarted: its pools
   * are dropped); the attempt then goes on in two rounds.
   */
  private async oneRound(plan: Attempt, r: SignSession): Promise<Uint8Array | undefined> {
    // A fixed set, as DKLs23's start: while a spare could stand in, a signer that does not answer
    // within FAST_STEP_MS fails the attempt over (planner.ts), as a hedge would in two rounds.
    const fixed = plan.fixed();
    const chosen = [...fixed.chosen].sort((a, b) => a.id - b.id);
    if (chosen.some((c) => this.pool.available(scopeOf(c.id, r.key.keyId)) === 0)) {
      for (const c of plan.candidates) void this.pool.refill(scopeOf(c.id, r.key.keyId));
      return undefined;
    }
    const held = chosen.map((c) => this.pool.take(scopeOf(c.id, r.key.keyId))!);
    const session = randomUUID();
    const commits = chosen.map((c, i): Message => ({ session, round: 1, from: c.id, to: 'all', payload: held[i]!.commitment }));
    const pkg = frostSigningPackage(r.pub, { session, suite: r.suite, message: r.message }, chosen.map((c) => c.id), commits);
    try {
      const answers = await askAll(r.trace, session, chosen, (c, opts) => c.call(signerRoutes.frost.signPreprocessed, { session, keyId: r.key.keyId, nonce: held[chosen.indexOf(c)]!.id, package: pkg, use: r.use }, { ...opts, timeoutMs: fixed.startMs }), plan.laggardMs(chosen));
      return this.aggregate(r, session, chosen, pkg, answers);
    } catch (e) {
      if (!(e instanceof SignerRefusedError && e.code === 'not-preprocessed')) throw e;
      const stale = chosen.find((c) => c.name === e.signer);
      if (stale) {
        // It answers, so it can make new ones: its pool for this key starts again now.
        this.forget({ signer: stale.id });
        void this.pool.refill(scopeOf(stale.id, r.key.keyId));
      }
      this.log.warn({ keyId: r.key.keyId, signer: e.signer }, 'a signer no longer holds the nonces it made ahead (restarted?); its pools are dropped and refilled, and this signature takes two rounds');
      return undefined;
    }
  }

  /** Commit, then sign: every candidate may be asked to commit (the request names them all); the first t to answer sign. */
  private async twoRounds(plan: Attempt, r: SignSession): Promise<Uint8Array> {
    // The others' nonces are never used: they expire unused (signers/node/sessions.ts).
    const session = randomUUID();
    const candidates = plan.candidates.map((c) => c.id);
    const { answers: committed } = await plan.gather(async (c, opts) => (await c.call(signerRoutes.frost.commit, { session, keyId: r.key.keyId, signers: candidates, use: r.use }, opts)).commitment);
    const chosen = committed.map((a) => a.client).sort((a, b) => a.id - b.id);
    const commits = committed.map((a): Message => ({ session, round: 1, from: a.client.id, to: 'all', payload: a.answer }));
    const pkg = frostSigningPackage(r.pub, { session, suite: r.suite, message: r.message }, chosen.map((c) => c.id), commits);
    const answers = await askAll(r.trace, session, chosen, (c, opts) => c.call(signerRoutes.frost.sign, { session, keyId: r.key.keyId, package: pkg }, opts), plan.laggardMs(chosen));
    return this.aggregate(r, session, chosen, pkg, answers);
  }

  private aggregate(r: SignSession, session: string, chosen: readonly SignerClient[], pkg: SigningPackage, answers: readonly { share: unknown; audit?: { seq: number; hash: string } }[]): Uint8Array {
    traceSession(r.trace, session, chosen, answers);
    const shares = answers.map((a, i): Message => ({ session, round: 2, from: chosen[i]!.id, to: 'all', payload: a.share }));
    return frostAggregate(r.pub, pkg, shares);
  }
}

/** One signature's request, as both ways of signing need it. */
interface SignSession {
  key: KeyRecord;
  pub: PublicPackage;
  suite: SuiteName;
  message: Uint8Array;
  use: Use | undefined;
  trace: Trace;
}
