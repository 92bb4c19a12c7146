// AWS KMS errors: the name clients switch on (`__type`), a message for people, and the HTTP
// status AWS uses. Anything that is not a KmsError becomes KMSInternalException with a
// generic message, so no stack trace or internal detail reaches a caller.
import { ClusterError } from '../cluster-outcome.js';
import type { KeyRecord } from '../keys.js';

export type KmsErrorName =
  | 'AccessDeniedException'
  | 'AlreadyExistsException'
  | 'CustomKeyStoreNotFoundException'
  | 'DependencyTimeoutException'
  | 'DisabledException'
  | 'DryRunOperationException'
  | 'IncompleteSignatureException'
  | 'InvalidAliasNameException'
  | 'InvalidCiphertextException'
  | 'IncorrectKeyException'
  | 'InvalidGrantTokenException'
  | 'InvalidKeyUsageException'
  | 'InvalidMarkerException'
  | 'InvalidSignatureException'
  | 'KMSInternalException'
  | 'KMSInvalidSignatureException'
  | 'KMSInvalidStateException'
  | 'MalformedPolicyDocumentException'
  | 'MissingAuthenticationTokenException'
  | 'NotFoundException'
  | 'SerializationException'
  | 'TagException'
  | 'UnknownOperationException'
  | 'UnrecognizedClientException'
  | 'UnsupportedOperationException'
  | 'ValidationException';

/** HTTP status per error; every other client error is 400, as AWS KMS answers. */
const STATUS: Partial<Record<KmsErrorName, number>> = {
  KMSInternalException: 500,
  DependencyTimeoutException: 503,
  DryRunOperationException: 412,
};

export class KmsError extends Error {
  override readonly name = 'KmsError';
  readonly status: number;
  constructor(
    readonly type: KmsErrorName,
    message: string,
    status?: number,
  ) {
    super(message);
    this.status = status ?? STATUS[type] ?? 400;
  }

  /** The JSON 1.1 error body. */
  body(): { __type: string; message: string } {
    return { __type: this.type, message: this.message };
  }
}

/** `arn is disabled.` / `arn is pending deletion.`: AWS's wording for a key in the wrong state. */
export function keyStateError(key: KeyRecord, arn: string): KmsError {
  return key.state === 'Disabled'
    ? new KmsError('DisabledException', `${arn} is disabled.`)
    : new KmsError('KMSInvalidStateException', `${arn} is pending deletion.`);
}

/**
 * ClusterError → AWS error. A missing quorum becomes DependencyTimeoutException (503): AWS
 * documents it as "the system timed out… you can retry", and the SDKs retry 5xx answers with
 * backoff, which is what a briefly unreachable signer needs. Signers refuse today only on
 * inconsistencies (no share, wrong threshold, unauthenticated gateway), which are internal
 * faults; policy refusals will be AccessDeniedException once signers report them as such.
 */
export function fromClusterError(e: ClusterError, key: KeyRecord | undefined, arn: string): KmsError {
  switch (e.code) {
    case 'not-found':
      return new KmsError('NotFoundException', `Key '${arn}' does not exist`);
    case 'invalid-state':
      return key ? keyStateError(key, arn) : new KmsError('KMSInvalidStateException', `${arn} is not usable: ${e.message}`);
    case 'invalid-usage':
      return new KmsError('InvalidKeyUsageException', e.message);
    case 'unsupported':
      return new KmsError('UnsupportedOperationException', e.message);
    case 'quorum-unavailable':
      return new KmsError('DependencyTimeoutException', `Not enough signers answered in time; retry later (${e.message})`);
    case 'signer-refused':
      return new KmsError('KMSInternalException', `A signer refused the request: ${e.message}`);
    case 'internal':
      return new KmsError('KMSInternalException', e.message);
  }
}

export function asKmsError(e: unknown, key?: KeyRecord, arn = ''): KmsError {
  if (e instanceof KmsError) return e;
  if (e instanceof ClusterError) return fromClusterError(e, key, arn || (key?.keyId ?? ''));
  return new KmsError('KMSInternalException', 'An internal error occurred; see the gateway log');
}
