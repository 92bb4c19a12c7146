// A software authenticator for tests: makes WebAuthn assertions as a security key would
// (authenticatorData, clientDataJSON, ES256 or EdDSA signature), with a counter it keeps.
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { WebAuthnAssertion, WebAuthnCredential } from '../../policy/index.js';

export class SoftAuthenticator {
  readonly credential: WebAuthnCredential;
  private readonly secret: KeyObject;
  counter = 0;

  /** A new credential; or `existing`, an enrolled one with its private key (a browser's virtual authenticator's, read over CDP). */
  constructor(alg: -7 | -8, rpId = 'localhost', origin = 'http://localhost:4700', existing?: { credential: WebAuthnCredential; secret: KeyObject }) {
    if (existing) {
      [this.credential, this.secret] = [existing.credential, existing.secret];
      return;
    }
    const pair = alg === -7 ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
    this.secret = pair.privateKey;
    const id = createHash('sha256').update(pair.publicKey.export({ format: 'der', type: 'spki' })).digest().subarray(0, 16);
    this.credential = { id: id.toString('base64url'), publicKey: pair.publicKey.export({ format: 'der', type: 'spki' }).toString('base64url'), alg, rpId, origin };
  }

  /** An assertion over `challenge`; `o` bends what a real authenticator would not. */
  assert(challenge: Uint8Array, o: { flags?: number; rpId?: string; origin?: string; type?: string; counter?: number } = {}): WebAuthnAssertion {
    this.counter = o.counter ?? this.counter + 1;
    const authData = Buffer.alloc(37);
    createHash('sha256').update(o.rpId ?? this.credential.rpId).digest().copy(authData, 0);
    authData[32] = o.flags ?? 0x05;
    authData.writeUInt32BE(this.counter, 33);
    const clientData = Buffer.from(JSON.stringify({ type: o.type ?? 'webauthn.get', challenge: Buffer.from(challenge).toString('base64url'), origin: o.origin ?? this.credential.origin, crossOrigin: false }));
    const signed = Buffer.concat([authData, createHash('sha256').update(clientData).digest()]);
    const signature = sign(this.credential.alg === -7 ? 'sha256' : null, signed, this.secret);
    return { credentialId: this.credential.id, authenticatorData: authData.toString('base64url'), clientDataJSON: clientData.toString('base64url'), signature: signature.toString('base64url') };
  }
}
