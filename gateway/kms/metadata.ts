// How a key record looks to KMS clients: KeyMetadata (DescribeKey, CreateKey) and the
// algorithm lists (GetPublicKey too). Dates are epoch seconds, as the JSON protocol sends them.
import type { KeyRecord } from '../keys.js';
import { SIGNING_ALGORITHMS_BY_SPEC, SYMMETRIC_KEY_SPEC, isKeySpec, type KeySpec } from '../../contract/keys/specs.js';
import type { Arns } from './ids.js';

export const ENCRYPTION_ALGORITHMS = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] as const;
export type EncryptionAlgorithm = (typeof ENCRYPTION_ALGORITHMS)[number];

export const epochSeconds = (ms: number): number => ms / 1000;

/** The key spec of a stored record (written by the cluster, so always a known one). */
export function specOf(key: KeyRecord): KeySpec {
  if (!isKeySpec(key.keySpec)) throw new Error(`key ${key.keyId} has unknown key spec ${key.keySpec}`);
  return key.keySpec;
}

export function algorithms(key: KeyRecord): { SigningAlgorithms: string[] } | { EncryptionAlgorithms: string[] } {
  if (key.keySpec === SYMMETRIC_KEY_SPEC) return { EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'] };
  return key.keyUsage === 'SIGN_VERIFY'
    ? { SigningAlgorithms: [...SIGNING_ALGORITHMS_BY_SPEC[specOf(key)]] }
    : { EncryptionAlgorithms: [...ENCRYPTION_ALGORITHMS] };
}

export function keyMetadata(key: KeyRecord, arns: Arns): Record<string, unknown> {
  return {
    AWSAccountId: arns.account,
    KeyId: key.keyId,
    Arn: arns.key(key.keyId),
    CreationDate: epochSeconds(key.creationDate),
    Enabled: key.state === 'Enabled',
    Description: key.description,
    KeyUsage: key.keyUsage,
    KeyState: key.state,
    ...(key.state === 'PendingDeletion' && key.deletionDate !== undefined ? { DeletionDate: epochSeconds(key.deletionDate) } : {}),
    Origin: key.origin,
    ...(key.origin === 'EXTERNAL' ? { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' } : {}),
    KeyManager: 'CUSTOMER',
    CustomerMasterKeySpec: key.keySpec,
    KeySpec: key.keySpec,
    ...algorithms(key),
    MultiRegion: false,
  };
}
