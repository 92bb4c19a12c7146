// A new signer's sealed store and identity (`mpchsm signer init`, and `up` for each of its signers).
import { mkdir } from 'node:fs/promises';
import { sealNewIdentity, type PublicIdentity } from '../../contract/identity/identity.js';
import { signerPaths } from './config.js';

/**
 * Seals a new store under `secret` in DIR and makes the identity in it; writes the public half to
 * DIR/identity.json (with the party id where one is already known: a signer added by governance).
 */
export async function initSigner(dir: string, name: string, secret: Uint8Array, id?: number): Promise<PublicIdentity & { fingerprint: string }> {
  const P = signerPaths(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return sealNewIdentity(P.store, secret, name, P.identity, id === undefined ? {} : { id });
}
