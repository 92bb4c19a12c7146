// Threshold ECDSA (DKLs23) at the gateway: key generation across every signer, and signing with
// t of them — in one round with a presignature when the pool holds one for a set of usable
// signers, else in three rounds. Presignatures are made in batches in the background, per key
// and signer set (preprocessed-pool.ts), once a key is in use (it signed twice within a
// minute); the gateway holds only their ids. It relays envelopes it cannot read, then combines
// the signers' round-3 broadcasts (signed by each) into r‖s, verified before release.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { ProtocolError, type Message } from '../signers/protocols/common.js';
import { ecdsaCombine, ecdsaRawToDer, type EcdsaPublicPackage } from '../signers/protocols/ecdsa/index.js';
import { ecdsaPublicSchema } from '../signers/protocols/ecdsa/keyshare.js';
import { openEnvelope } from '../contract/identity/envelope.js';
import type { IdentitySecrets } from '../contract/identity/identity.js';
import { useOf, type Creation } from '../contract/signer-rpc/authority.js';
import { PRESIGNATURE_TTL_MS } from '../contract/signer-rpc/ecdsa.js';
import type { Relayed } from '../contract/signer-rpc/relayed.js';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import type { AwsSignRequest, ClusterSessions } from './coordinator.js';
import { ClusterError, askAll, traceSession, traceUnused, type Trace } from './cluster-outcome.js';
import type { KeyRecord } from './keys.js';
import { ALGORITHM_INFO, ECDSA_CURVE_OF_SPEC, HASHES, isEcKeySpec, type KeySpec } from '../contract/keys/specs.js';
import type { Attempt } from './planner.js';
import { PreprocessedPool } from './preprocessed-pool.js';
import { relayRounds } from './relay.js';
import { SignerRefusedError, type SignerClient } from './signer-client.js';

/** Presignatures one presigning session makes, and the count below which a scope is refilled. */
export const PRESIGN_BATCH = 24;
const PRESIGN_LOW_WATER = 8;
/**
 * A key is presigned for once it signed in three rounds twice within this long: a key used now
 * and then does not cost a batch that would expire unused.
 */
const PRESIGN_AFTER_MS = 60_000;

const scopeOf = (keyId: string, signers: readonly number[]) => `${keyId}/${signers.join(',')}`;
const signersOfScope = (scope: string) => scope.slice(scope.indexOf('/') + 1).split(',').map(Number);

/** The t-signer subsets of `candidates` (in the planner's order), those of earlier candidates first. */
function subsets(candidates: readonly SignerClient[], t: number): SignerClient[][] {
  const out: { set: SignerClient[]; last: number }[] = [];
  const walk = (from: number, set: SignerClient[], last: number) => {
    if (set.length === t) return void out.push({ set, last });
    for (let i = from; i < candidates.length; i++) walk(i + 1, [...set, candidates[i]!], i);
  };
  walk(0, [], -1);
  return out.sort((a, b) => a.last - b.last).map((o) => o.set);
}

export class EcdsaCoordinator {
  private readonly pool: PreprocessedPool<string>;
  /** The key and signers a scope's refills presign with (the latest record the gateway signed with). */
  private readonly scopes = new Map<string, { key: KeyRecord; clients: SignerClient[] }>();
  /** When each key last signed in three rounds (within PRESIGN_AFTER_MS). */
  private readonly lastSlow = new Map<string, number>();

  constructor(
    private readonly cluster: ClusterSessions,
    private readonly identity: IdentitySecrets,
    private readonly log?: Logger,
  ) {
    this.pool = new PreprocessedPool<string>({
      batch: PRESIGN_BATCH,
      lowWater: PRESIGN_LOW_WATER,
      maxAgeMs: PRESIGNATURE_TTL_MS - 60_000,
      retryAfterMs: 5_000,
      fetch: (scope, count) => this.presign(scope, count),
      onError: (scope, e) => this.log?.warn({ scope, err: (e as Error).message }, 'presigning failed; signing in three rounds meanwhile'),
    });
  }

  /** DKLs23 key generation (DKG plus pairwise OT setup) with every signer. */
  async keygen(target: { keyId: string; session: string }, keySpec: KeySpec, trace: Trace, creation?: Creation): Promise<EcdsaPublicPackage> {
    if (!isEcKeySpec(keySpec)) throw new ClusterError('unsupported', `${keySpec} is not an ECDSA key spec`);
    const curve = ECDSA_CURVE_OF_SPEC[keySpec];
    return this.cluster.generate(target, trace, signerRoutes.ecdsa.keygen, (common) => ({ ...common, curve, ...(creation ? { creation } : {}) }), (p) => ecdsaPublicSchema.parse(p));
  }

  /** One round with a presignature if the pool has one for usable signers, else three; returns the DER signature KMS returns. */
  sign(key: KeyRecord, req: AwsSignRequest, trace: Trace): Promise<Uint8Array> {
    const info = ALGORITHM_INFO[req.algorithm];
    if (info.scheme !== 'ECDSA') throw new ClusterError('invalid-usage', `${req.algorithm} is not valid for ${key.keySpec}`);
    if (!key.ecdsa) throw new ClusterError('internal', `key ${key.keyId} has no ECDSA public package`);
    const pub = key.ecdsa;
    const digest = req.messageType === 'RAW' ? HASHES[info.hash](req.message) : req.message;
    const use = useOf('Sign', req.algorithm, req.messageType, req.message, req.evidence);
    const combine = (session: string, chosen: readonly SignerClient[], outbound: readonly Relayed[][]) => {
      const round3 = outbound.map((out, i): Message => {
        const from = chosen[i]!;
        const relayed = out.find((m) => m.from === from.id && m.to === 'all');
        if (!relayed) throw new ProtocolError('missing', 'no round-3 message', from.id);
        const payload = openEnvelope(relayed.envelope, this.identity, from.entry.identity, { purpose: `ecdsa-sign:${key.keyId}`, session, round: 3, from: from.id, to: 'all' });
        return { session, round: 3, from: from.id, to: 'all', payload: JSON.parse(Buffer.from(payload).toString('utf8')) };
      });
      const raw = ecdsaCombine({ curve: pub.curve, publicKey: Buffer.from(pub.publicKey, 'hex'), session, signers: chosen.map((c) => c.id), digest }, round3);
      return ecdsaRawToDer(pub.curve, raw);
    };
    return this.cluster.runSession(key, async (plan) => {
      const presigned = this.takePresignature(key, plan);
      if (presigned) {
        const { chosen, id } = presigned;
        const session = randomUUID();
        const body = { session, keyId: key.keyId, presignature: id, signers: chosen.map((c) => c.id), digest: Buffer.from(digest).toString('hex'), use };
        try {
          const answers = await askAll(trace, session, chosen, (c, opts) => c.call(signerRoutes.ecdsa.sign.presigned, body, opts), plan.laggardMs(chosen));
          traceSession(trace, session, chosen, answers);
          return combine(session, chosen, answers.map((a) => a.outbound));
        } catch (e) {
          // A signer that restarted holds none of its presignatures: its scopes go, three rounds instead.
          if (!(e instanceof SignerRefusedError && e.code === 'not-preprocessed')) throw e;
          const gone = chosen.find((c) => c.name === e.signer);
          this.pool.drop((scope) => (gone ? signersOfScope(scope).includes(gone.id) : scope === scopeOf(key.keyId, body.signers)));
          this.log?.info({ keyId: key.keyId, signer: e.signer }, 'a presignature was not held (a signer restarted); signing in three rounds');
        }
      }
      // The set is fixed once the rounds start: healthy signers first, and a start that does not
      // answer soon fails over to another set while there is one (planner.ts).
      const { chosen, startMs } = plan.fixed();
      const session = randomUUID();
      const start = { session, keyId: key.keyId, signers: chosen.map((c) => c.id), digest: Buffer.from(digest).toString('hex'), use };
      // A failure in the last round may follow others' releases: the session is named either way.
      const answers = await relayRounds(chosen, signerRoutes.ecdsa.sign, start, 2, startMs).catch((e: unknown) => {
        traceUnused(trace, session, chosen);
        throw e;
      });
      traceSession(trace, session, chosen, answers);
      const signature = combine(session, chosen, answers.map((a) => a.outbound));
      // These signers serve a key in use: presign for them, so that the next signature takes one round.
      if (this.inUse(key.keyId)) void this.pool.refill(this.register(key, chosen));
      return signature;
    });
  }

  /**
   * A presignature for t of this attempt's candidates, taken out of the pool. Only signers that
   * serve well now: a set with a slow or failed one goes the three-round way, which bounds its start.
   */
  private takePresignature(key: KeyRecord, plan: Attempt): { chosen: SignerClient[]; id: string } | undefined {
    for (const set of subsets(plan.candidates.filter((c) => !plan.isLastResort(c)), plan.t)) {
      const chosen = [...set].sort((a, b) => a.id - b.id);
      const scope = scopeOf(key.keyId, chosen.map((c) => c.id));
      if (this.pool.available(scope) === 0) continue;
      this.register(key, chosen);
      const id = this.pool.take(scope);
      if (id !== undefined) return { chosen, id };
    }
    return undefined;
  }

  private register(key: KeyRecord, chosen: SignerClient[]): string {
    const scope = scopeOf(key.keyId, chosen.map((c) => c.id));
    this.scopes.set(scope, { key, clients: chosen });
    return scope;
  }

  /** Whether the key signed in three rounds before, lately (this call counts as the next). */
  private inUse(keyId: string): boolean {
    const now = Date.now();
    const last = this.lastSlow.get(keyId);
    for (const [k, at] of this.lastSlow) if (now - at > PRESIGN_AFTER_MS) this.lastSlow.delete(k);
    this.lastSlow.set(keyId, now);
    return last !== undefined && now - last <= PRESIGN_AFTER_MS;
  }

  /** A presigning session with the scope's signers; every signer must name the same presignatures. */
  private async presign(scope: string, count: number): Promise<string[]> {
    const s = this.scopes.get(scope);
    if (!s) return [];
    const signers = s.clients.map((c) => c.id);
    const answers = await relayRounds(s.clients, signerRoutes.ecdsa.presign, { session: randomUUID(), keyId: s.key.keyId, signers, count }, 2);
    const first = answers[0]?.presignatures;
    if (!first || answers.some((a) => JSON.stringify(a.presignatures) !== JSON.stringify(first))) throw new ClusterError('internal', `the signers of ${scope} finished presigning with different presignatures`);
    return first.map((p) => p.id);
  }

  /** Forgets the presignatures of a key (deleted). */
  dropKey(keyId: string): void {
    this.pool.drop((scope) => scope.startsWith(`${keyId}/`));
    this.lastSlow.delete(keyId);
    for (const scope of this.scopes.keys()) if (scope.startsWith(`${keyId}/`)) this.scopes.delete(scope);
  }

  /** Forgets the presignatures with any of these signers (removed). */
  dropSigners(ids: Iterable<number>): void {
    const gone = new Set(ids);
    const matches = (scope: string) => signersOfScope(scope).some((id) => gone.has(id));
    this.pool.drop(matches);
    for (const scope of this.scopes.keys()) if (matches(scope)) this.scopes.delete(scope);
  }

  close(): void {
    this.pool.close();
  }
}
