// TLS credentials made from a party's identity, so the gateway ↔ signer channel is mutually
// authenticated by the very keys the genesis pins: a self-signed X.509 certificate whose key IS
// the identity's Ed25519 key. Nobody trusts the certificate as a CA would: each side reads the
// peer certificate's raw Ed25519 key (peerSignKey) and compares it with the pinned
// signPublicKey. The certificate is made at process start from the sealed identity and never
// stored; its validity dates and names mean nothing beyond satisfying the X.509 format.
import { createPrivateKey, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { fromHex, toHex } from '../bytes.js';
import type { IdentitySecrets } from './identity.js';

export interface TlsCredentials {
  /** PKCS#8 PEM of the identity's Ed25519 key. */
  key: string;
  /** PEM of the self-signed certificate over the same key. */
  cert: string;
}

/** TLS 1.3 only between gateway and signers: both ends are ours, and 1.3 has Ed25519 signatures in every handshake. */
export const CHANNEL_TLS = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

/** The identity's Ed25519 key as a node key object (JWK import from the raw seed and public key). */
function signKeyObject(id: IdentitySecrets): KeyObject {
  const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64u(id.signSecretKey), x: b64u(fromHex(id.public.signPublicKey)) }, format: 'jwk' });
}

type SelfSigned = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>;

/** Made once per identity in a process (every signer client of the gateway shares them). */
const made = new WeakMap<IdentitySecrets, Promise<TlsCredentials>>();

/** The certificate and key this process presents on gateway ↔ signer channels. */
export function identityTlsCredentials(id: IdentitySecrets): Promise<TlsCredentials> {
  let c = made.get(id);
  if (!c) made.set(id, (c = makeCredentials(id)));
  return c;
}

async function makeCredentials(id: IdentitySecrets): Promise<TlsCredentials> {
  const keyObject = signKeyObject(id);
  const alg = { name: 'Ed25519' };
  const privateKey = await webcrypto.subtle.importKey('jwk', keyObject.export({ format: 'jwk' }), alg, false, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('raw', fromHex(id.public.signPublicKey), alg, true, ['verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      // Positive, 16 random bytes: a restarted process never repeats a serial.
      serialNumber: '01' + randomBytes(15).toString('hex'),
      name: `CN=mpchsm ${id.public.name}`,
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + 10 * 365 * 24 * 3600_000),
      signingAlgorithm: alg,
      keys: { privateKey, publicKey } as unknown as SelfSigned[0]['keys'],
    },
    webcrypto as unknown as SelfSigned[1],
  );
  return { key: keyObject.export({ format: 'pem', type: 'pkcs8' }).toString(), cert: cert.toString('pem') };
}

/**
 * The raw Ed25519 public key (hex) a peer certificate carries, or undefined when it carries none
 * (no certificate, or a key of another algorithm).
 */
export function peerSignKey(cert: PeerCertificate | Buffer | undefined | null): string | undefined {
  const der = Buffer.isBuffer(cert) ? cert : cert?.raw;
  if (!der || der.length === 0) return undefined;
  let key: KeyObject;
  try {
    key = new X509Certificate(der).publicKey;
  } catch {
    return undefined;
  }
  if (key.asymmetricKeyType !== 'ed25519') return undefined;
  const x = key.export({ format: 'jwk' }).x;
  return x ? toHex(Buffer.from(x, 'base64url')) : undefined;
}
