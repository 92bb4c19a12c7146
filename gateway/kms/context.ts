// What an operation handler gets: the gateway, the facade's state, the authenticated principal,
// and key lookup that always authorizes (so no handler can reach a key without the seam).
import type { z } from 'zod';
import type { Trace } from '../cluster.js';
import type { KeyRecord } from '../keys.js';
import { digestHex } from '../../signers/node/released.js';
import type { Principal } from '../principals.js';
import type { GatewayDeps } from '../server.js';
import { authorize } from './authorize.js';
import { KmsError, keyStateError } from './errors.js';
import type { Arns } from './ids.js';
import type { KmsState } from './state.js';

export interface Operation<S extends z.ZodObject = z.ZodObject> {
  input: S;
  /** The response object (serialised as JSON), or undefined for AWS's empty 200 answer. */
  run(ctx: OpContext, input: z.output<S>): Promise<object | undefined>;
}

/** Declares a handler with its input schema (keeps `input`'s type flowing into `run`). */
export const operation = <S extends z.ZodObject>(input: S, run: Operation<S>['run']): Operation<S> => ({ input, run });

export class OpContext {
  /** The key the request concerned, for the request log. */
  keyId: string | undefined;
  /** The cluster session behind the request and its signers, for the audit entry. */
  readonly trace: Trace = { signers: [] };
  /** Algorithm and digest of the payload, for the audit entry (never the payload itself). */
  algorithm: string | undefined;
  digest: string | undefined;

  constructor(
    readonly deps: GatewayDeps,
    readonly state: KmsState,
    readonly arns: Arns,
    readonly principal: Principal,
    readonly operation: string,
  ) {}

  /**
   * The key a KeyId parameter names, authorized for this principal and operation.
   * `aliases`: whether the operation accepts alias names/ARNs (AWS allows them only on
   * DescribeKey and the cryptographic operations).
   */
  key(ref: string, opts: { aliases: boolean }): KeyRecord {
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
    authorize(this.principal, this.operation, key);
    this.keyId ??= key.keyId;
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
