// The signer's own policy check: what lets each signer refuse a compromised gateway.
//
// Held here, sealed in this signer's store, never taken from the gateway's word:
// - the principal registry, enrolled at bootstrap and changed by approved proposals since:
//   cluster id, region, account, every principal's name, role, access key id and SigV4 secret,
//   and for applications and administrators the PKCS#11 PIN request key (policy/evidence.ts),
//   with which the signer checks requests itself;
// - the governance chain (verified genesis, signed by every administrator, and each later
//   version, verified here against the one before it);
// - its own copy of each key's policy, state (Enabled / Disabled / PendingDeletion), spec and
//   usage, and of the aliases;
// - the proposals it has applied, the per-signature approval nonces and the administrators'
//   requests it has consumed;
// - the signers admitted by approved AddSigner proposals (their pinned identities) and those
//   removed by approved RemoveSigner proposals: retired for good, no envelope from them is
//   opened, no session including them joined; a key is reshared only to active signers, keeping
//   every active holder (signers/node/reshare.ts).
//
// Checked before any share is used: the client's original request (evidence) verifies with the
// principal's secret or PIN key, names this key and exactly this message or ciphertext, is
// fresh and not used before; `authorize` (policy/evaluate.ts) allows it under this signer's
// copy of the key policy and governance, per-signature approvals included; the rate limit
// allows it. Before a key is created or its policy, state or aliases change: the asking
// administrator's own signed request verifies here for exactly that change
// (signers/node/admin-evidence.ts) — it is that administrator's approval — and any further
// approvals the governance asks verify against this signer's governance, for exactly those
// parameters, once.
// Principals are added and removed only by approved proposals (an application's secret
// arrives sealed to this signer: policy/membership.ts), and a governance version replaces the
// one in force only when it verifies as its successor.
// Nothing is applied on the gateway's word: a change under no quorum (aliases, EnableKey,
// CancelKeyDeletion by default) needs the administrator's request as much as one under quorum
// needs its approvals, and is recorded with who asked and the request's hash.
//
// Repeats: a byte-identical request within its ±5 minute window is the same request (AWS
// serves it again): it may be released again, counted once toward the rate limit and the
// per-signature approvals it consumed, and recorded as a repeat. The requests released for and
// the rate buckets are kept in signers/node/replay-ledger.ts, so a restart forgets neither.
import path from 'node:path';
import { sha512 } from '@noble/hashes/sha2.js';
import { z } from 'zod';
import type { AuditLog } from '../../audit/log.js';
import { ALGORITHM_INFO, HASHES, isSigningAlgorithm, KEY_USAGES, type SigningAlgorithm } from '../../contract/keys/specs.js';
import {
  MalformedPolicyDocumentException,
  MembershipError,
  administratorChanges,
  aliasNameProblem,
  authorize,
  createKeyRequestFor,
  defaultKeyPolicy,
  enrolmentProblem,
  messageDigestFor,
  openPrincipalSecret,
  parseKeyPolicy,
  principalEnrolmentSchema,
  keyUseProblem,
  principalRemovalSchema,
  proposalSchema,
  quorumFor,
  resolveKeyRef,
  sameParameters,
  signedGovernanceSchema,
  signerAdmissionSchema,
  signerRemovalSchema,
  sigv4EvidenceSchema,
  SigV4Error,
  takeToken,
  verifyEvidence,
  verifyGenesis,
  verifyGovernanceChain,
  verifyGovernanceUpdate,
  verifySigV4,
  type Action,
  type AuthorizeInput,
  type BucketState,
  type GovernanceDocument,
  type KeyPolicy,
  type PrincipalEnrolment,
  type Proposal,
  type RequestExpectation,
} from '../../policy/index.js';
import { canonicalJson } from '../../contract/canonical.js';
import { fromHex, toHex } from '../../contract/bytes.js';
import type { RsaRequest } from '../protocols/rsa/request.js';
import { peerSchema, type Peer } from './config.js';
import { parsePublicIdentity, type IdentitySecrets, type PublicIdentity } from '../../contract/identity/identity.js';
import { digestHex } from '../../contract/signer-rpc/released.js';
import {
  changeSchema,
  creationSchema,
  reshareAuthoritySchema,
  useSchema,
  type KeyChange,
  type MembershipChange,
  type Use,
} from '../../contract/signer-rpc/authority.js';
import { ReplayLedger } from './replay-ledger.js';
import { checkUnspent, proposerRequest, verifiedRequest, type RequestCheck, type VerifiedRequest } from './admin-evidence.js';
import { RpcError } from './rpc.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';

const REGISTRY = 'policy.registry';
const GOVERNANCE = 'policy.governance';
const ALIASES = 'policy.aliases';
const LEDGER = 'policy.ledger';
const KEY_PREFIX = 'policy.key.';
/** Beside the sealed store: requests released for and rate buckets (replay-ledger.ts). */
const REPLAYS_FILE = 'replays.jsonl';
/** Party ids of signers removed by approved RemoveSigner proposals: never trusted again. */
const RETIRED = 'policy.retired';
const retiredSchema = z.array(z.number().int().min(1).max(255));
/** Signers admitted by approved AddSigner proposals, beside those configured at bootstrap. */
const ADMITTED = 'policy.admitted';
const admittedSchema = z.array(peerSchema).max(255);
const DAY_MS = 86_400_000;
/** A key may be forgotten (a failed creation rolled back) only this soon after it was made. */
const FORGET_WINDOW_MS = 10 * 60_000;

const NAME_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

// ---- enrolment (bootstrap) ------------------------------------------------------------------

const registeredPrincipalSchema = z
  .strictObject({
    name: z.string().regex(NAME_RE),
    role: z.enum(['admin', 'app', 'auditor']),
    accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/),
    /** Every principal's: its requests are verified here, never at the gateway. */
    secretAccessKey: z.string().min(20).max(256),
    /** Applications and administrators: the key their PKCS#11 requests are MAC'd with (policy/evidence.ts). */
    pinRequestKey: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  })
  .refine((p) => (p.role === 'auditor') === (p.pinRequestKey === undefined), 'applications and administrators, and only they, have a PIN request key');
export type RegisteredPrincipal = z.infer<typeof registeredPrincipalSchema>;

const registrySchema = z
  .strictObject({
    clusterId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    region: z.string().regex(/^[a-z0-9-]{1,32}$/),
    account: z.string().regex(/^\d{12}$/),
    principals: z.array(registeredPrincipalSchema).min(1).max(1024),
  })
  .superRefine((r, ctx) => {
    const names = r.principals.map((p) => p.name);
    const keys = r.principals.map((p) => p.accessKeyId);
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', path: ['principals'], message: 'a principal is listed twice' });
    if (new Set(keys).size !== keys.length) ctx.addIssue({ code: 'custom', path: ['principals'], message: 'an access key id is listed twice' });
  });
type Registry = z.infer<typeof registrySchema>;

/** What `signer enrol` receives on stdin (with the operator secret) at bootstrap. */
export const enrolmentSchema = registrySchema.and(z.object({ governance: z.unknown() }));
export type Enrolment = z.infer<typeof enrolmentSchema>;

/** UpdateGovernance's parameters at a signer: the next chain link, and the administrators it enrols. */
const governanceChangeSchema = z.strictObject({ Governance: z.unknown(), Principals: z.array(principalEnrolmentSchema).max(64) });

// ---- state ----------------------------------------------------------------------------------

const keyStateSchema = z.strictObject({
  keyId: z.string().regex(UUID_RE),
  keySpec: z.string(),
  keyUsage: z.enum(KEY_USAGES),
  origin: z.enum(['AWS_KMS', 'EXTERNAL']),
  /** The key policy document, as written. */
  policy: z.string(),
  state: z.enum(['Enabled', 'Disabled', 'PendingDeletion']),
  createdAt: z.number(),
  /** createdAt of the last approved proposal applied to the key: an older one is stale. */
  lastChange: z.number(),
  /** PendingDeletion: when this signer may destroy its share (by its own clock, from when it applied the deletion). */
  deletionDate: z.number().optional(),
});
type KeyState = z.infer<typeof keyStateSchema>;

const ledgerSchema = z.strictObject({
  /** The last change (gateway sequence number) processed. */
  seq: z.number().int().min(0),
  /** Proposals applied (or used to create a key), until they expire. */
  proposals: z.record(z.string(), z.number()),
  /** Per-signature approval nonces consumed, until they expire. */
  nonces: z.record(z.string(), z.number()),
  /** Principals' requests applied at once (replay id), until their date leaves the window. */
  requests: z.record(z.string(), z.number()),
});
type Ledger = z.infer<typeof ledgerSchema>;

const aliasesSchema = z.record(z.string(), z.string().regex(UUID_RE));

/**
 * What an active signer hands a newly admitted one (sealed to it: signers/node/admission.ts):
 * its whole policy state. The newcomer takes it only if every active signer sent the same.
 */
export const admissionStateSchema = z.strictObject({
  registry: registrySchema,
  chain: z.array(z.unknown()).min(1).max(10_000),
  keys: z.array(keyStateSchema).max(100_000),
  aliases: aliasesSchema,
  retired: retiredSchema,
  admitted: admittedSchema,
  ledger: ledgerSchema,
});
export type AdmissionState = z.infer<typeof admissionStateSchema>;

/** What a change or creation request may carry: an approved proposal and its approvals. */
type ProposalCarrier = { parameters?: Record<string, unknown>; proposal?: unknown; approvals?: unknown[] | undefined };

/** This signer's identity and party id (what a secret sealed to it is opened with), and its configured cluster. */
export interface SelfIdentity {
  identity: IdentitySecrets;
  party: number;
  /** The signers configured at bootstrap (this one included). */
  peers: readonly Peer[];
  threshold: number;
}

/** A refusal for policy reasons; the gateway turns "access denied" into AccessDeniedException. */
const denied = (why: string) => new RpcError(403, 'access-denied', `access denied: ${why}`);

/** A Sign/Decrypt this signer has authorised, until its output is released. */
export interface UseGrant {
  keyId: string;
  /** The key as the client named it in the evidence. */
  keyRef: string;
  principal: string;
  use: Use;
  payload: Uint8Array;
  replayId: string;
  replayUntil: number;
  nonces: { nonce: string; expiresAt: number }[];
  approvedBy: string[];
  governanceVersion: number;
}

/** A key creation this signer has authorised, recorded once its share is stored. */
export interface PendingKey {
  keyId: string;
  keySpec: string;
  keyUsage: KeyState['keyUsage'];
  origin: KeyState['origin'];
  policy: string;
  lastChange: number;
  /** Who asked, who approved, the authorisation's hash and the request's, for the audit entry. */
  record: CreateRecord;
  /** The request applied at once, spent when the key is stored. */
  request?: VerifiedRequest;
}

/** How a change was decided, for the signer's audit entry. */
interface Applied {
  principal: string;
  approvedBy: string[];
  /** The key or alias as the change names it. */
  keyRef?: string;
  detail: Record<string, string | number | boolean>;
  /** A request applied at once: spent once the change is. */
  request?: VerifiedRequest;
}

/** What a release adds to the signer's audit entry: who asked, for what, and who approved. */
export interface UseRecord {
  operation: 'Sign' | 'Decrypt';
  principal: { name: string };
  keyRef: string;
  /** SHA-256 of the Message or CiphertextBlob, as the gateway records it too. */
  digest: string;
  evidenceHash: string;
  policy: { version: number; approvals: string[] };
  /** A repeat of a request released before (served again, spending nothing). */
  detail?: { repeat: true };
}

/** Who asked for a key's creation or refresh and who approved, for the signer's audit entry. */
export interface AskedRecord {
  principal: { name: string };
  policy: { version: number; approvals: string[] };
  /** The proposal, or the hash of the administrator's request. */
  detail: Record<string, string>;
}

/** What a key creation adds to the signer's audit entry. */
export interface CreateRecord extends AskedRecord {
  operation: 'CreateKey';
  evidenceHash: string;
}

/** SHA-256 of the canonical JSON of what a signer acted on. */
const evidenceHashOf = (v: unknown): string => digestHex(new TextEncoder().encode(canonicalJson(v)));

export class PolicyGuard {
  private readonly byAccessKey = new Map<string, RegisteredPrincipal>();
  private readonly byName = new Map<string, RegisteredPrincipal>();
  private readonly policies = new Map<string, KeyPolicy>();
  /** Keys that have released anything since start (they can no longer be forgotten). */
  private readonly used = new Set<string>();
  /** CreateKey requests whose key is being made: replay id → key id. */
  private readonly creating = new Map<string, string>();

  private constructor(
    private readonly store: ShareStore,
    private readonly audit: AuditLog,
    private readonly self: SelfIdentity,
    private registry: Registry,
    /** The verified governance chain; its last version is in force. */
    private chain: unknown[],
    private governance: GovernanceDocument,
    private readonly keys: Map<string, KeyState>,
    private aliases: Record<string, string>,
    private ledger: Ledger,
    private retiredIds: Set<number>,
    private admittedPeers: Peer[],
    /** Requests released for and rate buckets, kept across restarts. */
    private readonly replays: ReplayLedger,
  ) {
    this.index();
    setInterval(() => this.sweep(), 30_000).unref();
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
    await store.put(REGISTRY, json(state.registry)); // last: its presence means "enrolled"
    return { governanceVersion: g.governance.version, keys: state.keys.length, seq: state.ledger.seq };
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
    const replays = await ReplayLedger.open(path.join(path.dirname(store.dir), REPLAYS_FILE));
    return new PolicyGuard(store, audit, self, registry, chain.chain, g.governance, keys, await read(ALIASES, aliasesSchema), await read(LEDGER, ledgerSchema), new Set(retired), admitted, replays);
  }

  // ---- authentication for the gateway -------------------------------------------------------

  /**
   * Verifies an application's SigV4 request for the gateway, which does not hold application
   * secrets. Answers the principal, or refuses with the AWS error the client should get.
   */
  async authenticate(body: unknown): Promise<{ principal: string; accessKeyId: string }> {
    const req = z.strictObject({ session: z.string().regex(UUID_RE), request: sigv4EvidenceSchema }).parse(body);
    const e = req.request;
    try {
      const v = await verifySigV4({ method: e.method, path: e.path, query: e.query, headers: e.headers, body: fromB64(e.body) }, { ...this.requestCheck(), now: Date.now() });
      return { principal: v.principal, accessKeyId: v.accessKeyId };
    } catch (err) {
      if (err instanceof SigV4Error) throw new RpcError(403, err.type, err.message);
      throw err;
    }
  }

  // ---- Sign / Decrypt -----------------------------------------------------------------------

  /**
   * Authorises a Sign or Decrypt with `keyId` from the evidence the gateway forwarded. Nothing
   * is consumed yet: `release` does that when the output leaves.
   */
  async authorizeUse(keyId: string, raw: unknown): Promise<UseGrant> {
    if (raw === undefined) throw denied('the request carries no evidence that a principal asked for it');
    const parsed = useSchema.safeParse(raw);
    if (!parsed.success) throw denied(`malformed request evidence: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
    const u = parsed.data;
    const key = this.keyState(keyId);
    if (key.state !== 'Enabled') throw new RpcError(403, 'invalid-state', `key ${keyId} is ${key.state === 'Disabled' ? 'disabled' : 'pending deletion'} at this signer`);
    const misuse = keyUseProblem(key, u.operation, u.algorithm);
    if (misuse) throw new RpcError(403, 'invalid-usage', misuse);
    const now = Date.now();
    const payload = fromB64(u.payload);
    const ev = await verifyEvidence(u.evidence, {
      region: this.registry.region,
      secretFor: (id) => {
        const p = this.byAccessKey.get(id);
        return p?.secretAccessKey ? { principal: p.name, secret: p.secretAccessKey } : undefined;
      },
      requestKeyFor: (name) => {
        const k = this.byName.get(name)?.pinRequestKey;
        return k ? fromHex(k) : undefined;
      },
      expect: { operation: u.operation, keyId, resolveKey: (ref) => this.resolveKey(ref), keySpec: key.keySpec, algorithm: u.algorithm, payload, ...(u.messageType ? { messageType: u.messageType } : {}) },
      now,
      seen: new Set(),
    });
    if (!ev.ok) throw denied(ev.reason);
    const prior = this.replays.get(ev.replayId, now);

    let digest: string | undefined;
    if (u.operation === 'Sign') {
      if (!isSigningAlgorithm(u.algorithm)) throw denied(`unknown signing algorithm ${u.algorithm}`);
      try {
        digest = messageDigestFor(u.algorithm, u.messageType ?? 'RAW', payload);
      } catch (e) {
        throw denied((e as Error).message);
      }
    }
    // Nonces this same request consumed at its first release are not a reuse on a repeat.
    const usedNonces = new Set(Object.keys(this.ledger.nonces).filter((n) => !prior?.nonces.includes(n)));
    const d = authorize({
      principal: this.principal(ev.principal),
      operation: `kms:${u.operation}`,
      key: this.keyInput(key),
      context: { algorithm: u.algorithm, ...(u.messageType ? { messageType: u.messageType } : {}), ...(digest ? { digest } : {}) },
      governance: this.governance,
      now,
      signApprovals: { approvals: u.signApprovals ?? [], usedNonces },
    });
    if (!d.allowed) throw denied(d.reason);
    if (!prior) this.rateLimit(key, now, false);
    return {
      keyId,
      keyRef: ev.keyRef,
      principal: ev.principal,
      use: u,
      payload,
      replayId: ev.replayId,
      replayUntil: ev.replayUntil,
      nonces: d.consumeNonces,
      approvedBy: d.approvedBy,
      governanceVersion: this.governance.version,
    };
  }

  /**
   * Consumes what an authorised request spends — its replay id, per-signature approval
   * nonces (sealed), a rate-limit token — durably, immediately before its output leaves this
   * signer. A repeat of a request released before spends nothing again.
   */
  async release(g: UseGrant, fingerprint: string): Promise<UseRecord> {
    const now = Date.now();
    const prior = this.replays.get(g.replayId, now);
    if (!prior) {
      for (const n of g.nonces) if (this.ledger.nonces[n.nonce] !== undefined) throw denied(`a signature approval (nonce ${n.nonce}) was already used`);
      const bucket = this.rateLimit(this.keyState(g.keyId), now, true);
      for (const n of g.nonces) this.ledger.nonces[n.nonce] = n.expiresAt;
      await Promise.all([
        this.replays.record(g.replayId, { fingerprint, until: g.replayUntil, nonces: g.nonces.map((n) => n.nonce) }, bucket && { keyId: g.keyId, state: bucket }),
        g.nonces.length ? this.saveLedger() : undefined,
      ]);
    }
    this.used.add(g.keyId);
    return {
      operation: g.use.operation,
      principal: { name: g.principal },
      keyRef: g.keyRef,
      digest: digestHex(g.payload),
      evidenceHash: evidenceHashOf(g.use.evidence),
      policy: { version: g.governanceVersion, approvals: g.approvedBy },
      ...(prior ? { detail: { repeat: true } } : {}),
    };
  }

  /** The FROST signing package must sign exactly what the client asked. */
  expectFrost(g: UseGrant, suite: string, messageHex: string): void {
    const alg = g.use.algorithm;
    const expected =
      alg === 'ED25519_SHA_512' ? { suite: 'ed25519', message: g.payload }
      : alg === 'ED25519_PH_SHA_512' ? { suite: 'ed25519ph', message: (g.use.messageType ?? 'RAW') === 'RAW' ? sha512(g.payload) : g.payload }
      : undefined;
    if (!expected) throw denied(`${alg} is not an Ed25519 signing algorithm`);
    if (suite !== expected.suite || messageHex !== toHex(expected.message)) throw denied('the signing package is not for the message and algorithm the client asked for');
  }

  /** The RSA request must be exactly the client's: digest and scheme, or ciphertext and padding. */
  expectRsa(g: UseGrant, r: RsaRequest): void {
    if (g.use.operation === 'Sign') {
      if (r.op !== 'sign' || !isSigningAlgorithm(g.use.algorithm)) throw denied('the client asked for a signature, not this');
      const info = ALGORITHM_INFO[g.use.algorithm as SigningAlgorithm];
      const scheme = info.scheme === 'RSASSA_PSS' ? 'pss' : info.scheme === 'RSASSA_PKCS1_V1_5' ? 'pkcs1v15' : undefined;
      const digest = (g.use.messageType ?? 'RAW') === 'RAW' ? HASHES[info.hash](g.payload) : g.payload;
      if (r.scheme !== scheme || r.hash !== info.hash.replace('SHA-', 'sha') || r.digest !== toHex(digest)) throw denied('the RSA request does not sign the digest the client asked for');
      return;
    }
    const padding = ({ RSAES_OAEP_SHA_1: 'oaep-sha1', RSAES_OAEP_SHA_256: 'oaep-sha256', RSAES_PKCS1_V1_5: 'pkcs1v15' } as Record<string, string>)[g.use.algorithm];
    if (r.op !== 'decrypt' || r.padding !== padding || r.label !== undefined || r.ciphertext !== toHex(g.payload)) throw denied('the RSA request does not decrypt the ciphertext the client asked for');
  }

  /** A signature digest (ECDSA) must be the hash of the client's message, or its digest. */
  expectDigest(g: UseGrant, digestHex: string): void {
    const alg = g.use.algorithm;
    if (g.use.operation !== 'Sign' || !isSigningAlgorithm(alg) || ALGORITHM_INFO[alg].scheme !== 'ECDSA') throw denied(`${alg} is not an ECDSA signing algorithm`);
    const digest = (g.use.messageType ?? 'RAW') === 'RAW' ? HASHES[ALGORITHM_INFO[alg].hash](g.payload) : g.payload;
    if (digestHex !== toHex(digest)) throw denied('the signing request is not for the digest the client asked for');
  }

  // ---- key creation -------------------------------------------------------------------------

  /**
   * Authorises creating `keyId`: the administrator's CreateKey request for exactly this key
   * (its own approval) or an approved proposal (the proposer's request counting as one
   * approval), and the policy.
   */
  async authorizeCreate(keyId: string, raw: unknown): Promise<PendingKey> {
    if (raw === undefined) throw denied('the request carries no key-creation authorisation');
    const c = creationSchema.parse(raw);
    if (this.keys.has(keyId)) throw new RpcError(409, 'key-exists', `key ${keyId} already exists here`);
    const now = Date.now();
    const { approved, principal, evidenceHash, request } = await this.askedFor('kms:CreateKey', 'TrentService.CreateKey', c, createKeyRequestFor(c), now);
    let policyText = c.policy;
    if (approved) {
      const p = approved.proposal;
      const spec = p.parameters.KeySpec ?? p.parameters.CustomerMasterKeySpec;
      if (spec !== c.keySpec || p.parameters.KeyUsage !== c.keyUsage)
        throw denied(`proposal ${p.id} approves a ${String(spec)} ${String(p.parameters.KeyUsage)} key, not a ${c.keySpec} ${c.keyUsage} key`);
      if (p.parameters.Policy !== undefined && typeof p.parameters.Policy !== 'string') throw denied(`proposal ${p.id} has a malformed Policy`);
      policyText = p.parameters.Policy as string | undefined;
    }
    if (request) {
      // One request makes one key: a retry of the same key is not a second one.
      const other = this.creating.get(request.replayId);
      if (other !== undefined && other !== keyId) throw denied('this signed request was already used to create another key (replay)');
      this.creating.set(request.replayId, keyId);
    }
    const d = authorize({
      principal: this.principal(principal),
      operation: 'kms:CreateKey',
      governance: this.governance,
      now,
      requestApproved: evidenceHash !== undefined,
      ...(approved ? { approval: approved.input } : {}),
    });
    if (!d.allowed) throw denied(d.reason);
    const policy = policyText ?? JSON.stringify(this.defaultPolicy(), null, 2);
    this.parsePolicy(policy);
    if (approved) await this.markApplied(approved.proposal);
    const detail = askedDetail(approved?.proposal.id, evidenceHash);
    return {
      keyId,
      keySpec: c.keySpec,
      keyUsage: c.keyUsage,
      origin: c.origin,
      policy,
      lastChange: approved?.proposal.createdAt ?? 0,
      record: { operation: 'CreateKey', principal: { name: principal }, evidenceHash: evidenceHashOf(c), policy: { version: this.governance.version, approvals: d.approvedBy }, detail },
      ...(request ? { request } : {}),
    };
  }

  /** Records a key once this signer stored its share; answers who asked, for the audit entry. */
  async recordCreated(k: PendingKey): Promise<CreateRecord> {
    const { record, request, ...rest } = k;
    const state: KeyState = { ...rest, state: 'Enabled', createdAt: Date.now() };
    await this.store.put(KEY_PREFIX + k.keyId, json(state));
    this.keys.set(k.keyId, state);
    if (request) {
      this.creating.delete(request.replayId);
      this.ledger.requests[request.replayId] = request.replayUntil;
      await this.saveLedger();
    }
    return record;
  }

  /** How this signer checks a principal's request: its region, its registry's secrets, key references of this cluster. */
  private requestCheck(): RequestCheck {
    return {
      region: this.registry.region,
      secretFor: (id) => {
        const p = this.byAccessKey.get(id);
        return p ? { principal: p.name, secret: p.secretAccessKey } : undefined;
      },
      requestKeyFor: (name) => {
        const k = this.byName.get(name)?.pinRequestKey;
        return k ? fromHex(k) : undefined;
      },
      keyIdOf: (ref) => {
        const prefix = `arn:aws:kms:${this.registry.region}:${this.registry.account}:key/`;
        const id = ref.startsWith(prefix) ? ref.slice(prefix.length) : ref;
        return UUID_RE.test(id) ? id : undefined;
      },
    };
  }

  /**
   * Only a failed creation is rolled back: a key that is new (minutes old) and has released
   * nothing. Deleting a key in use takes ScheduleKeyDeletion, under the administrators' quorum.
   */
  checkForget(keyId: string): void {
    const k = this.keys.get(keyId);
    if (!k) return;
    if (this.used.has(keyId) || Date.now() - k.createdAt > FORGET_WINDOW_MS) throw denied(`key ${keyId} is in use; keys are deleted by an approved ScheduleKeyDeletion, not forgotten`);
  }

  /** A key is destroyed only once its deletion, approved and applied here, is due by this signer's clock. */
  checkDestroy(keyId: string): void {
    const k = this.keyState(keyId);
    if (k.state !== 'PendingDeletion' || k.deletionDate === undefined) throw denied(`key ${keyId} is ${k.state} here, not pending deletion`);
    if (k.deletionDate > Date.now()) throw denied(`key ${keyId} is pending deletion until ${new Date(k.deletionDate).toISOString()} here`);
  }

  /** Forgets a destroyed or rolled-back key: its policy record and the aliases naming it. */
  async forgotten(keyId: string): Promise<void> {
    const aliases = Object.fromEntries(Object.entries(this.aliases).filter(([, id]) => id !== keyId));
    if (Object.keys(aliases).length !== Object.keys(this.aliases).length) {
      await this.store.put(ALIASES, json(aliases));
      this.aliases = aliases;
    }
    await this.store.delete(KEY_PREFIX + keyId);
    this.keys.delete(keyId);
    this.policies.delete(keyId);
  }

  // ---- changes to keys and aliases ----------------------------------------------------------

  /** Applies one numbered change, after checking its approvals; refusals are final too. */
  async apply(raw: unknown): Promise<{ seq: number; applied: boolean }> {
    const c = changeSchema.parse(raw);
    if (c.seq <= this.ledger.seq) return { seq: c.seq, applied: false }; // a retry of one already processed
    if (c.seq !== this.ledger.seq + 1) throw new RpcError(409, 'out-of-order', `expected change ${this.ledger.seq + 1}, not ${c.seq}`);
    this.ledger.seq = c.seq;
    try {
      // Hashed before it is applied: a change that has no canonical form is refused, not half-recorded.
      let evidenceHash: string;
      try {
        evidenceHash = evidenceHashOf(c);
      } catch {
        throw denied('the change is not canonical JSON');
      }
      const result = 'keyId' in c ? await this.applyChange(c) : await this.applyMembership(c);
      if (result.request) this.ledger.requests[result.request.replayId] = result.request.replayUntil;
      await this.audit.append({
        request: `change-${c.seq}`,
        op: `policy.${c.operation}`,
        operation: c.operation,
        principal: { name: result.principal },
        keyId: 'keyId' in c ? c.keyId : undefined,
        keyRef: result.keyRef,
        evidenceHash,
        policy: { version: this.governance.version, approvals: result.approvedBy },
        outcome: 'ok',
        output: 'none',
        startedAt: Date.now(),
        detail: result.detail,
      });
      return { seq: c.seq, applied: true };
    } finally {
      await this.saveLedger();
    }
  }

  /**
   * A key or alias change: asked by the administrator whose request verifies here for exactly
   * this change, or approved by a proposal (the proposer's request, when forwarded, counting as
   * the proposer's approval).
   */
  private async applyChange(c: KeyChange): Promise<Applied> {
    const op = `kms:${c.operation}` as Action;
    const target = `TrentService.${c.operation}`;
    const now = Date.now();
    const { approved, principal, evidenceHash, request } = await this.askedFor(op, target, c, sameParameters(c.parameters, this.requestCheck().keyIdOf), now);
    const params = approved?.proposal.parameters ?? c.parameters;
    const str = (name: string): string => {
      const v = params[name];
      if (typeof v !== 'string') throw denied(`${c.operation}: parameter ${name} is missing`);
      return v;
    };
    const isAlias = c.operation.endsWith('Alias');
    const keyRef = str(c.operation === 'DeleteAlias' ? 'AliasName' : isAlias ? 'TargetKeyId' : 'KeyId');
    const keyId = c.operation === 'DeleteAlias' ? this.aliases[keyRef] : this.keyIdOf(keyRef);
    if (keyId !== c.keyId) throw denied(`the change names key ${c.keyId} but its parameters name ${keyId ?? 'no key'}`);
    const key = this.keyState(keyId);
    const window = params.PendingWindowInDays;
    const d = authorize({
      principal: this.principal(principal),
      operation: op,
      key: this.keyInput(key),
      context: typeof window === 'number' ? { pendingWindowInDays: window } : {},
      governance: this.governance,
      now,
      requestApproved: evidenceHash !== undefined,
      ...(approved ? { approval: approved.input } : {}),
    });
    if (!d.allowed) throw denied(d.reason);
    if (approved && approved.proposal.createdAt < key.lastChange) throw denied(`proposal ${approved.proposal.id} is older than a change already applied to key ${keyId}`);

    const next: KeyState = { ...key, lastChange: approved?.proposal.createdAt ?? key.lastChange };
    const pending = key.state === 'PendingDeletion';
    const invalid = () => new RpcError(409, 'invalid-state', `key ${keyId} is ${key.state} at this signer`);
    switch (c.operation) {
      case 'PutKeyPolicy':
        next.policy = str('Policy');
        this.parsePolicy(next.policy);
        break;
      case 'DisableKey':
      case 'EnableKey':
        if (pending) throw invalid();
        next.state = c.operation === 'DisableKey' ? 'Disabled' : 'Enabled';
        break;
      case 'ScheduleKeyDeletion': {
        if (pending) throw invalid();
        const days = window ?? 30;
        if (typeof days !== 'number' || !Number.isInteger(days) || days < 7 || days > 30) throw denied(`PendingWindowInDays must be 7 to 30, not ${String(days)}`);
        next.state = 'PendingDeletion';
        next.deletionDate = Date.now() + days * DAY_MS;
        break;
      }
      case 'CancelKeyDeletion':
        if (!pending) throw invalid();
        next.state = 'Disabled';
        delete next.deletionDate;
        break;
      default: {
        const name = str('AliasName');
        const problem = aliasNameProblem(name);
        if (problem) throw denied(problem);
        const current = this.aliases[name];
        if (c.operation === 'CreateAlias' && current !== undefined) throw denied(`alias ${name} already exists here; UpdateAlias re-points it`);
        if (c.operation === 'UpdateAlias') {
          if (current === undefined) throw denied(`alias ${name} does not exist here`);
          if (this.keyState(current).keyUsage !== key.keyUsage) throw denied(`alias ${name} names a ${this.keyState(current).keyUsage} key; it cannot be re-pointed at a ${key.keyUsage} key`);
        }
        if (c.operation !== 'DeleteAlias' && pending) throw invalid();
        const aliases = { ...this.aliases };
        if (c.operation === 'DeleteAlias') delete aliases[name];
        else aliases[name] = keyId;
        await this.store.put(ALIASES, json(aliases));
        this.aliases = aliases;
      }
    }
    if (!isAlias) {
      await this.store.put(KEY_PREFIX + keyId, json(next));
      this.keys.set(keyId, next);
      this.policies.delete(keyId);
    }
    if (approved) await this.markApplied(approved.proposal);
    const detail = askedDetail(approved?.proposal.id, evidenceHash);
    return { principal, approvedBy: d.approvedBy, keyRef, detail, ...(request ? { request } : {}) };
  }

  // ---- changes to principals and governance -------------------------------------------------

  /** AddPrincipal, RemovePrincipal, AddSigner and RemoveSigner take an approved proposal; UpdateGovernance a verified next version. */
  private async applyMembership(c: MembershipChange): Promise<Applied> {
    if (c.operation === 'UpdateGovernance') return this.updateGovernance(c);
    const op = `mpchsm:${c.operation}` as const;
    // Every governance version puts these under quorum (governance.ts): a proposal is required.
    const approved = this.proposalOf(op, c, quorumFor(this.governance, op));
    const { proposal } = approved;
    const d = authorize({ principal: this.principal(proposal.proposer), operation: op, governance: this.governance, now: Date.now(), approval: approved.input });
    if (!d.allowed) throw denied(d.reason);
    let member: string;
    if (c.operation === 'AddPrincipal') {
      const r = principalEnrolmentSchema.safeParse(proposal.parameters);
      if (!r.success) throw denied(`malformed principal in proposal ${proposal.id}: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
      const e = r.data;
      if (e.Role === 'admin') throw denied(`${e.Name}: administrators are added by a governance update, which gives them an approval key`);
      if (this.byName.has(e.Name)) throw denied(`principal ${e.Name} already exists at this signer`);
      if (this.byAccessKey.has(e.AccessKeyId)) throw denied(`access key id ${e.AccessKeyId} is already in use at this signer`);
      await this.saveRegistry([...this.registry.principals, this.registered(e)]);
      member = e.Name;
    } else if (c.operation === 'RemoveSigner') {
      const r = signerRemovalSchema.safeParse(proposal.parameters);
      if (!r.success) throw denied(`malformed signer removal in proposal ${proposal.id}: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
      const peer = this.peers.find((p) => p.name === r.data.Name);
      if (!peer) throw denied(`${r.data.Name} is not a signer of this cluster`);
      if (this.retiredIds.has(peer.id)) throw denied(`signer ${peer.name} is already retired`);
      const retired = [...this.retiredIds, peer.id].sort((a, b) => a - b);
      const remaining = this.peers.length - retired.length;
      if (remaining < this.self.threshold) throw denied(`removing ${peer.name} would leave ${remaining} signers, fewer than the threshold ${this.self.threshold}`);
      await this.store.put(RETIRED, json(retired));
      this.retiredIds = new Set(retired);
      member = peer.name;
    } else if (c.operation === 'AddSigner') {
      member = await this.admitSigner(proposal);
    } else {
      const r = principalRemovalSchema.safeParse(proposal.parameters);
      if (!r.success) throw denied(`malformed removal in proposal ${proposal.id}: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
      const p = this.byName.get(r.data.Name);
      if (!p) throw denied(`${r.data.Name} is not a principal registered at this signer`);
      if (p.role === 'admin') throw denied(`${p.name} is an administrator: administrators are removed by a governance update`);
      await this.saveRegistry(this.registry.principals.filter((x) => x.name !== p.name));
      member = p.name;
    }
    await this.markApplied(proposal);
    return { principal: proposal.proposer, approvedBy: d.approvedBy, detail: { proposal: proposal.id, member } };
  }

  /**
   * Adopts the next governance version once it verifies against the one in force (approved by
   * that version's quorum, new keys signed by their holders), with the administrators it adds
   * registered and those it removes dropped. The registry is written first: after a crash in
   * between, the same change comes again and leads to the same registry.
   */
  private async updateGovernance(c: MembershipChange): Promise<Applied> {
    const u = governanceChangeSchema.safeParse(c.parameters);
    if (!u.success) throw denied(`malformed governance update: ${u.error.issues[0]?.path.join('.')}: ${u.error.issues[0]?.message}`);
    const current = this.governance;
    const r = verifyGovernanceUpdate(current, u.data.Governance);
    if (!r.ok) throw denied(r.reason);
    const next = r.governance;
    const problem = enrolmentProblem(current, next, u.data.Principals);
    if (problem) throw denied(problem);
    const { added, removed } = administratorChanges(current, next);
    for (const name of added) {
      const p = this.byName.get(name);
      if (p && p.role !== 'admin') throw denied(`governance v${next.version} makes ${name} an administrator, but ${name} is a principal with role ${p.role}`);
    }
    const replaced = new Set([...added, ...removed]);
    await this.saveRegistry([...this.registry.principals.filter((p) => !replaced.has(p.name)), ...u.data.Principals.map((e) => this.registered(e))]);
    const chain = [...this.chain, u.data.Governance];
    await this.store.put(GOVERNANCE, json({ chain }));
    [this.chain, this.governance] = [chain, next];
    const signedBy = new Set(signedGovernanceSchema.parse(u.data.Governance).signatures.map((s) => s.admin));
    return { principal: c.principal, approvedBy: current.administrators.filter((a) => signedBy.has(a.name)).map((a) => a.name), detail: { governance: next.version } };
  }

  /** A principal as this signer keeps it, with its secrets opened from the copy sealed here. */
  private registered(e: PrincipalEnrolment): RegisteredPrincipal {
    try {
      return { name: e.Name, role: e.Role, accessKeyId: e.AccessKeyId, ...openPrincipalSecret(e, this.self.identity, this.self.party) };
    } catch (err) {
      if (err instanceof MembershipError) throw denied(err.message);
      throw err;
    }
  }

  private async saveRegistry(principals: RegisteredPrincipal[]): Promise<void> {
    const r = registrySchema.safeParse({ ...this.registry, principals });
    if (!r.success) throw denied(`the principal registry would be invalid: ${r.error.issues[0]?.message}`);
    await this.store.put(REGISTRY, json(r.data));
    this.registry = r.data;
    this.index();
  }

  private index(): void {
    this.byAccessKey.clear();
    this.byName.clear();
    for (const p of this.registry.principals) {
      this.byAccessKey.set(p.accessKeyId, p);
      this.byName.set(p.name, p);
    }
  }

  /**
   * Who asked for `op`, and how it is approved: by an approved proposal (its proposer's request,
   * when forwarded, counting as the proposer's approval), or by the principal's own request for
   * it (`check`: its parameters are exactly what is to be done), unspent here.
   */
  private async askedFor(op: Action, target: string, c: ProposalCarrier & { evidence?: unknown }, check: RequestExpectation['check'], now: number) {
    const m = quorumFor(this.governance, op);
    const rc = this.requestCheck();
    if (m > 0 && c.proposal !== undefined) {
      const approved = this.proposalOf(op, c, m);
      const proposer = await proposerRequest(c.evidence, rc, approved.proposal, target);
      return { approved, principal: approved.proposal.proposer, evidenceHash: proposer?.evidenceHash, request: undefined };
    }
    if (c.evidence === undefined && m > 0) throw this.noApproval(op, m);
    const request = await verifiedRequest(c.evidence, rc, { target, check }, now);
    checkUnspent(request, this.ledger.requests, now);
    return { approved: undefined, principal: request.principal, evidenceHash: request.evidenceHash, request };
  }

  private noApproval(op: Action, m: number): RpcError {
    return denied(`${op} needs approval by ${m} of the ${this.governance.administrators.length} administrators; the request carries none`);
  }

  /** The proposal for `op` that `c` carries (`m`: the approvals it needs, for the refusal). */
  private proposalOf(op: Action, c: ProposalCarrier, m: number) {
    if (c.proposal === undefined) throw this.noApproval(op, m);
    const r = proposalSchema.safeParse(c.proposal);
    if (!r.success) throw denied(`malformed proposal: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
    const proposal: Proposal = r.data;
    if (proposal.operation !== op) throw denied(`proposal ${proposal.id} is for ${proposal.operation}, not ${op}`);
    if (c.parameters !== undefined && canonicalJson(c.parameters) !== canonicalJson(proposal.parameters)) throw denied(`the change differs from what proposal ${proposal.id} approved`);
    if (this.ledger.proposals[proposal.id] !== undefined) throw denied(`proposal ${proposal.id} was already applied here`);
    const input: NonNullable<AuthorizeInput['approval']> = { proposal, approvals: c.approvals ?? [], parameters: proposal.parameters };
    return { proposal, input };
  }

  private async markApplied(p: Proposal): Promise<void> {
    this.ledger.proposals[p.id] = p.expiresAt;
    await this.saveLedger();
  }

  // ---- signers removed, and the resharing that follows ----------------------------------------

  /** Party ids of the signers removed by approved proposals applied here. */
  get retired(): ReadonlySet<number> {
    return this.retiredIds;
  }

  /** Every signer admitted, at bootstrap or since, retired ones included. */
  get peers(): Peer[] {
    return [...this.self.peers, ...this.admittedPeers.filter((a) => !this.self.peers.some((p) => p.id === a.id))];
  }

  /** This signer's policy state, for a signer admitted here (and not retired since). */
  admissionState(name: string): AdmissionState {
    const peer = this.admittedPeers.find((p) => p.name === name);
    if (!peer || this.retiredIds.has(peer.id)) throw denied(`${name} is not a signer admitted by an approved AddSigner here`);
    return {
      registry: this.registry,
      chain: this.chain,
      keys: [...this.keys.values()].sort((a, b) => a.keyId.localeCompare(b.keyId)),
      aliases: this.aliases,
      retired: [...this.retiredIds].sort((a, b) => a - b),
      admitted: this.admittedPeers,
      ledger: this.ledger,
    };
  }

  /** Party ids of the signers this one works with: admitted, not retired. */
  get activePeers(): number[] {
    return this.peers.map((p) => p.id).filter((id) => !this.retiredIds.has(id)).sort((a, b) => a - b);
  }

  /**
   * Pins a new signer's identity under an approved AddSigner: from then on its envelopes are
   * opened and keys may be reshared to it. Names, party ids and identities are never reused.
   */
  private async admitSigner(proposal: Proposal): Promise<string> {
    const r = signerAdmissionSchema.safeParse(proposal.parameters);
    if (!r.success) throw denied(`malformed signer admission in proposal ${proposal.id}: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
    let identity: PublicIdentity;
    try {
      identity = parsePublicIdentity(r.data.Identity);
    } catch (e) {
      throw denied(`proposal ${proposal.id}: ${(e as Error).message}`);
    }
    const clash = this.peers.find((p) => p.name === r.data.Name || p.id === r.data.Id || p.identity.signPublicKey === identity.signPublicKey || p.identity.kexPublicKey === identity.kexPublicKey);
    if (clash || this.retiredIds.has(r.data.Id)) throw denied(`signer ${r.data.Name} (party ${r.data.Id}) clashes with ${clash ? `signer ${clash.name}` : 'a retired signer'}: names, party ids and identities are never reused`);
    const admitted = [...this.admittedPeers, { name: r.data.Name, id: r.data.Id, identity }];
    await this.store.put(ADMITTED, json(admitted));
    this.admittedPeers = admitted;
    return r.data.Name;
  }

  /**
   * A key is reshared at its threshold, to a set that keeps every old holder still active here
   * and adds only active signers: away from retired signers (after an approved removal), to the
   * same holders (a refresh: new shares, fresh ECDSA pairs), or to a signer admitted by an
   * approved AddSigner. Each of those changes was approved where it needed approval; anything
   * else (dropping an active holder, a stranger, another threshold) is refused here, whatever
   * the gateway says.
   */
  checkReshare(keyId: string, old: { participants: readonly number[]; threshold: number }, next: { participants: readonly number[]; threshold: number }): void {
    this.keyState(keyId);
    if (this.retiredIds.has(this.self.party)) throw denied('this signer is retired: it takes part in no resharing');
    const active = this.activePeers;
    const kept = old.participants.filter((id) => !this.retiredIds.has(id));
    const missing = kept.filter((id) => !next.participants.includes(id));
    if (missing.length) throw denied(`key ${keyId} keeps every active holder when reshared; ${missing.join(', ')} would be dropped without an approved removal`);
    const strangers = next.participants.filter((id) => !active.includes(id));
    if (strangers.length) throw denied(`key ${keyId} is reshared only to active signers of this cluster, not to ${strangers.join(', ')}`);
    if (next.threshold !== old.threshold) throw denied(`key ${keyId} keeps its threshold ${old.threshold} when reshared, not ${next.threshold}`);
  }

  /**
   * Authorises refreshing `keyId`'s shares among its holders: asked by the administrator whose
   * request verifies here, or approved, as the governance says. The request is spent here.
   * Answers who asked and who approved, for the audit entry.
   */
  async authorizeRefresh(keyId: string, raw: unknown): Promise<AskedRecord> {
    const op: Action = 'mpchsm:RefreshKeyShares';
    if (raw === undefined) throw denied(`a refresh of key ${keyId}'s shares needs an administrator's request; the request carries none`);
    const r = reshareAuthoritySchema.safeParse(raw);
    if (!r.success) throw denied(`malformed refresh authority: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
    const a = r.data;
    const named = typeof a.parameters.KeyId === 'string' ? this.requestCheck().keyIdOf(a.parameters.KeyId) : undefined;
    if (named !== keyId) throw denied(`the refresh names key ${String(named ?? 'none')}, not ${keyId}`);
    this.keyState(keyId);
    const now = Date.now();
    const { approved, principal, evidenceHash, request } = await this.askedFor(op, 'MpcHsm.RefreshKeyShares', a, sameParameters(a.parameters, this.requestCheck().keyIdOf), now);
    const d = authorize({ principal: this.principal(principal), operation: op, governance: this.governance, now, requestApproved: evidenceHash !== undefined, ...(approved ? { approval: approved.input } : {}) });
    if (!d.allowed) throw denied(d.reason);
    if (request) this.ledger.requests[request.replayId] = request.replayUntil;
    if (approved) await this.markApplied(approved.proposal);
    else await this.saveLedger();
    const detail = askedDetail(approved?.proposal.id, evidenceHash);
    return { principal: { name: principal }, policy: { version: this.governance.version, approvals: d.approvedBy }, detail };
  }

  // ---- helpers ------------------------------------------------------------------------------

  private keyState(keyId: string): KeyState {
    const k = this.keys.get(keyId);
    if (!k) throw new RpcError(404, 'no-key', `this signer has no policy record for key ${keyId}`);
    return k;
  }

  private keyArn = (keyId: string) => `arn:aws:kms:${this.registry.region}:${this.registry.account}:key/${keyId}`;

  /** The key a client's reference names by this signer's own alias table. */
  private resolveKey(ref: string): string | undefined {
    return resolveKeyRef(ref, { region: this.registry.region, account: this.registry.account, aliasTarget: (a) => this.aliases[a] });
  }

  private keyIdOf(ref: string): string {
    const id = this.requestCheck().keyIdOf(ref);
    if (id === undefined) throw denied(`${ref.slice(0, 128)} is not a key id or key ARN of this cluster`);
    return id;
  }

  private principal(name: string): AuthorizeInput['principal'] {
    const p = this.byName.get(name);
    if (!p) throw denied(`${name} is not a principal registered at this signer`);
    return { name: p.name, role: p.role, arn: `arn:aws:iam::${this.registry.account}:user/${p.name}` };
  }

  private keyInput(k: KeyState): NonNullable<AuthorizeInput['key']> {
    let policy = this.policies.get(k.keyId);
    if (!policy) {
      policy = this.parsePolicy(k.policy);
      this.policies.set(k.keyId, policy);
    }
    return { arn: this.keyArn(k.keyId), policy, keySpec: k.keySpec, keyUsage: k.keyUsage, origin: k.origin };
  }

  private parsePolicy(text: string): KeyPolicy {
    try {
      return parseKeyPolicy(text);
    } catch (e) {
      if (e instanceof MalformedPolicyDocumentException) throw denied(e.message);
      throw e;
    }
  }

  /** The policy of a key created without one: the same document the gateway computes. */
  private defaultPolicy(): KeyPolicy {
    const named = (role: RegisteredPrincipal['role']) => this.registry.principals.filter((p) => p.role === role).map((p) => p.name).sort();
    return defaultKeyPolicy(this.registry.account, named('admin'), named('app'), named('auditor'));
  }

  /** Refuses a use the key's rate limit does not allow now; answers the bucket a use would leave. */
  private rateLimit(k: KeyState, now: number, take: boolean): BucketState | undefined {
    const limit = this.keyInput(k).policy.mpchsm?.rateLimit;
    if (!limit) return undefined;
    const r = takeToken(limit, this.replays.bucket(k.keyId), now);
    if (!r.allowed) throw denied(`key ${k.keyId} allows ${limit.perMinute} uses per minute; retry in ${Math.ceil(r.retryAfterMs / 1000)} s`);
    return take ? r.state : undefined;
  }

  private async saveLedger(): Promise<void> {
    const now = Date.now();
    const live = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).filter(([, until]) => until > now));
    this.ledger = { seq: this.ledger.seq, proposals: live(this.ledger.proposals), nonces: live(this.ledger.nonces), requests: live(this.ledger.requests) };
    await this.store.put(LEDGER, json(this.ledger));
  }

  private sweep(): void {
    this.replays.sweep(Date.now());
  }
}

/** What an audit entry says of how an act was asked for: the approved proposal, the request's hash. */
const askedDetail = (proposal: string | undefined, evidence: string | undefined): Record<string, string> => ({
  ...(proposal ? { proposal } : {}),
  ...(evidence ? { evidence } : {}),
});

/** Names an RSA partial's output: its input, so the same partial may be released again. */
export const rsaFingerprint = (r: RsaRequest): string => `rsa:${digestHex(fromHex(r.op === 'sign' ? r.representative : r.ciphertext))}`;

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

type Route = (body: unknown) => Promise<{ released?: { output: string; keyId: string }; [k: string]: unknown }>;
const ECDSA_SPECS: Readonly<Record<string, string>> = { ECC_NIST_P256: 'p256', ECC_NIST_P384: 'p384', ECC_SECG_P256K1: 'secp256k1' };
const GRANT_TTL_MS = 120_000;

/**
 * Puts the guard in front of the threshold-ECDSA routes (signers/node/ecdsa.ts): key generation
 * needs the creation authorisation (`creation` in the start body), signing needs the client's
 * evidence (`use` in the start body) for exactly the digest signed, and the round that
 * releases this signer's share consumes it.
 */
export function guardEcdsaRoutes(guard: PolicyGuard, routes: Record<string, Route>): Record<string, Route> {
  const keygens = new Map<string, { pending: PendingKey; expires: number }>();
  const signs = new Map<string, { grant: UseGrant; expires: number }>();
  const sweep = () => {
    const now = Date.now();
    for (const m of [keygens, signs] as Map<string, { expires: number }>[]) for (const [k, v] of m) if (v.expires < now) m.delete(k);
  };
  const split = (body: unknown, member: string) => {
    const b = z.object({ session: z.string().max(128), keyId: z.string().optional() }).passthrough().parse(body);
    const { [member]: extra, ...rest } = b;
    return { session: b.session, keyId: b.keyId ?? '', extra, rest };
  };
  const route = (path: string): Route => {
    const r = routes[path];
    if (!r) throw new Error(`no ECDSA route ${path}`);
    return r;
  };
  return {
    ...routes,
    '/v1/ecdsa/keygen/start': async (body) => {
      sweep();
      const { session, keyId, extra, rest } = split(body, 'creation');
      const pending = await guard.authorizeCreate(keyId, extra);
      if (ECDSA_SPECS[pending.keySpec] !== rest.curve) throw new RpcError(403, 'wrong-curve', `a ${pending.keySpec} key is not made on curve ${String(rest.curve)}`);
      const answer = await route('/v1/ecdsa/keygen/start')(rest);
      keygens.set(session, { pending, expires: Date.now() + GRANT_TTL_MS });
      return answer;
    },
    '/v1/ecdsa/keygen/step': async (body) => {
      const { session } = split(body, '');
      const answer = await route('/v1/ecdsa/keygen/step')(body);
      const k = keygens.get(session);
      if (!answer.released || !k) return answer;
      keygens.delete(session);
      return { ...answer, released: { ...answer.released, ...(await guard.recordCreated(k.pending)) } };
    },
    '/v1/ecdsa/sign/start': async (body) => {
      sweep();
      const { session, keyId, extra, rest } = split(body, 'use');
      const grant = await guard.authorizeUse(keyId, extra);
      guard.expectDigest(grant, String(rest.digest));
      const answer = await route('/v1/ecdsa/sign/start')(rest);
      signs.set(session, { grant, expires: Date.now() + GRANT_TTL_MS });
      return answer;
    },
    '/v1/ecdsa/sign/step': async (body) => {
      const { session } = split(body, '');
      const s = signs.get(session);
      if (!s) throw denied(`no authorised signing session ${session}`);
      const answer = await route('/v1/ecdsa/sign/step')(body);
      if (!answer.released) return answer;
      signs.delete(session);
      return { ...answer, released: { ...answer.released, ...(await guard.release(s.grant, `ecdsa:${session}`)) } };
    },
  };
}
