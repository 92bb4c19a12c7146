// contract/identity/tls.ts: the certificate a party shows carries exactly its identity's Ed25519
// key and is signed by it; peerSignKey reads that key back and nothing from a certificate of
// another algorithm or from no certificate.
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { identityFromSecrets } from '../../contract/identity/identity.js';
import { identityTlsCredentials, peerSignKey } from '../../contract/identity/tls.js';

type SelfSigned = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>;
const identity = () => identityFromSecrets('party', randomBytes(32), randomBytes(32));

describe('identity TLS credentials', () => {
  it("are a self-signed certificate over the identity's own Ed25519 key", async () => {
    const id = identity();
    const { cert, key } = await identityTlsCredentials(id);
    const c = new X509Certificate(cert);
    expect(peerSignKey(c.raw)).toBe(id.public.signPublicKey);
    expect(c.verify(c.publicKey)).toBe(true);
    expect(createPublicKey(createPrivateKey(key)).equals(c.publicKey)).toBe(true);
    // Made once per identity in a process; another identity gets another certificate.
    expect(await identityTlsCredentials(id)).toEqual({ cert, key });
    expect(peerSignKey(new X509Certificate((await identityTlsCredentials(identity())).cert).raw)).not.toBe(id.public.signPublicKey);
  });

  it('peerSignKey reads no key from no certificate or a certificate of another algorithm', async () => {
    expect(peerSignKey(undefined)).toBeUndefined();
    expect(peerSignKey(Buffer.alloc(0))).toBeUndefined();
    expect(peerSignKey(Buffer.from('not a certificate'))).toBeUndefined();
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
    const ec = await x509.X509CertificateGenerator.createSelfSigned(
      { serialNumber: '01', name: 'CN=ec', notBefore: new Date(), notAfter: new Date(Date.now() + 3600_000), signingAlgorithm: alg, keys: keys as unknown as SelfSigned[0]['keys'] },
      webcrypto as unknown as SelfSigned[1],
    );
    expect(peerSignKey(Buffer.from(ec.rawData))).toBeUndefined();
  });
});
