// How a dealt share travels from the one-shot dealer process to its signer: encrypted to the
// signer's identity key inside the dealer, so the gateway that relays it can never read it.
// The dealer signs with a throw-away identity: this proves nothing about who dealt (the
// ceremony's trust rests on where the dealer runs), it only gives the envelope its usual form.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { openEnvelope, sealEnvelope, type Envelope } from '../../contract/identity/envelope.js';
import { identityFromSecrets, parsePublicIdentity, publicIdentitySchema, type IdentitySecrets, type PublicIdentity } from '../../contract/identity/identity.js';
import { rsaKeyShareSchema, type RsaKeyShareJson } from '../protocols/rsa/key.js';

/** The envelope's sender id: above every signer id, so it is never mistaken for one. */
export const DEALER_PARTY = 0xffff;

export const recipientSchema = z.strictObject({ id: z.number().int().min(1).max(255), identity: publicIdentitySchema });

const address = (keyId: string, to: number) => ({ purpose: 'rsa-deal', session: keyId, round: 0, from: DEALER_PARTY, to });

export function dealerIdentity(): IdentitySecrets {
  return identityFromSecrets('dealer', randomBytes(32), randomBytes(32));
}

export function sealDealtShare(keyId: string, share: RsaKeyShareJson, dealer: IdentitySecrets, recipient: PublicIdentity): Envelope {
  const payload = Buffer.from(JSON.stringify(share));
  try {
    return sealEnvelope({ ...address(keyId, share.id), payload }, dealer, recipient);
  } finally {
    payload.fill(0);
  }
}

export function openDealtShare(keyId: string, self: IdentitySecrets, selfId: number, dealer: unknown, envelope: unknown): RsaKeyShareJson {
  const payload = openEnvelope(envelope, self, parsePublicIdentity(dealer), address(keyId, selfId));
  try {
    return rsaKeyShareSchema.parse(JSON.parse(Buffer.from(payload).toString('utf8')));
  } finally {
    payload.fill(0);
  }
}
