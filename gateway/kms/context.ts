// What an operation handler gets: the gateway, the facade's state, the authenticated principal,
// and key lookup that always authorizes (so no handler can reach a key without the seam).
import type { z } from 'zod';
import { isSigningAlgorithm, kmsSigningMessage } from '../../contract/keys/specs.js';
import { ClusterError, type Trace } from '../cluster-outcome.js';
import type { KeyRecord } from '../keys.js';
import { ACCOUNT_ACTIONS, messageDigestFor, type Action, type Approval, type Proposal, type RequestContext } from '../../policy/index.js';
import type { Creation, RequestEvidence } from '../../contract/signer-rpc/authority.js';
import { digestHex } from '../../contract/signer-rpc/released.js';
import { gatewayPolicy } from '../governance.js';
import type { Principal } from '../principals.js';
import type { GatewayDeps } from '../deps.js';
import { authorize, authorizeRole, type Authorized } from './authorize.js';
import { KmsError, asKmsError, keyStateError } from './errors.js';
import type { Arns } from './ids.js';
import type { KmsState } from './state.js';

export interface Operation<S extends z.ZodObject = z.ZodObject> {
  input: S;
  /** The response object (serialised as JSON), or undefined for AWS's empty 200 answer. */
  run(ctx: OpContext, input: z.output<S>): Promise<object | undefined>;
}

/** Declares a handler with its input schema (keeps `input`'s type flowing into `run`). */
export const operation = <S extends z.ZodObject>(input: S, run: Operation<S>['run']): Operation<S> => ({ input, run });

/** What a request brings beside its typed input. */
export interface OpExtras {
  /** The request's JSON parameters, as sent (policy conditions, proposals). */
  parameters: Record<string, unknown>;
  /** The client's request as received: the signers' evidence for Sign and Decrypt, and for an administrator's change. */
  evidence?: unknown;
  /** Set when the request executes an approved proposal; `evidence` is the request that proposed it, if it came over the KMS API. */
  approved?: { proposal: Proposal; approvals: Approval[]; evidence?: unknown };
}

/** CreateKey is authorised after its input is checked, so a bad request is not proposed. */
const DEFERRED = new Set(['CreateKey']);

export class OpContext {
  /** The key the request concerned, for the request log. */
  keyId: string | undefined;
  /** ReEncrypt's source key, for the audit entry (its destination is `keyId`). */
  sourceKeyId: string | undefined;
  /** Administrators whose approvals allowed this request, for the audit entry. */
  readonly approvedBy = new Set<string>();
  /** The proposal this request created or executed, for the audit entry. */
  proposal: string | undefined;
  /** Per-signature approvals that allowed a Sign: forwarded to the signers, consumed after. */
  private signApprovals: Authorized['signApprovals'] = [];
  private consumeNonces: Authorized['consumeNonces'] = [];
  /** The cluster session behind the request and its signers, for the audit entry. */
  readonly trace: Trace = { signers: [] };
  /** Algorithm and digest of the payload, for the audit entry (never the payload itself). */
  algorithm: string | undefined;
  digest: string | undefined;

  constructor(
    readonly deps: Pick<GatewayDeps, 'cluster' | 'audit' | 'log'>,
    readonly state: KmsState,
    readonly arns: Arns,
    readonly principal: Principal,
    readonly operation: string,
    readonly extras: OpExtras,
  ) {}

  /** The operation-level check: the role ceiling, and the whole decision for account operations. */
  authorizeOperation(): void {
    authorizeRole(this.principal, this.operation);
    if (ACCOUNT_ACTIONS.has(`kms:${this.operation}` as Action) && !DEFERRED.has(this.operation)) this.decide();
  }

  /** CreateKey's decision (quorum included), once its input is known to be valid. */
  authorizeCreate(): void {
    this.decide();
  }

  private decide(key?: KeyRecord, action = this.operation): void {
    const a = this.extras.approved;
    const d = authorize(this.principal, action, key, {
      context: requestContext(this.operation, this.extras.parameters),
      // A request the signers can verify is its administrator's approval there, so here too.
      requestApproved: this.signersEvidence() !== undefined,
      ...(a ? { approval: { proposal: a.proposal, approvals: a.approvals, parameters: this.extras.parameters } } : {}),
    });
    for (const name of d.approvedBy) this.approvedBy.add(name);
    if (d.signApprovals.length) [this.signApprovals, this.consumeNonces] = [d.signApprovals, d.consumeNonces];
  }

  /** What each signer checks beside a Sign or Decrypt: the client's request and any approvals. */
  requestEvidence(): RequestEvidence | undefined {
    if (this.extras.evidence === undefined) return undefined;
    return { evidence: this.extras.evidence, ...(this.signApprovals.length ? { signApprovals: this.signApprovals } : {}) };
  }

  /** The administrator's request each signer checks for a change or creation: this one's, or the one that proposed it. */
  signersEvidence(): unknown {
    const a = this.extras.approved;
    return a ? a.evidence : this.extras.evidence;
  }

  /** What each signer checks before making a key: the administrator's request, and the approved proposal. */
  creation(c: Pick<Creation, 'keySpec' | 'keyUsage' | 'policy' | 'description' | 'tags'>): Creation {
    const a = this.extras.approved;
    const evidence = this.signersEvidence();
    return { ...c, origin: 'AWS_KMS', ...(evidence !== undefined ? { evidence } : {}), ...(a ? { proposal: a.proposal, approvals: a.approvals } : {}) };
  }

  /** After the operation succeeded: per-signature approvals are spent. */
  async succeeded(): Promise<void> {
    await gatewayPolicy().proposals.consume(this.consumeNonces);
  }

  /** A cluster failure as the KMS error a client should see; signers' policy refusals are AccessDenied. */
  clusterFailure(e: unknown, key?: KeyRecord): KmsError {
    if (e instanceof ClusterError && e.code === 'signer-refused') {
      const m = /access denied: (.*)$/s.exec(e.message);
      if (m) return new KmsError('AccessDeniedException', `a signer refused: ${m[1]}`);
      if (/ is (disabled|pending deletion) at this signer/.test(e.message)) return new KmsError('KMSInvalidStateException', `a signer refused: ${e.message}`);
    }
    return asKmsError(e, key, key && this.arns.key(key.keyId));
  }

  /**
   * The key a KeyId parameter names, authorized for this principal and operation.
   * `aliases`: whether the operation accepts alias names/ARNs (AWS allows them only on
   * DescribeKey and the cryptographic operations). `action`: the permission asked of this key,
   * when it is not the operation's own (ReEncrypt's ReEncryptFrom and ReEncryptTo).
   */
  key(ref: string, opts: { aliases: boolean; action?: string }): KeyRecord {
    const parsed = this.arns.parseKeyRef(ref);
    let keyId: string;
    if (parsed.kind === 'alias') {
      if (!opts.aliases) throw new KmsError('NotFoundException', `Invalid keyId '${ref}': ${this.operation} takes a key ID or key ARN, not an alias`);
      const alias = this.state.alias(parsed.aliasName);
      if (!alias) throw new KmsError('NotFoundException', `Alias ${this.arns.alias(parsed.aliasName)} is not found.`);
      keyId = alias.keyId;
    } else {
      keyId = parsed.keyId;
    }
    const key = this.deps.cluster.keys.get(keyId);
    if (!key) throw new KmsError('NotFoundException', `Key '${this.arns.key(keyId)}' does not exist`);
    this.keyId ??= key.keyId;
    this.decide(key, opts.action);
    return key;
  }

  noteRequest(algorithm: string, payload: Uint8Array): void {
    this.algorithm = algorithm;
    this.digest = digestHex(payload);
  }

  /** Refuses unless the key is Enabled (cryptographic operations). */
  requireEnabled(key: KeyRecord): void {
    if (key.state !== 'Enabled') throw keyStateError(key, this.arns.key(key.keyId));
  }

  /** Refuses a key pending deletion (management operations that AWS refuses then). */
  requireNotPendingDeletion(key: KeyRecord): void {
    if (key.state === 'PendingDeletion') throw keyStateError(key, this.arns.key(key.keyId));
  }
}

/** The request's values for key policy conditions and per-signature approvals. */
function requestContext(operation: string, p: Record<string, unknown>): RequestContext {
  const ctx: RequestContext = {};
  const alg = p.SigningAlgorithm ?? p.EncryptionAlgorithm;
  if (typeof alg === 'string') ctx.algorithm = alg;
  if (operation === 'Sign' || operation === 'Verify') ctx.messageType = p.MessageType === 'DIGEST' ? 'DIGEST' : 'RAW';
  if (operation === 'ScheduleKeyDeletion') ctx.pendingWindowInDays = typeof p.PendingWindowInDays === 'number' ? p.PendingWindowInDays : 30;
  if (operation === 'Sign' && isSigningAlgorithm(alg) && typeof p.Message === 'string') {
    try {
      const message = kmsSigningMessage(alg, ctx.messageType, new Uint8Array(Buffer.from(p.Message, 'base64')));
      ctx.digest = messageDigestFor(alg, ctx.messageType ?? 'RAW', message);
    } catch {
      // A digest of the wrong length: the handler refuses the request with ValidationException.
    }
  }
  return ctx;
}
