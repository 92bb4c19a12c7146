// What X-Amz-Target names (ctx.state.target): TrentService.<operation> of the KMS API, an
// MpcHsm.<name> operation (kms/mpchsm.ts), or MpcHsm.RefreshKeyShares. A KMS operation mpchsm
// does not implement is UnsupportedOperationException; anything else, UnknownOperationException.
import { AWS_KMS_OPERATIONS } from '../aws-operations.js';
import { KmsError } from '../errors.js';
import { isMpcHsmOperation } from '../mpchsm.js';
import { OPERATIONS } from '../ops/index.js';
import type { KmsMiddleware } from './state.js';

const TARGET_PREFIX = 'TrentService.';
const MPCHSM_PREFIX = 'MpcHsm.';

export const target: KmsMiddleware = async (ctx, next) => {
  const s = ctx.state;
  const named = ctx.get('x-amz-target');
  const mpchsm = named.startsWith(MPCHSM_PREFIX) ? named.slice(MPCHSM_PREFIX.length) : '';
  if (isMpcHsmOperation(mpchsm)) {
    s.target = { kind: 'mpchsm', name: mpchsm };
    s.operation = s.via = `MpcHsm.${mpchsm}`;
  } else if (named === `${MPCHSM_PREFIX}RefreshKeyShares`) {
    // A key operation of the cluster's own, recorded like one: its session, signers and new shares.
    s.target = { kind: 'refresh' };
    s.operation = 'RefreshKeyShares';
    s.via = named;
  } else {
    const name = named.startsWith(TARGET_PREFIX) ? named.slice(TARGET_PREFIX.length) : '';
    if (!Object.hasOwn(OPERATIONS, name)) {
      if (AWS_KMS_OPERATIONS.has(name)) throw new KmsError('UnsupportedOperationException', `${name} is an AWS KMS operation that mpchsm does not implement (docs/limitations.md)`);
      throw new KmsError('UnknownOperationException', `Unknown operation '${named.slice(0, 64)}'; X-Amz-Target must be TrentService.<operation>, one of ${Object.keys(OPERATIONS).join(', ')}`);
    }
    s.target = { kind: 'kms', name, op: OPERATIONS[name]! };
    s.operation = name;
  }
  await next();
};
