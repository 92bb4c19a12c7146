// Every KMS operation mpchsm implements, by its X-Amz-Target name (TrentService.<name>).
import type { Operation } from '../context.js';
import { CreateAlias, DeleteAlias, ListAliases, UpdateAlias } from './aliases.js';
import { Decrypt, Encrypt, GenerateRandom, GetPublicKey, Sign, Verify } from './crypto.js';
import { CancelKeyDeletion, CreateKey, DescribeKey, DisableKey, EnableKey, ListKeys, ScheduleKeyDeletion, UpdateKeyDescription } from './keys.js';
import { GetKeyPolicy, ListKeyPolicies, PutKeyPolicy } from './policies.js';
import { ListResourceTags, TagResource, UntagResource } from './tags.js';
import { DisableKeyRotation, EnableKeyRotation, GetKeyRotationStatus, ListKeyRotations, RotateKeyOnDemand } from './rotation.js';
import { GenerateDataKey, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext, GenerateDataKeyWithoutPlaintext, ReEncrypt } from './symmetric.js';

export const OPERATIONS: Readonly<Record<string, Operation>> = {
  CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion, UpdateKeyDescription,
  GetPublicKey, Sign, Verify, Encrypt, Decrypt, GenerateRandom,
  GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext, ReEncrypt,
  EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations,
  CreateAlias, UpdateAlias, DeleteAlias, ListAliases,
  TagResource, UntagResource, ListResourceTags,
  GetKeyPolicy, PutKeyPolicy, ListKeyPolicies,
} as Record<string, Operation>;
