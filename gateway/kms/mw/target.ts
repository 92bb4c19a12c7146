// What X-Amz-Target names (ctx.state.target): TrentService.<operation> of the KMS API, an
// MpcHsm.<name> operation (kms/mpchsm.ts), or MpcHsm.RefreshKeyShares. A KMS operation mpchsm
// does not implement is UnsupportedOperationException; anything else, UnknownOperationException.
import { AWS_KMS_OPERATIONS } from '../aws-operations.js';
import { KmsError } from '../errors.js';
import { isMpcHsmOperation } from '../mpchsm.js';
import { OPERATIONS } from '../ops/index.js';
import type { KmsMiddleware, Target } from './state.js';

const TARGET_PREFIX = 'TrentService.';
const MPCHSM_PREFIX = 'MpcHsm.';

/**
 * What an X-Amz-Target value names, if mpchsm serves it, and the operation it is recorded as
 * (one of a fixed set: gateway/metrics.ts labels requests with it).
 */
export function parseTarget(named: string): { target: Target; operation: string } | undefined {
  const mpchsm = named.startsWith(MPCHSM_PREFIX) ? named.slice(MPCHSM_PREFIX.length) : '';
  if (isMpcHsmOperation(mpchsm)) return { target: { kind: 'mpchsm', name: mpchsm }, operation: named };
  // A key operation of the cluster's own, recorded like one: its session, signers and new shares.
  if (named === `${MPCHSM_PREFIX}RefreshKeyShares`) return { target: { kind: 'refresh' }, operation: 'RefreshKeyShares' };
  const name = named.startsWith(TARGET_PREFIX) ? named.slice(TARGET_PREFIX.length) : '';
  return Object.hasOwn(OPERATIONS, name) ? { target: { kind: 'kms', name, op: OPERATIONS[name]! }, operation: name } : undefined;
}

export const target: KmsMiddleware = async (ctx, next) => {
  const s = ctx.state;
  const named = ctx.get('x-amz-target');
  const parsed = parseTarget(named);
  if (!parsed) {
    const name = named.startsWith(TARGET_PREFIX) ? named.slice(TARGET_PREFIX.length) : '';
    if (AWS_KMS_OPERATIONS.has(name)) throw new KmsError('UnsupportedOperationException', `${name} is an AWS KMS operation that mpchsm does not implement (docs/limitations.md)`);
    throw new KmsError('UnknownOperationException', `Unknown operation '${named.slice(0, 64)}'; X-Amz-Target must be TrentService.<operation>, one of ${Object.keys(OPERATIONS).join(', ')}`);
  }
  s.target = parsed.target;
  s.operation = parsed.operation;
  if (parsed.target.kind !== 'kms') s.via = named;
  await next();
};
