// The AWS KMS API (JSON 1.1) at POST /, as a koa middleware chain, one concern a file (kms/mw/),
// per-request facts on ctx.state (kms/mw/state.ts). Every principal is authenticated by a
// signer; an operation under quorum becomes a proposal (gateway/proposals.ts); changes the
// signers keep a copy of are forwarded to them once executed (kms/execute.ts).
import type { GatewayDeps } from '../deps.js';
import type { UnauthenticatedTally } from '../unauthenticated.js';
import { Arns } from './ids.js';
import { audit } from './mw/audit.js';
import { awsErrors } from './mw/aws-errors.js';
import { sigv4 } from './mw/sigv4.js';
import { body } from './mw/body.js';
import { contentType } from './mw/content-type.js';
import { execute } from './mw/execute.js';
import { claim, release } from './mw/repeats.js';
import { requestId } from './mw/request-id.js';
import type { KmsMiddleware } from './mw/state.js';
import { target } from './mw/target.js';
import { RepeatAnswers } from './repeats.js';

/** The chain, outermost first; `unauthenticated` counts requests no principal stands behind (no fsync'd entry each). */
export function kmsMiddleware(deps: GatewayDeps, unauthenticated: UnauthenticatedTally): KmsMiddleware[] {
  return [
    requestId(deps.log), // an id, and after: the x-amzn-RequestId header and the log line
    release, // after: the recorded answer to the request's repeats
    audit(deps, unauthenticated), // after: the transcript entry, or the answer withheld
    awsErrors(deps.log), // any failure below in AWS's shape
    body, // POST /, uncompressed, bounded
    sigv4(deps), // the principal, authenticated by a signer
    claim(new RepeatAnswers()), // a repeat is answered as its first request was
    target, // X-Amz-Target: TrentService.<operation> or MpcHsm.<name>
    contentType, // application/x-amz-json-1.1
    execute(deps, new Arns(deps.config.region, deps.config.account)),
  ];
}
