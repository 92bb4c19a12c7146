// Issue #20: KMS Sign with ED25519_PH_SHA_512 and MessageType DIGEST as the AWS KMS API
// reference says it (Sign, MessageType): KMS "still performs the SHA-512 prehash … the input is
// hashed twice: once by you and once by KMS". The signature is Ed25519ph (RFC 8032 §5.1) with
// M = the 64-byte Message, i.e. PH(M) = SHA-512(Message) — checked here with @noble/curves'
// ed25519ph, which prehashes its message itself. KMS Verify agrees; and a lying gateway cannot
// have the signers sign the Message itself as PH(M) (bytes the client did not ask for); the
// gateway's and signers' audit entries agree on what was signed.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ed25519ph } from '@noble/curves/ed25519.js';
import { GetPublicKeyCommand, SignCommand, VerifyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import type { Message } from '../../signers/protocols/common.js';
import { publicPackageSchema } from '../../signers/protocols/dkg.js';
import { frostAggregate, frostSigningPackage } from '../../signers/protocols/frost.js';
import { auditVerifyAtRest, startCluster, type TestCluster } from '../helpers/cluster.js';
import { appRequest, createKey, gatewayIdentity, refusal, signerClients, signUse } from '../policy-cluster/helpers.js';
import { awsError, kmsClient } from './kms-client.js';

let tc: TestCluster;
let app: KMSClient;
let keyId: string;
let publicKey: Uint8Array;
let signers: SignerClient[];

const MESSAGE = Buffer.from('a release manifest, hashed by the client');
const DIGEST = createHash('sha512').update(MESSAGE).digest();
const sha512 = (b: Uint8Array) => createHash('sha512').update(b).digest();

beforeAll(async () => {
  tc = await startCluster();
  app = kmsClient(tc, 'app');
  keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  const spki = (await app.send(new GetPublicKeyCommand({ KeyId: keyId }))).PublicKey!;
  publicKey = spki.subarray(-32);
}, 120_000);

afterAll(async () => {
  app?.destroy();
  await tc?.destroy();
});

describe('Sign ED25519_PH_SHA_512 with MessageType DIGEST', () => {
  it('is Ed25519ph over the Message as M (hashed again, as AWS KMS does), as an independent verifier checks', async () => {
    const out = await app.send(new SignCommand({ KeyId: keyId, Message: DIGEST, MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' }));
    expect(out.SigningAlgorithm).toBe('ED25519_PH_SHA_512');
    // noble computes PH(M) = SHA-512(M) itself: M is the 64-byte DIGEST the client sent.
    expect(ed25519ph.verify(out.Signature!, DIGEST, publicKey, { zip215: false })).toBe(true);
    // Not the digest taken as PH(M) of the original message (that would be hashing once).
    expect(ed25519ph.verify(out.Signature!, MESSAGE, publicKey)).toBe(false);
    // KMS Verify reads it the same way.
    const v = await app.send(new VerifyCommand({ KeyId: keyId, Message: DIGEST, MessageType: 'DIGEST', Signature: out.Signature!, SigningAlgorithm: 'ED25519_PH_SHA_512' }));
    expect(v.SignatureValid).toBe(true);
  });

  it('Verify accepts an Ed25519ph signature made elsewhere over the same 64 bytes, and refuses one over the message hashed once', async () => {
    const wrong = await app.send(new SignCommand({ KeyId: keyId, Message: sha512(Buffer.from('other')), MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' }));
    const e = await awsError(app.send(new VerifyCommand({ KeyId: keyId, Message: DIGEST, MessageType: 'DIGEST', Signature: wrong.Signature!, SigningAlgorithm: 'ED25519_PH_SHA_512' })));
    expect(e.name).toBe('KMSInvalidSignatureException');
  });

  it('a digest of the wrong length and MessageType RAW are refused, as AWS refuses them', async () => {
    for (const [Message, MessageType] of [[DIGEST.subarray(0, 32), 'DIGEST'], [MESSAGE, 'RAW']] as const) {
      const e = await awsError(app.send(new SignCommand({ KeyId: keyId, Message, MessageType, SigningAlgorithm: 'ED25519_PH_SHA_512' })));
      expect(e.name, MessageType).toBe('ValidationException');
    }
  });

  it("the gateway's and the signers' audit entries name the same digest (audit verify cross-checks clean)", async () => {
    const out = await auditVerifyAtRest(tc);
    expect(out.out).toContain('cross-check  ok');
    expect(out.code).toBe(0);
  }, 90_000);

  // Last: it releases partials no gateway entry names.
  it('a lying gateway cannot have the signers take the Message itself as PH(M)', async () => {
    signers = signerClients(tc, await gatewayIdentity(tc));
    const body = { KeyId: keyId, Message: DIGEST.toString('base64'), MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' };
    const evidence = await appRequest(tc, 'TrentService.Sign', body);
    const ph = { algorithm: 'ED25519_PH_SHA_512', messageType: 'DIGEST' };
    const session = randomUUID();
    const ids = signers.slice(0, 2).map((c) => c.id);
    // The use names the client's 64 bytes as PH(M): they are not what the client's request signs.
    const asIs = signUse(DIGEST, evidence, ph);
    const r = await refusal(signers[0]!.call(signerRoutes.frost.commit, { session, keyId, signers: ids, use: asIs }));
    expect(r.message).toMatch(/message|payload/i);

    // With the honest use, a package over the Message as PH(M) is refused before any share is used.
    const honest = signUse(sha512(DIGEST), evidence, ph);
    const pub = publicPackageSchema.parse(JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${keyId}.json`), 'utf8')).frost);
    const commits: Message[] = [];
    for (const c of signers.slice(0, 2)) commits.push({ session, round: 1, from: c.id, to: 'all', payload: (await c.call(signerRoutes.frost.commit, { session, keyId, signers: ids, use: honest })).commitment });
    const lying = frostSigningPackage(pub, { session, suite: 'ed25519ph', message: DIGEST }, ids, commits);
    for (const c of signers.slice(0, 2)) expect((await refusal(c.call(signerRoutes.frost.sign, { session, keyId, package: lying }))).message).toMatch(/not for the message/);

    // The package the client asked for (PH(M) = SHA-512 of its Message) signs.
    const session2 = randomUUID();
    const commits2: Message[] = [];
    for (const c of signers.slice(0, 2)) commits2.push({ session: session2, round: 1, from: c.id, to: 'all', payload: (await c.call(signerRoutes.frost.commit, { session: session2, keyId, signers: ids, use: honest })).commitment });
    const pkg = frostSigningPackage(pub, { session: session2, suite: 'ed25519ph', message: sha512(DIGEST) }, ids, commits2);
    const shares: Message[] = [];
    for (const c of signers.slice(0, 2)) shares.push({ session: session2, round: 2, from: c.id, to: 'all', payload: (await c.call(signerRoutes.frost.sign, { session: session2, keyId, package: pkg })).share });
    expect(ed25519ph.verify(frostAggregate(pub, pkg, shares), DIGEST, publicKey, { zip215: false })).toBe(true);
  });
});
