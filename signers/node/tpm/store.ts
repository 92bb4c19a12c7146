// A signer's store opened by the provider its header names: a TPM-sealed store needs no secret
// (the TPM holds it); a software-sealed one is opened with the operator's passphrase.
import { ShareStore } from '../../../contract/io/sealed-store.js';
import { TPM_SEALER_KIND } from '../../../contract/io/seal.js';
import { defineRollbackCounter } from './rollback.js';
import { createTpmSealer, openTpmSealer, storeSealKind, type TpmSealOptions } from './sealer.js';

/** A new store in `dir` sealed to the TPM `o.tcti` names, holding only its rollback counter's record. */
export async function initTpmStore(dir: string, o: TpmSealOptions): Promise<ShareStore> {
  const store = await ShareStore.openWith(dir, await createTpmSealer(dir, o));
  try {
    await defineRollbackCounter(o.tcti, store);
  } catch (e) {
    store.close();
    throw e;
  }
  return store;
}

/** True when the store in `dir` is sealed to a TPM: starting it reads no passphrase. */
export async function isTpmSealed(dir: string): Promise<boolean> {
  return (await storeSealKind(dir)) === TPM_SEALER_KIND;
}

/** Opens and verifies the store in `dir`; `secret` is asked for only when it is software-sealed; `tcti` reaches its TPM instead of the header's. */
export async function openSignerStore(dir: string, secret: () => Promise<Uint8Array>, opts: { readOnly?: boolean; tcti?: string | undefined } = {}): Promise<ShareStore> {
  if (await isTpmSealed(dir)) return ShareStore.openWith(dir, await openTpmSealer(dir, opts.tcti), { readOnly: opts.readOnly ?? false });
  const s = await secret();
  try {
    return await ShareStore.open(dir, s, opts);
  } finally {
    s.fill(0);
  }
}
