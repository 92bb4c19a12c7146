// The signer's own policy check: what lets each signer refuse a compromised gateway. PolicyGuard
// is its one face, enrolled into and loaded from this signer's sealed store (state.ts), over the
// concerns beside it: principals (registry.ts), the governance and approvals (governance.ts),
// keys and aliases (keys.ts), Sign and Decrypt (use.ts), GenerateRandom (random.ts), numbered
// changes (changes.ts), and the signers admitted and retired (peers.ts). ecdsa-routes.ts puts it in front of threshold ECDSA.
import path from 'node:path';
import { z } from 'zod';
import type { AuditLog } from '../../../audit/log.js';
import type { ShareStore } from '../../../contract/io/sealed-store.js';
import type { InventoryKey } from '../../../contract/signer-rpc/keys.js';
import { verifyGenesis, verifyGovernanceChain } from '../../../policy/index.js';
import type { RsaRequest } from '../../protocols/rsa/request.js';
import type { Peer } from '../config.js';
import { ReplayLedger } from '../replay-ledger.js';
import { RpcError } from '../rpc.js';
import { apply } from './changes.js';
import type { AskedRecord } from './governance.js';
import { authorizeCreate, checkDestroy, checkForget, commitKey, forgotten, holdPending, recordCreated, type CreateRecord, type PendingKey } from './keys.js';
import { activated, activationTarget, admissionState, allPeers, authorizeRefresh, awaitingActivation, checkProven, checkReshare } from './peers.js';
import { forgetRevived, revivedDigest } from './restore.js';
import { authenticate, indexPrincipals } from './registry.js';
import {
  ADMITTED,
  AWAITING_ACTIVATION,
  awaitingActivationSchema,
  type AwaitingActivation,
  ALIASES,
  aliasesSchema,
  admittedSchema,
  REVIVED,
  revivedSchema,
  denied,
  enrolmentSchema,
  GOVERNANCE,
  json,
  KEY_PREFIX,
  keyStateSchema,
  LEDGER,
  ledgerSchema,
  REGISTRY,
  registrySchema,
  REPLAYS_FILE,
  RETIRED,
  retiredSchema,
  type AdmissionState,
  type GuardState,
  type KeyState,
  type RegisteredPrincipal,
  type SelfIdentity,
} from './state.js';
import { authorizeRandom, releaseRandom, type RandomGrant } from './random.js';
import { authorizeSymmetric, checkRotation, type SymmetricGrant } from './symmetric.js';
export { symmetricFingerprint } from './symmetric.js';
import { authorizeUse, expectDigest, expectFrost, expectRsa, release, type Spend, type UseGrant, type UseRecord } from './use.js';

export { rsaFingerprint, type UseGrant } from './use.js';
export { admissionStateSchema, type AdmissionState, type RegisteredPrincipal } from './state.js';
export type { CreateRecord, PendingKey } from './keys.js';

export class PolicyGuard {
  private constructor(private readonly s: GuardState) {
    indexPrincipals(s);
    holdPending(s);
    setInterval(() => s.replays.sweep(Date.now()), 30_000).unref();
  }

  /** Bootstrap: verifies and seals the enrolment. Refuses a store that is already enrolled. */
  static async enrol(store: ShareStore, doc: unknown): Promise<{ clusterId: string; principals: number; governanceVersion: number }> {
    if (await store.has(REGISTRY)) throw new Error('this signer is already enrolled');
    const e = enrolmentSchema.parse(doc);
    const g = verifyGenesis(e.governance);
    if (!g.ok) throw new Error(`governance: ${g.reason}`);
    if (g.governance.clusterId !== e.clusterId) throw new Error(`the governance is for cluster ${g.governance.clusterId}, not ${e.clusterId}`);
    const registry = registrySchema.parse({ clusterId: e.clusterId, region: e.region, account: e.account, principals: e.principals });
    for (const a of g.governance.administrators) {
      if (registry.principals.find((p) => p.name === a.name)?.role !== 'admin') throw new Error(`governance administrator ${a.name} is not a registered key administrator`);
    }
    await store.put(GOVERNANCE, json({ chain: [e.governance] }));
    await store.put(ALIASES, json({}));
    await store.put(LEDGER, json({ seq: 0, proposals: {}, nonces: {}, requests: {} }));
    await store.put(REGISTRY, json(registry)); // last: its presence means "enrolled"
    return { clusterId: e.clusterId, principals: registry.principals.length, governanceVersion: g.governance.version };
  }

  /**
   * A newly admitted signer's enrolment: the policy state every active signer agreed on
   * (admission.ts checks that), if the governance chain verifies and the state admits exactly
   * this signer's identity. Refuses a store that is already enrolled.
   */
  static async enrolAdmitted(store: ShareStore, self: SelfIdentity & { name: string }, state: AdmissionState): Promise<{ governanceVersion: number; keys: number; seq: number }> {
    if (await store.has(REGISTRY)) throw new RpcError(409, 'enrolled', 'this signer is already enrolled');
    const g = verifyGovernanceChain(state.chain);
    if (!g.ok) throw denied(`the governance chain handed over does not verify: ${g.reason}`);
    const me = state.admitted.find((p) => p.id === self.party);
    if (!me || me.name !== self.name || me.identity.signPublicKey !== self.identity.public.signPublicKey || me.identity.kexPublicKey !== self.identity.public.kexPublicKey)
      throw denied('the signers did not admit this signer’s identity under this name and party id');
    if (state.retired.includes(self.party)) throw denied('this signer was admitted, then removed');
    for (const k of state.keys) await store.put(KEY_PREFIX + k.keyId, json(k));
    await store.put(GOVERNANCE, json({ chain: state.chain }));
    await store.put(ALIASES, json(state.aliases));
    await store.put(LEDGER, json(state.ledger));
    await store.put(RETIRED, json(state.retired));
    await store.put(ADMITTED, json(state.admitted));
    await store.put(REVIVED, json(state.revived));
    const awaiting = state.awaiting.filter((a) => a.id !== self.party);
    if (awaiting.length) await store.put(AWAITING_ACTIVATION, json(awaiting));
    await store.put(REGISTRY, json(state.registry)); // last: its presence means "enrolled"
    return { governanceVersion: g.governance.version, keys: state.keys.length, seq: state.ledger.seq };
  }

  /**
   * A founding under require_attestation (signers/node/genesis.ts), before the enrolment: every
   * other founder, with the TPM quote the genesis carries for it, awaits its TPM's answer here.
   */
  static async awaitFounders(store: ShareStore, founders: readonly { id: number; attestation?: unknown }[]): Promise<void> {
    await store.put(AWAITING_ACTIVATION, json(founders.map((f) => activationTarget(f.id, f.attestation))));
  }

  /** Whether this store holds an enrolment (bootstrap or admission). */
  static enrolled(store: ShareStore): Promise<boolean> {
    return store.has(REGISTRY);
  }

  /** Loads this signer's sealed policy state; a signer that was never enrolled does not start. */
  static async load(store: ShareStore, audit: AuditLog, self: SelfIdentity): Promise<PolicyGuard> {
    const read = async <T>(name: string, schema: z.ZodType<T>): Promise<T> => {
      const raw = await store.get(name);
      if (!raw) throw new Error(`this signer holds no ${name} record: it was never enrolled (re-initialise the cluster)`);
      return schema.parse(JSON.parse(Buffer.from(raw).toString('utf8')));
    };
    const registry = await read(REGISTRY, registrySchema);
    const chain = await read(GOVERNANCE, z.strictObject({ chain: z.array(z.unknown()).min(1) }));
    const g = verifyGovernanceChain(chain.chain);
    if (!g.ok) throw new Error(`sealed governance does not verify: ${g.reason}`);
    const keys = new Map<string, KeyState>();
    for (const name of await store.list()) {
      if (!name.startsWith(KEY_PREFIX)) continue;
      const k = await read(name, keyStateSchema);
      keys.set(k.keyId, k);
    }
    const retired = (await store.has(RETIRED)) ? await read(RETIRED, retiredSchema) : [];
    const admitted = (await store.has(ADMITTED)) ? await read(ADMITTED, admittedSchema) : [];
    const awaitingActivation = (await store.has(AWAITING_ACTIVATION)) ? await read(AWAITING_ACTIVATION, awaitingActivationSchema) : [];
    const revived = (await store.has(REVIVED)) ? await read(REVIVED, revivedSchema) : {};
    const replays = await ReplayLedger.open(path.join(path.dirname(store.dir), REPLAYS_FILE));
    return new PolicyGuard({
      store,
      audit,
      self,
      registry,
      byAccessKey: new Map(),
      byName: new Map(),
      chain: chain.chain,
      governance: g.governance,
      keys,
      policies: new Map(),
      aliases: await read(ALIASES, aliasesSchema),
      used: new Set(),
      creating: new Map(),
      ledger: await read(LEDGER, ledgerSchema),
      retiredIds: new Set(retired),
      admittedPeers: admitted,
      awaitingActivation,
      revived,
      replays,
    });
  }

  /** An application's SigV4 request, verified for the gateway (registry.ts). */
  authenticate(body: unknown): Promise<{ principal: string; accessKeyId: string }> {
    return authenticate(this.s, body);
  }

  // ---- Sign / Decrypt (use.ts), symmetric keys (symmetric.ts) -----------------------------------------------------------

  authorizeUse(keyId: string, raw: unknown): Promise<UseGrant> {
    return authorizeUse(this.s, keyId, raw);
  }
  release(g: Spend, fingerprint: string): Promise<UseRecord> {
    return release(this.s, g, fingerprint);
  }
  authorizeSymmetric(req: { keyId: string; material: number; evaluation: number; evidence: unknown }): Promise<SymmetricGrant> {
    return authorizeSymmetric(this.s, req);
  }
  checkRotation(keyId: string): void {
    checkRotation(this.s, keyId);
  }
  /** GenerateRandom, which names no key (random.ts): authorised, then spent once. */
  authorizeRandom(req: { session: string; numberOfBytes: number; evidence: unknown }): Promise<RandomGrant> {
    return authorizeRandom(this.s, req);
  }
  releaseRandom(g: RandomGrant): Promise<UseRecord> {
    return releaseRandom(this.s, g);
  }
  expectFrost(g: UseGrant, suite: string, messageHex: string): void {
    expectFrost(g, suite, messageHex);
  }
  expectRsa(g: UseGrant, r: RsaRequest): void {
    expectRsa(g, r);
  }
  expectDigest(g: UseGrant, digestHex: string): void {
    expectDigest(g, digestHex);
  }

  // ---- keys (keys.ts) and changes to them (changes.ts) ---------------------------------------

  authorizeCreate(keyId: string, raw: unknown): Promise<PendingKey> {
    return authorizeCreate(this.s, keyId, raw);
  }
  recordCreated(k: PendingKey): Promise<CreateRecord> {
    return recordCreated(this.s, k);
  }
  commitKey(keyId: string): Promise<boolean> {
    return commitKey(this.s, keyId);
  }
  /** The keys this signer keeps a record of, and whether each is still pending (uncommitted). */
  inventory(): { keyId: string; pending: boolean }[] {
    return [...this.s.keys.values()].map((k) => ({ keyId: k.keyId, pending: k.pending !== undefined }));
  }
  /** The policy record of a key, as the inventory reports it (undefined: none here). */
  keyRecord(keyId: string): InventoryKey | undefined {
    const k = this.s.keys.get(keyId);
    if (!k) return undefined;
    const { keySpec, keyUsage, origin, state, policy, createdAt, deletionDate, description, tags, rotation } = k;
    return { keySpec, keyUsage, origin, state, policy, createdAt, ...(deletionDate !== undefined ? { deletionDate } : {}), ...(description ? { description } : {}), ...(tags?.length ? { tags } : {}), ...(rotation ? { rotation } : {}) };
  }
  /**
   * For a gateway recovering its lost directory: this signer's aliases (name → key id), its
   * governance chain, and the principals it knows the gateway's public record of (never a secret).
   */
  recoveryState(): { aliases: Record<string, string>; governance: unknown[]; principals: { name: string; role: RegisteredPrincipal['role']; accessKeyId: string; pinLoginHash: string }[] } {
    const principals = this.s.registry.principals.flatMap(({ name, role, accessKeyId, pinLoginHash }) => (pinLoginHash ? [{ name, role, accessKeyId, pinLoginHash }] : []));
    return { aliases: { ...this.s.aliases }, governance: [...this.s.chain], principals };
  }
  checkForget(keyId: string): void {
    checkForget(this.s, keyId);
  }
  checkDestroy(keyId: string): void {
    checkDestroy(this.s, keyId);
  }
  forgotten(keyId: string): Promise<void> {
    return forgotten(this.s, keyId);
  }
  apply(raw: unknown): Promise<{ seq: number; applied: boolean }> {
    return apply(this.s, raw);
  }

  // ---- signers (peers.ts) --------------------------------------------------------------------

  /**
   * This signer's monotonic state counters, for its posture report: the governance version in
   * force and the last governance change it applied (the ledger's seq). Both only grow.
   */
  get epoch(): { governanceVersion: number; ledgerSeq: number } {
    return { governanceVersion: this.s.governance.version, ledgerSeq: this.s.ledger.seq };
  }
  /** Party ids of the signers removed by approved proposals applied here. */
  get retired(): ReadonlySet<number> {
    return this.s.retiredIds;
  }
  /** Every signer admitted, at bootstrap or since, retired ones included. */
  get peers(): Peer[] {
    return allPeers(this.s);
  }
  admissionState(name: string): AdmissionState {
    return admissionState(this.s, name);
  }
  /** Signer `name` (founding or admitted) and its TPM's EK and AK, while it has not answered this signer's credential. */
  awaitingActivation(name: string): { peer: Peer; target: AwaitingActivation } | undefined {
    return awaitingActivation(this.s, name);
  }
  /** `name` answered this signer's credential: it may be sealed state and reshared keys. */
  activated(name: string): Promise<void> {
    return activated(this.s, name);
  }
  /** Refuses a session including a signer whose TPM has not answered this signer's credential. */
  checkProven(ids: readonly number[]): void {
    checkProven(this.s, ids);
  }
  checkReshare(keyId: string, old: { participants: readonly number[]; threshold: number }, next: { participants: readonly number[]; threshold: number }): void {
    checkReshare(this.s, keyId, old, next);
  }
  authorizeRefresh(keyId: string, raw: unknown): Promise<AskedRecord> {
    return authorizeRefresh(this.s, keyId, raw);
  }
  /** The digest of the older package of `keyId` a restoration revived here, if any (restore.ts). */
  revived(keyId: string): string | undefined {
    return revivedDigest(this.s, keyId);
  }
  forgetRevived(keyId: string): Promise<void> {
    return forgetRevived(this.s, keyId);
  }
}
