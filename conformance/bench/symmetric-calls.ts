// The KMS calls of the benchmark's symmetric phase, made in a client process (worker.ts): what
// envelope encryption sends per message — GenerateDataKey (AES_256) for a new data key, Decrypt
// of a stored one — each under an encryption context. The first data key is checked before the
// clock starts (its blob decrypts to it), and every Decrypt's answer is checked as it comes.
import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import type { SymmetricOp } from './types.js';

const CONTEXT = { purpose: 'mpchsm bench', tenant: 'bench' };

/** The call `operation` as client `n` makes it with `keyRef`, after one checked round trip. */
export async function symmetricCall(app: (n: number) => KMSClient, operation: SymmetricOp, keyRef: string): Promise<(n: number) => Promise<void>> {
  const generate = async (n: number) => {
    const r = await app(n).send(new GenerateDataKeyCommand({ KeyId: keyRef, KeySpec: 'AES_256', EncryptionContext: CONTEXT }));
    if (r.Plaintext?.length !== 32 || !r.CiphertextBlob?.length) throw new Error('GenerateDataKey returned no 32-byte data key and blob');
    return { key: Buffer.from(r.Plaintext), blob: r.CiphertextBlob };
  };
  // As the AWS Encryption SDK does: the key named, the context of the encryption.
  const decrypt = async (n: number, blob: Uint8Array, key: Buffer) => {
    const r = await app(n).send(new DecryptCommand({ KeyId: keyRef, CiphertextBlob: blob, EncryptionContext: CONTEXT }));
    if (!r.Plaintext || !key.equals(r.Plaintext)) throw new Error('Decrypt did not return the data key the blob was made for');
  };
  const first = await generate(0);
  await decrypt(0, first.blob, first.key);
  if (operation === 'GenerateDataKey') return async (n) => void (await generate(n));
  return (n) => decrypt(n, first.blob, first.key);
}
