// A new signer's sealed store and identity (`mpchsm signer init`, and `up` for each of its signers).
import { mkdir } from 'node:fs/promises';
import { createIdentity, exportPublicIdentity, sealNewIdentity, type PublicIdentity } from '../../contract/identity/identity.js';
import { writeFileAtomic } from '../../contract/io/atomic.js';
import type { ScryptParams } from '../../contract/io/seal.js';
import { signerPaths } from './config.js';
import type { TpmSealOptions } from './tpm/sealer.js';
import { initTpmStore } from './tpm/store.js';
import { attestationKeyPath } from './tpm/activation.js';
import { makeTpmQuote, type TpmQuote } from './tpm/attestation.js';

/**
 * Seals a new store in DIR — under the operator's `seal` secret, or to the TPM it names — and makes
 * the identity in it; writes the public half to DIR/identity.json (with the party id where one is
 * already known: a signer added by governance). To a TPM, it also answers the TPM's quote over
 * the new identity, for the other parties to check (tpm/attestation.ts), its attestation key kept
 * beside the store. `scrypt`: the KDF cost of a software seal, if not a passphrase's (seal.ts).
 */
export async function initSigner(dir: string, name: string, seal: Uint8Array | TpmSealOptions, id?: number, scrypt?: ScryptParams): Promise<{ identity: PublicIdentity & { fingerprint: string }; attestation?: TpmQuote }> {
  const P = signerPaths(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const extra = id === undefined ? {} : { id };
  if (seal instanceof Uint8Array) return { identity: await sealNewIdentity(P.store, seal, name, P.identity, extra, scrypt) };
  const store = await initTpmStore(P.store, seal);
  let identity: PublicIdentity & { fingerprint: string };
  try {
    identity = exportPublicIdentity(await createIdentity(store, name));
  } finally {
    store.close();
  }
  await writeFileAtomic(P.identity, Buffer.from(JSON.stringify({ ...identity, ...extra }, null, 2) + '\n'), 0o644);
  return { identity, attestation: await makeTpmQuote(seal.tcti, identity.fingerprint, attestationKeyPath(dir)) };
}
