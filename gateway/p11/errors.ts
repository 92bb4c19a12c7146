// Every failure of a PKCS#11 request as the CKR_* code and message the module returns: the
// cluster's errors, the KMS facade's refusals (key management runs through it), undecryptable
// ciphertexts, bad certificates and signatures, request bodies that do not decode
// (CKR_ARGUMENTS_BAD; arguments of the wrong shape are refused as that in dispatch.ts); anything
// else is CKR_GENERAL_ERROR with no detail.
import { VerifyError } from '../../contract/keys/specs.js';
import { CKR, P11Error } from '../../contract/pkcs11/ck.js';
import { WireError } from '../../contract/pkcs11/wire.js';
import { DecodeError } from '../../signers/protocols/rsa/padding.js';
import { ClusterError } from '../cluster-outcome.js';
import { KmsError, type KmsErrorName } from '../kms/errors.js';
import { CertificateError } from './x509.js';

/** The cluster's errors as PKCS#11's. */
const FROM_CLUSTER: Readonly<Record<ClusterError['code'], number>> = {
  'not-found': CKR.KEY_HANDLE_INVALID,
  'invalid-state': CKR.KEY_FUNCTION_NOT_PERMITTED,
  'invalid-usage': CKR.KEY_FUNCTION_NOT_PERMITTED,
  unsupported: CKR.MECHANISM_INVALID,
  'signer-refused': CKR.FUNCTION_REJECTED,
  'quorum-unavailable': CKR.DEVICE_ERROR,
  internal: CKR.DEVICE_ERROR,
};

/** Key management run through the KMS facade (labels, deletion): its refusals as PKCS#11's. */
const FROM_KMS: Readonly<Partial<Record<KmsErrorName, number>>> = {
  AccessDeniedException: CKR.FUNCTION_REJECTED,
  AlreadyExistsException: CKR.ATTRIBUTE_VALUE_INVALID,
  ValidationException: CKR.ATTRIBUTE_VALUE_INVALID,
  NotFoundException: CKR.OBJECT_HANDLE_INVALID,
  KMSInvalidStateException: CKR.KEY_FUNCTION_NOT_PERMITTED,
  DisabledException: CKR.KEY_FUNCTION_NOT_PERMITTED,
};

/** A signature request the key or mechanism cannot serve. */
const FROM_VERIFY: Readonly<Partial<Record<VerifyError['code'], number>>> = {
  'bad-digest-length': CKR.DATA_LEN_RANGE,
  'algorithm-not-for-key-spec': CKR.KEY_TYPE_INCONSISTENT,
  'message-type-not-allowed': CKR.MECHANISM_INVALID,
  'unknown-algorithm': CKR.MECHANISM_INVALID,
};

export function asP11Error(e: unknown): P11Error {
  if (e instanceof P11Error) return e;
  if (e instanceof ClusterError) return new P11Error(FROM_CLUSTER[e.code], e.message);
  if (e instanceof KmsError && FROM_KMS[e.type] !== undefined) return new P11Error(FROM_KMS[e.type]!, e.message);
  if (e instanceof DecodeError) return new P11Error(CKR.ENCRYPTED_DATA_INVALID, 'the ciphertext does not decrypt under this key and padding');
  if (e instanceof CertificateError) return new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, e.message);
  if (e instanceof VerifyError && FROM_VERIFY[e.code] !== undefined) return new P11Error(FROM_VERIFY[e.code]!, e.message);
  if (e instanceof WireError) return new P11Error(CKR.ARGUMENTS_BAD, `malformed request: ${e.message}`);
  return new P11Error(CKR.GENERAL_ERROR, 'internal error; see the gateway log');
}
