// How a dealt share travels from the one-shot dealer process to its signer: encrypted to the
// signer's identity key inside the dealer, so the gateway that relays it can never read it.
// The dealer signs with a throw-away identity: this proves nothing about who dealt (the
// ceremony's trust rests on where the dealer runs), it only gives the envelope its usual form.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { openEnvelope, sealEnvelope, type Envelope } from '../../contract/identity/envelope.js';
import { identityFromSecrets, parsePublicIdentity, publicIdentitySchema, type IdentitySecrets, type PublicIdentity } from '../../contract/identity/identity.js';
import { decodeSecretful, encodeSecretful, isSecretful } from '../protocols/common.js';

/** The envelope's sender id: above every signer id, so it is never mistaken for one. */
export const DEALER_PARTY = 0xffff;

export const recipientSchema = z.strictObject({ id: z.number().int().min(1).max(255), identity: publicIdentitySchema });

const address = (keyId: string, to: number) => ({ purpose: 'rsa-deal', session: keyId, round: 0, from: DEALER_PARTY, to });

export function dealerIdentity(): IdentitySecrets {
  return identityFromSecrets('dealer', randomBytes(32), randomBytes(32));
}

/** The share travels as a key record holds it (encodeSecretful): s_i as raw bytes, never a string in the signer. */
export function sealDealtShare(keyId: string, share: { id: number; s: Uint8Array }, dealer: IdentitySecrets, recipient: PublicIdentity): Envelope {
  const payload = encodeSecretful(share);
  try {
    return sealEnvelope({ ...address(keyId, share.id), payload }, dealer, recipient);
  } finally {
    payload.fill(0);
  }
}

/** The share as sealed (parseKeyShare checks it); one from a dealer of an older version is JSON with s in hex. */
export function openDealtShare(keyId: string, self: IdentitySecrets, selfId: number, dealer: unknown, envelope: unknown): unknown {
  const payload = openEnvelope(envelope, self, parsePublicIdentity(dealer), address(keyId, selfId));
  try {
    return isSecretful(payload) ? decodeSecretful(payload) : JSON.parse(Buffer.from(payload).toString('utf8'));
  } finally {
    payload.fill(0);
  }
}
