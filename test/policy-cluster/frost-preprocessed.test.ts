// FROST nonces made ahead of the message (issue #21): KMS Sign with an Ed25519 key takes one
// round per signer once the gateway holds commitments, and a lying gateway — the test, with the
// gateway's identity, calling real signer processes — cannot have a nonce used twice (a replayed
// call, two calls racing for one nonce), a commitment used that is not the signer's own, a nonce
// used for another key, or a signature the policy refuses (another message, a disabled key).
import { createHash, createPublicKey, randomUUID, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ed25519ph } from '@noble/curves/ed25519.js';
import { DisableKeyCommand, SignCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { SignerRefusedError, type SignerClient } from '../../gateway/signer-client.js';
import type { Message } from '../../signers/protocols/common.js';
import { publicPackageSchema } from '../../signers/protocols/dkg.js';
import { frostAggregate, frostSigningPackage, type SigningPackage } from '../../signers/protocols/frost.js';
import type { TestCluster } from '../helpers/cluster.js';
import { preprocessedHeld } from '../helpers/signer-process.js';
import { appRequest, approved, auditEntries, createKey, kms, publicKeyOf, refusal, signUse, startWithSigners, stopWithSigners } from './helpers.js';

let tc: TestCluster;
let signers: SignerClient[];
const keys = { ed: '', other: '', disabled: '' };

const text = (s: string) => new TextEncoder().encode(s);
const b64 = (b: Uint8Array | string) => Buffer.from(b).toString('base64');
const pubOf = (keyId: string) => publicPackageSchema.parse(JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${keyId}.json`), 'utf8')).frost);
const preprocess = async (c: SignerClient, keyId: string, count = 1) => (await c.call(signerRoutes.frost.preprocess, { keyId, count })).nonces;
/** A fresh signed request from `app` to sign `message` with the key, as its `use`. */
const honestUse = async (keyId: string, message: string) => signUse(text(message), await appRequest(tc, 'TrentService.Sign', { KeyId: keyId, Message: b64(message), SigningAlgorithm: 'ED25519_SHA_512' }));

/** A signing package over `message` from nonce commitments made ahead (`held[i]` is `chosen[i]`'s). */
function packageOf(keyId: string, message: string, chosen: SignerClient[], held: { commitment: unknown }[]): SigningPackage {
  const session = randomUUID();
  const commits = chosen.map((c, i): Message => ({ session, round: 1, from: c.id, to: 'all', payload: held[i]!.commitment }));
  return frostSigningPackage(pubOf(keyId), { session, suite: 'ed25519', message: text(message) }, chosen.map((c) => c.id), commits);
}

const signOne = (c: SignerClient, keyId: string, nonce: string, pkg: SigningPackage, use: unknown) => c.call(signerRoutes.frost.signPreprocessed, { session: pkg.session, keyId, nonce, package: pkg, use });

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  keys.ed = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  keys.other = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  keys.disabled = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
}, 240_000);

afterAll(() => stopWithSigners(tc, signers));

describe('KMS Sign with an Ed25519 key, one round per signer', () => {
  it('ED25519_SHA_512 and ED25519_PH_SHA_512 verify, and each signer was asked once (sign-preprocessed, no commit)', async () => {
    // The gateway warms its pools when a key is made: 64 pairs for each of the three keys at each signer.
    await preprocessedHeld(tc, 3 * 64);
    const app = kms(tc, 'app');
    const message = text('one round per signer');
    const ed = await app.send(new SignCommand({ KeyId: keys.ed, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ED25519_SHA_512' }));
    expect(verify(null, message, createPublicKey({ key: Buffer.from(await publicKeyOf(tc, keys.ed)), format: 'der', type: 'spki' }), ed.Signature!)).toBe(true);
    // AWS KMS takes ED25519_PH_SHA_512 with a 64-byte DIGEST, which it hashes again (test/kms/ed25519ph.test.ts).
    const digest = createHash('sha512').update(message).digest();
    const ph = await app.send(new SignCommand({ KeyId: keys.ed, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' }));
    // node:crypto has no Ed25519ph; noble's computes PH(M) itself, M being the digest sent.
    expect(ed25519ph.verify(ph.Signature!, digest, (await publicKeyOf(tc, keys.ed)).subarray(-32), { zip215: false })).toBe(true);
    app.destroy();

    const sessions = auditEntries(tc, 'gateway').filter((e) => e.op === 'Sign' && e.outcome === 'ok' && e.keyId === keys.ed).map((e) => e.session);
    expect(sessions).toHaveLength(2);
    for (const session of sessions) {
      const ops = ['signer1', 'signer2', 'signer3'].flatMap((s) => auditEntries(tc, s).filter((e) => e.request === session).map((e) => `${String(e.op)} ${String(e.outcome)}`));
      // Two of the three signers, each with one released partial; commit (which records nothing) was not called: its session would differ.
      expect(ops.sort()).toEqual(['frost.sign-preprocessed ok', 'frost.sign-preprocessed ok']);
    }
    // Nothing was asked in a separate commitment session either: the gateway recorded one session per request.
    expect(auditEntries(tc, 'gateway').filter((e) => e.keyId === keys.ed && e.outcome === 'failed')).toEqual([]);
  });
});

describe('a lying gateway and nonces made ahead', () => {
  it('a replayed call (same nonce id, a fresh request signature) is refused: the nonce was used', async () => {
    const chosen = signers.slice(0, 2);
    const held = await Promise.all(chosen.map(async (c) => (await preprocess(c, keys.ed))[0]!));
    const pkg = packageOf(keys.ed, 'first use', chosen, held);
    const shares = await Promise.all(chosen.map(async (c, i): Promise<Message> => ({ session: pkg.session, round: 2, from: c.id, to: 'all', payload: (await signOne(c, keys.ed, held[i]!.id, pkg, await honestUse(keys.ed, 'first use'))).share })));
    const signature = frostAggregate(pubOf(keys.ed), pkg, shares);
    expect(verify(null, text('first use'), createPublicKey({ key: Buffer.from(await publicKeyOf(tc, keys.ed)), format: 'der', type: 'spki' }), signature)).toBe(true);
    for (const [i, c] of chosen.entries()) {
      // Same package, and another message in a new package: either would reuse the nonce.
      expect((await refusal(signOne(c, keys.ed, held[i]!.id, pkg, await honestUse(keys.ed, 'first use')))).code).toBe('not-preprocessed');
      const other = packageOf(keys.ed, 'second use', chosen, held);
      expect((await refusal(signOne(c, keys.ed, held[i]!.id, other, await honestUse(keys.ed, 'second use')))).code).toBe('not-preprocessed');
    }
  });

  it('two calls racing for the same nonce: exactly one partial is released, the other is refused', async () => {
    const chosen = signers.slice(1, 3);
    const held = await Promise.all(chosen.map(async (c) => (await preprocess(c, keys.ed))[0]!));
    const [a, b] = [packageOf(keys.ed, 'race a', chosen, held), packageOf(keys.ed, 'race b', chosen, held)];
    const [useA, useB] = [await honestUse(keys.ed, 'race a'), await honestUse(keys.ed, 'race b')];
    const c = chosen[0]!;
    const settled = await Promise.allSettled([signOne(c, keys.ed, held[0]!.id, a, useA), signOne(c, keys.ed, held[0]!.id, b, useB)]);
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
    const lost = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(SignerRefusedError);
    expect((lost.reason as SignerRefusedError).code).toBe('not-preprocessed');
    // The signer's log: one partial released under either session, one refusal.
    const entries = auditEntries(tc, c.name).filter((e) => e.request === a.session || e.request === b.session);
    expect(entries.map((e) => e.outcome).sort()).toEqual(['ok', 'refused']);
  });

  it('a package carrying another commitment as the signer’s own is refused, and the nonce is gone', async () => {
    const chosen = signers.slice(0, 2);
    const [spare] = await preprocess(chosen[0]!, keys.ed);
    const theirs = (await preprocess(chosen[1]!, keys.ed))[0]!;
    const use = await honestUse(keys.ed, 'not your commitment');
    // signer1's slot carries its other pair's commitment, then signer2's.
    for (const wrong of [spare!, theirs]) {
      const [held] = await preprocess(chosen[0]!, keys.ed);
      const pkg = packageOf(keys.ed, 'not your commitment', chosen, [wrong, theirs]);
      expect((await refusal(signOne(chosen[0]!, keys.ed, held!.id, pkg, use))).code).toBe('package-mismatch');
      expect((await refusal(signOne(chosen[0]!, keys.ed, held!.id, packageOf(keys.ed, 'not your commitment', chosen, [held!, theirs]), use))).code).toBe('not-preprocessed');
    }
  });

  it('a nonce made for another key is refused (and spent)', async () => {
    const chosen = signers.slice(0, 2);
    const forOther = (await preprocess(chosen[0]!, keys.other))[0]!;
    const theirs = (await preprocess(chosen[1]!, keys.ed))[0]!;
    const pkg = packageOf(keys.ed, 'key swap', chosen, [forOther, theirs]);
    const e = await refusal(signOne(chosen[0]!, keys.ed, forOther.id, pkg, await honestUse(keys.ed, 'key swap')));
    expect(e.code).toBe('not-preprocessed');
    expect(e.message).toMatch(/not made for key/);
  });

  it('a package for another message than the client signed is refused by policy', async () => {
    const chosen = signers.slice(0, 2);
    const held = await Promise.all(chosen.map(async (c) => (await preprocess(c, keys.ed))[0]!));
    const pkg = packageOf(keys.ed, 'pay mallory', chosen, held);
    for (const [i, c] of chosen.entries()) expect((await refusal(signOne(c, keys.ed, held[i]!.id, pkg, await honestUse(keys.ed, 'pay alice')))).message).toMatch(/not for the message/);
  });

  it('a disabled key signs nothing, nonces or not', async () => {
    const chosen = signers.slice(0, 2);
    const use = await honestUse(keys.disabled, 'while disabled');
    await approved(tc, kms(tc, 'admin1').send(new DisableKeyCommand({ KeyId: keys.disabled })), ['admin2']);
    const held = await Promise.all(chosen.map(async (c) => (await preprocess(c, keys.disabled))[0]!));
    const pkg = packageOf(keys.disabled, 'while disabled', chosen, held);
    for (const [i, c] of chosen.entries()) expect((await refusal(signOne(c, keys.disabled, held[i]!.id, pkg, use))).code).toBe('invalid-state');
  });

  it('a preprocess call asks for at most 64 pairs, for a key the signer holds', async () => {
    expect((await refusal(preprocess(signers[0]!, keys.ed, 65))).code).toBe('malformed');
    expect((await refusal(preprocess(signers[0]!, randomUUID()))).code).toBe('no-key');
  });
});
