// The gateway's side of governance: the verified governance document, the principals as the
// policy engine sees them, key policies, and the channel to the signers' own copies.
//
// What the gateway holds: the governance chain (public, verified at start), the secrets of
// administrators and auditors (never of applications), the proposals and approvals it collects
// (proposals.ts), and a numbered log of the changes it forwarded to the signers. What it does
// not decide alone: an application's request is authenticated by a signer (/v1/auth/sigv4);
// every Sign or Decrypt is re-checked by each participating signer from the client's own
// signed request; every approved change reaches the signers with its proposal and approvals,
// which they verify against their own governance. The gateway's decisions here are the first
// line, so that honest requests get AWS's answers; the signers' are the ones that hold.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  defaultKeyPolicy,
  parseKeyPolicy,
  verifyGovernanceChain,
  type AuthorizeInput,
  type GovernanceDocument,
  type KeyPolicy,
} from '../policy/index.js';
import { writeFileAtomic } from '../signers/node/atomic.js';
import type { SignerChange } from '../signers/node/guard.js';
import type { IdentitySecrets } from '../signers/node/identity.js';
import type { GatewayConfig } from './config.js';
import type { KeyRecord } from './keys.js';
import { KmsError, type KmsErrorName } from './kms/errors.js';
import type { KmsState } from './kms/state.js';
import type { Principal, PrincipalRegistry } from './principals.js';
import { ProposalStore } from './proposals.js';
import { SignerClient, SignerRefusedError, SignerUnavailableError } from './signer-client.js';

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

export class GatewayPolicy {
  readonly proposals: ProposalStore;
  private readonly clients: SignerClient[];
  private readonly downUntil = new Map<number, number>();
  private readonly parsed = new Map<string, KeyPolicy>();
  private readonly defaultText: string;
  private changes: ChangeLog;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  private constructor(
    readonly governance: GovernanceDocument,
    private readonly config: GatewayConfig,
    principals: PrincipalRegistry,
    private readonly kmsState: KmsState,
    private readonly changesFile: string,
    identity: IdentitySecrets,
    private readonly log: Logger,
    auditHead: () => { seq: number; hash: string },
  ) {
    this.proposals = new ProposalStore(path.join(path.dirname(changesFile), 'proposals.json'), governance);
    this.clients = config.signers.map((s) => new SignerClient(s, identity, config.signerTimeoutMs, auditHead));
    const named = (role: Principal['role']) => principals.all().filter((p) => p.role === role).map((p) => p.name).sort();
    // Computed exactly as each signer computes it from its own registry (signers/node/guard.ts).
    this.defaultText = JSON.stringify(defaultKeyPolicy(config.account, named('admin'), named('app'), named('auditor')), null, 2);
    // A damaged log must stop the gateway: renumbering from 1 would make every signer take new
    // changes for ones it already processed.
    const saved = readJson(changesFile);
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
    identity: IdentitySecrets;
    log: Logger;
    auditHead: () => { seq: number; hash: string };
  }): GatewayPolicy {
    const file = governanceFile(o.dir);
    const raw = readJson(file);
    if (raw === undefined) throw new Error(`${file} is missing: this gateway has no governance (re-initialise the cluster)`);
    const g = verifyGovernanceChain(governanceFileSchema.parse(raw).chain);
    if (!g.ok) throw new Error(`${file}: ${g.reason}`);
    const p = new GatewayPolicy(g.governance, o.config, o.principals, o.kmsState, path.join(o.dir, 'signer-changes.json'), o.identity, o.log, o.auditHead);
    void p.resync();
    return p;
  }

  close(): void {
    clearInterval(this.timer);
    for (const c of this.clients) c.close();
  }

  // ---- the policy engine's view -------------------------------------------------------------

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
    const ordered = [...this.clients].sort((a, b) => Number((this.downUntil.get(a.id) ?? 0) > now) - Number((this.downUntil.get(b.id) ?? 0) > now));
    for (const c of ordered) {
      try {
        return (await c.call<{ accessKeyId: string }>('/v1/auth/sigv4', { session: requestId, request: evidence })).accessKeyId;
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

  // ---- changes the signers keep their own copy of -------------------------------------------

  /**
   * Forwards an executed change (with its proposal and approvals when under quorum) to every
   * signer, in order. A signer that is down gets it later (resync); one that refuses says why.
   */
  forward(change: Omit<SignerChange, 'seq'>): Promise<ChangeResult[]> {
    return this.serial(async () => {
      const entry = { ...change, seq: this.changes.next } as SignerChange;
      this.changes = { ...this.changes, next: entry.seq + 1, pending: [...this.changes.pending, entry] };
      await this.save();
      const results = await Promise.all(this.clients.map((c) => this.push(c, entry.seq)));
      await this.prune();
      return results;
    });
  }

  /** Pushes changes signers missed (they were down), oldest first. */
  resync(): Promise<unknown> {
    if (this.changes.pending.length === 0) return Promise.resolve();
    return this.serial(async () => {
      await Promise.all(this.clients.map((c) => this.push(c)));
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
        const r = await c.call<{ applied: boolean }>('/v1/policy/apply', change);
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
    const done = Math.min(...this.clients.map((c) => this.changes.acked[c.id] ?? 0));
    this.changes = { ...this.changes, pending: this.changes.pending.filter((c) => c.seq > done) };
    await this.save();
  }

  private save(): Promise<void> {
    return writeFileAtomic(this.changesFile, Buffer.from(JSON.stringify(this.changes) + '\n'), 0o600);
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f, f);
    this.queue = run.catch(() => undefined);
    return run;
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
