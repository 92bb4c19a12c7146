// Credential activation (signers/node/tpm/activation.ts) with two real swtpms through tpm2-tools:
// a credential made for TPM A's EK and AK is recovered by TPM A only; a newcomer pairing A's
// genuine EK certificate with an attestation key of its own (a software one whose quote verifies,
// or TPM B's) cannot answer; a verifier takes each answer once, bound to itself and the identity.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwtpm, stopSwtpm, swtpmTcti } from '../../cli/swtpm.js';
import { makeTpmQuote, verifyTpmQuote, type TpmQuote } from '../../signers/node/tpm/attestation.js';
import { ActivationChallenges, activateCredentials, activationProof, makeCredential } from '../../signers/node/tpm/activation.js';
import { haveSwtpm, NO_SWTPM } from './helpers.js';
import { forgeQuote } from './forge.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-activation-'));
const tpmA = { state: path.join(work, 'a'), key: path.join(work, 'a.key.json'), tcti: '' };
const tpmB = { state: path.join(work, 'b'), key: path.join(work, 'b.key.json'), tcti: '' };
const fingerprint = randomBytes(32).toString('hex');
let quoteA: TpmQuote;
let quoteB: TpmQuote;

beforeAll(async () => {
  if (!haveSwtpm) return;
  const port = 20000 + Math.floor(Math.random() * 5000) * 4;
  for (const [t, p] of [[tpmA, port], [tpmB, port + 2]] as const) {
    await startSwtpm(t.state, p);
    t.tcti = swtpmTcti(p);
  }
  quoteA = await makeTpmQuote(tpmA.tcti, fingerprint, tpmA.key);
  quoteB = await makeTpmQuote(tpmB.tcti, fingerprint, tpmB.key);
}, 180_000);

afterAll(async () => {
  await stopSwtpm(tpmA.state);
  await stopSwtpm(tpmB.state);
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!haveSwtpm)(`credential activation (${NO_SWTPM} otherwise)`, () => {
  it('the TPM holding the EK and the AK recovers each credential\'s secret', async () => {
    const one = await makeCredential(quoteA);
    const two = await makeCredential(quoteA);
    const [s1, s2] = await activateCredentials(tpmA.tcti, tpmA.key, [one.credential, two.credential]);
    expect(s1!.equals(one.secret)).toBe(true);
    expect(s2!.equals(two.secret)).toBe(true);
    expect(one.secret.equals(two.secret)).toBe(false);
  }, 60_000);

  it('an AK from another TPM than the EK certificate cannot answer, on either TPM', async () => {
    // TPM B's AK beside TPM A's EK: what a newcomer holding B would claim with A's certificate.
    const { credential } = await makeCredential({ ekPublic: quoteA.ekPublic, akPublic: quoteB.akPublic });
    await expect(activateCredentials(tpmB.tcti, tpmB.key, [credential])).rejects.toThrow(/does not activate with this TPM's endorsement and attestation keys/);
    // On A, B's AK does not even load under A's EK.
    await expect(activateCredentials(tpmA.tcti, tpmB.key, [credential])).rejects.toThrow(/tpm2_load/);
  }, 60_000);

  it('a software AK paired with a genuine EK certificate passes the quote check, and activation is what refuses it', async () => {
    const forged = forgeQuote(quoteA, fingerprint);
    expect((await verifyTpmQuote(forged, fingerprint)).label).toMatch(/^software TPM \(swtpm/);
    const verifier = new ActivationChallenges(1);
    const challenge = randomBytes(32).toString('hex');
    const credential = await verifier.issue('signer5', challenge, forged);
    // Its holder has TPM B (its own EK and AK), not A: the credential does not activate there.
    await expect(activateCredentials(tpmB.tcti, tpmB.key, [credential])).rejects.toThrow(/does not activate/);
    // Whatever it answers instead is wrong, and the challenge is spent.
    expect(() => verifier.check('signer5', challenge, fingerprint, randomBytes(32).toString('hex'))).toThrow(/its attestation key is not in the TPM of its endorsement key/);
    expect(() => verifier.check('signer5', challenge, fingerprint, randomBytes(32).toString('hex'))).toThrow(/no credential for signer5's challenge is outstanding/);
  }, 60_000);

  it('a verifier takes the right answer once, for its own credential, itself and the identity; never a replayed or invented one', async () => {
    const v1 = new ActivationChallenges(1);
    const v2 = new ActivationChallenges(2);
    const c1 = randomBytes(32).toString('hex');
    const cred1 = await v1.issue('signer4', c1, quoteA);
    const cred2 = await v2.issue('signer4', c1, quoteA);
    const [s1, s2] = await activateCredentials(tpmA.tcti, tpmA.key, [cred1, cred2]);
    const proof1 = activationProof(s1!, 1, fingerprint);
    // Signer 1's answer relayed to signer 2, or for another identity: refused.
    expect(() => v2.check('signer4', c1, fingerprint, proof1)).toThrow(/is wrong/);
    expect(() => v1.check('signer4', c1, randomBytes(32).toString('hex'), proof1)).toThrow(/is wrong/);
    // A fresh credential: the right answer passes once; replaying it, or the earlier answer, does not.
    const c2 = randomBytes(32).toString('hex');
    const [s3] = await activateCredentials(tpmA.tcti, tpmA.key, [await v1.issue('signer4', c2, quoteA)]);
    const proof3 = activationProof(s3!, 1, fingerprint);
    expect(() => v1.check('signer4', c2, fingerprint, proof3)).not.toThrow();
    expect(() => v1.check('signer4', c2, fingerprint, proof3)).toThrow(/no credential .* is outstanding/);
    const c3 = randomBytes(32).toString('hex');
    await v1.issue('signer4', c3, quoteA);
    expect(() => v1.check('signer4', c3, fingerprint, proof3)).toThrow(/is wrong/);
    // No answer at all.
    const c4 = randomBytes(32).toString('hex');
    await v2.issue('signer4', c4, quoteA);
    expect(() => v2.check('signer4', c4, fingerprint, undefined)).toThrow(/did not answer/);
    expect(s2).toBeDefined();
  }, 90_000);
});
