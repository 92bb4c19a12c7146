// The compromised-gateway suite (issue #16): the test owns the gateway's directory — its
// identity key, read from its sealed store — and speaks to real signer processes with the
// project's own client code, as an attacker on the gateway host would. It holds no principal's
// secret. Each attempt is refused by every signer and recorded there as what it was: retargeting
// a request through an alias, Decrypt on a signing key (a raw RSA operation is a signature),
// Sign on an encryption key, forged RSA padding, a future-dated request. A repeat of a genuine
// request is served as the same request, spends nothing twice, and stays a repeat after restart.
import { createPublicKey, randomBytes, randomUUID, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CreateAliasCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignerClient } from '../../gateway/signer-client.js';
import { sigv4Evidence } from '../../policy/index.js';
import { toHex } from '../../contract/bytes.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { rsaDecryptRequest, rsaSignRequest } from '../../signers/protocols/rsa/combine.js';
import { parsePublicParams } from '../../signers/protocols/rsa/key.js';
import { emsaPkcs1v15Encode } from '../../signers/protocols/rsa/padding.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { TestCluster } from '../helpers/cluster.js';
import { signRequest } from '../kms/sign-request.js';
import { appRequest, auditEntries, createKey, frostSession, gatewayIdentity, kms, nextSeq, publicKeyOf, refusal, signerClients, signingPolicy, signUse, startWithSigners, stopWithSigners } from './helpers.js';

let tc: TestCluster;
let signers: SignerClient[];
const keys = { ed: '', edOther: '', rsaSign: '', rsaDecrypt: '', limited: '' };

const text = (s: string) => new TextEncoder().encode(s);
const b64 = (b: Uint8Array | string) => Buffer.from(b).toString('base64');
const edSign = (keyId: string, message: string) => ({ KeyId: keyId, Message: b64(message), SigningAlgorithm: 'ED25519_SHA_512' });
const commit = (c: SignerClient, keyId: string, use: unknown) => c.call(signerRoutes.frost.commit, { session: randomUUID(), keyId, signers: signers.map((s) => s.id), use });
const rsaParams = (keyId: string) => parsePublicParams(JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${keyId}.json`), 'utf8')).rsa);
const rsaPartial = (c: SignerClient, keyId: string, request: { session: string; [k: string]: unknown }, use: unknown) => c.call(signerRoutes.rsa.partial, { keyId, session: request.session, request, use });

/** A key policy letting `app` sign once a minute. */
const limitedPolicy = () => signingPolicy(JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'config.json'), 'utf8')).account, { rateLimit: { perMinute: 1, burst: 1 } });

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  keys.ed = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  keys.edOther = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  keys.rsaSign = await createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
  keys.rsaDecrypt = await createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' });
  keys.limited = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY', Policy: limitedPolicy() });
}, 240_000);

afterAll(() => stopWithSigners(tc, signers));

describe('what the client named is what is used', () => {
  it('a request naming an alias is used only for the key that alias names at the signers', async () => {
    await kms(tc, 'admin1').send(new CreateAliasCommand({ AliasName: 'alias/pipeline-b', TargetKeyId: keys.edOther }));
    const evidence = await appRequest(tc, 'TrentService.Sign', edSign('alias/pipeline-b', 'release 1.0'));
    for (const c of signers) expect((await refusal(commit(c, keys.ed, signUse(text('release 1.0'), evidence)))).message).toMatch(/names key "alias\/pipeline-b", not this key/);
    const signature = await frostSession(tc, signers.slice(0, 2), keys.edOther, text('release 1.0'), signUse(text('release 1.0'), evidence));
    expect(verify(null, text('release 1.0'), createPublicKey({ key: Buffer.from(await publicKeyOf(tc, keys.edOther)), format: 'der', type: 'spki' }), signature)).toBe(true);
  });

  // Changes numbered by the test: later gateway changes are taken as already processed (run last).
  it('an alias name shaped like another key’s id or ARN is refused by every signer, even on an administrator’s own request', async () => {
    for (const name of [keys.edOther, `key/${keys.edOther}`, `arn:aws:kms:us-east-1:111122223333:key/${keys.edOther}`, 'alias/aws/x', 'alias/sp ace']) {
      // What the gateway refuses with ValidationException, forwarded anyway.
      const parameters = { AliasName: name, TargetKeyId: keys.ed };
      const evidence = await appRequest(tc, 'TrentService.CreateAlias', parameters, 'admin1');
      for (const c of signers) {
        const change = { seq: await nextSeq(c, keys.ed), keyId: keys.ed, operation: 'CreateAlias' as const, parameters, evidence };
        expect((await refusal(c.call(signerRoutes.policy.apply, change))).message, `${c.name}: ${name}`).toMatch(/Alias name/);
      }
    }
  });
});

describe('each key does only what its usage and spec allow, at every signer', () => {
  it('Decrypt on a SIGN_VERIFY RSA key: the raw private-key operation on a padded digest is refused', async () => {
    const params = rsaParams(keys.rsaSign);
    // What an attacker wants raised to d: the PKCS#1 v1.5 encoding of a digest it chose — a signature.
    const em = emsaPkcs1v15Encode(sha256(text('malware.exe')), 'sha256', 256);
    const body = { KeyId: keys.rsaSign, CiphertextBlob: b64(em), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' };
    const evidence = await appRequest(tc, 'TrentService.Decrypt', body);
    for (const padding of ['pkcs1v15', 'oaep-sha256'] as const) {
      const request = rsaDecryptRequest(params, { session: randomUUID(), padding, ciphertext: em });
      const use = { operation: 'Decrypt', algorithm: padding === 'pkcs1v15' ? 'RSAES_PKCS1_V1_5' : 'RSAES_OAEP_SHA_256', payload: b64(em), evidence };
      for (const c of signers) expect((await refusal(rsaPartial(c, keys.rsaSign, request, use))).message).toMatch(/is a SIGN_VERIFY key: it does not decrypt/);
    }
  });

  it('Sign on an ENCRYPT_DECRYPT key, and an algorithm outside the key’s spec', async () => {
    const digest = sha256(text('contract'));
    const request = rsaSignRequest(rsaParams(keys.rsaDecrypt), { session: randomUUID(), scheme: 'pkcs1v15', hash: 'sha256', digest }, randomBytes);
    const body = { KeyId: keys.rsaDecrypt, Message: b64(digest), MessageType: 'DIGEST', SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' };
    const use = { operation: 'Sign', algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', messageType: 'DIGEST', payload: b64(digest), evidence: await appRequest(tc, 'TrentService.Sign', body) };
    for (const c of signers) expect((await refusal(rsaPartial(c, keys.rsaDecrypt, request, use))).message).toMatch(/is a ENCRYPT_DECRYPT key: it does not sign/);
    const ecdsa = { ...edSign(keys.ed, 'x'), SigningAlgorithm: 'ECDSA_SHA_256' };
    const wrongAlg = signUse(text('x'), await appRequest(tc, 'TrentService.Sign', ecdsa), { algorithm: 'ECDSA_SHA_256' });
    for (const c of signers) expect((await refusal(commit(c, keys.ed, wrongAlg))).message).toMatch(/ECDSA_SHA_256 is not an algorithm of ECC_NIST_EDWARDS25519 key/);
  });

  it('forged RSA padding: each signer builds the encoding from the digest the client signed', async () => {
    const params = rsaParams(keys.rsaSign);
    const digest = sha256(text('harmless.txt'));
    const body = { KeyId: keys.rsaSign, Message: b64(digest), MessageType: 'DIGEST', SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' };
    const use = { operation: 'Sign', algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', messageType: 'DIGEST', payload: b64(digest), evidence: await appRequest(tc, 'TrentService.Sign', body) };
    const honest = rsaSignRequest(params, { session: randomUUID(), scheme: 'pkcs1v15', hash: 'sha256', digest }, randomBytes);
    const evil = toHex(emsaPkcs1v15Encode(sha256(text('malware.exe')), 'sha256', 256));
    for (const c of signers) {
      // The client's digest, another representative …
      expect((await refusal(rsaPartial(c, keys.rsaSign, { ...honest, session: randomUUID(), representative: evil }, use))).message).toMatch(/representative is not the pkcs1v15 encoding of the digest/);
      // … or another digest, consistently encoded.
      const other = rsaSignRequest(params, { session: randomUUID(), scheme: 'pkcs1v15', hash: 'sha256', digest: sha256(text('malware.exe')) }, randomBytes);
      expect((await refusal(rsaPartial(c, keys.rsaSign, other, use))).message).toMatch(/does not sign the digest the client asked for/);
      // … or PSS where the client asked PKCS#1 v1.5.
      const pss = rsaSignRequest(params, { session: randomUUID(), scheme: 'pss', hash: 'sha256', digest }, randomBytes);
      expect((await refusal(rsaPartial(c, keys.rsaSign, pss, use))).message).toMatch(/does not sign the digest the client asked for/);
    }
  });
});

describe('freshness and repeats', () => {
  it('a request dated more than 5 minutes ahead is refused', async () => {
    const p = tc.principal('app');
    const signed = await signRequest(
      { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY },
      { host: new URL(tc.endpoint).host, target: 'TrentService.Sign', body: JSON.stringify(edSign(keys.ed, 'later')), date: new Date(Date.now() + 6 * 60_000) },
    );
    const evidence = sigv4Evidence({ method: 'POST', path: '/', headers: signed.headers, body: signed.body });
    for (const c of signers) expect((await refusal(commit(c, keys.ed, signUse(text('later'), evidence)))).message).toMatch(/more than 5 minutes from/);
  });

  it('a repeat is the same request: served again, one rate token, still a repeat after the signers restart', async () => {
    const evidence = await appRequest(tc, 'TrentService.Sign', edSign(keys.limited, 'build 42'));
    const use = signUse(text('build 42'), evidence);
    await frostSession(tc, signers.slice(0, 2), keys.limited, text('build 42'), use);
    await frostSession(tc, signers.slice(0, 2), keys.limited, text('build 42'), use);
    // Another request is a second use: the key allows one a minute.
    const second = signUse(text('build 43'), await appRequest(tc, 'TrentService.Sign', edSign(keys.limited, 'build 43')));
    expect((await refusal(commit(signers[0]!, keys.limited, second))).message).toMatch(/allows 1 uses per minute/);

    for (const c of signers) c.close();
    await tc.down();
    await tc.up();
    signers = signerClients(tc, await gatewayIdentity(tc));
    // After a restart the ledger still knows both: the repeat is served, the other still waits.
    await frostSession(tc, signers.slice(0, 2), keys.limited, text('build 42'), use);
    expect((await refusal(commit(signers[0]!, keys.limited, second))).message).toMatch(/allows 1 uses per minute/);
    for (const s of ['signer1', 'signer2']) {
      const released = auditEntries(tc, s).filter((e) => e.keyId === keys.limited && e.outcome === 'ok' && e.output === 'partial');
      expect(released.map((e) => (e.detail as { repeat?: boolean } | undefined)?.repeat ?? false), s).toEqual([false, true, true]);
    }
  }, 120_000);

  it('every signer recorded each refusal as what it was', () => {
    for (const s of ['signer1', 'signer2', 'signer3']) {
      const refused = auditEntries(tc, s).filter((e) => e.outcome === 'refused').map((e) => String(e.reason));
      for (const why of [/Alias name/, /not this key/, /does not decrypt/, /does not sign/, /not an algorithm of/, /representative is not/, /more than 5 minutes/])
        expect(refused.some((r) => why.test(r)), `${s}: ${why}`).toBe(true);
    }
  });

  it('audit verify shows what the attacker did as what it was: signers’ releases the gateway never recorded', async () => {
    const r = await tc.mpchsmStatus('audit', 'verify', '--dir', tc.dir);
    expect(r.code).toBe(1);
    // The signatures the test obtained by calling signers directly are off the gateway's books.
    expect(r.out).toMatch(/missing-gateway-entry|the gateway's log has no entry for this request/);
    expect(r.out).toMatch(/audit verify: FAILED/);
  }, 60_000);
});
