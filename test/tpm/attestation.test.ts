// A TPM quote over a signer's identity (signers/node/tpm/attestation.ts), made by a real swtpm
// through tpm2-tools and checked in TypeScript: it verifies for its identity, names the swtpm a
// software TPM, and every forgery or substitution is refused.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwtpm, stopSwtpm, swtpmTcti } from '../../cli/swtpm.js';
import { makeTpmQuote, readPcrDigest, verifyTpmQuote, type TpmQuote } from '../../signers/node/tpm/attestation.js';
import { withTpm } from '../../signers/node/tpm/tools.js';
import { checkRequiredAttestation } from '../../signers/node/tpm/admission.js';
import { fingerprint as fingerprintOf, identityFromSecrets } from '../../contract/identity/identity.js';
import { haveSwtpm, NO_SWTPM } from './helpers.js';

const state = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-quote-'));
const identity = identityFromSecrets('signer4', randomBytes(32), randomBytes(32)).public;
const fingerprint = fingerprintOf(identity);
const other = randomBytes(32).toString('hex');
let quote: TpmQuote;
let otherQuote: TpmQuote;
let tcti: string;

beforeAll(async () => {
  if (!haveSwtpm) return;
  const port = 20000 + Math.floor(Math.random() * 10000) * 2;
  await startSwtpm(state, port);
  tcti = swtpmTcti(port);
  quote = await makeTpmQuote(swtpmTcti(port), fingerprint);
  otherQuote = await makeTpmQuote(swtpmTcti(port), other);
}, 120_000);

afterAll(async () => {
  await stopSwtpm(state);
  rmSync(state, { recursive: true, force: true });
});

const flip = (h: string, at: number) => h.slice(0, at * 2) + ((parseInt(h.slice(at * 2, at * 2 + 2), 16) ^ 1).toString(16).padStart(2, '0')) + h.slice(at * 2 + 2);

describe.skipIf(!haveSwtpm)(`TPM quote attestation (${NO_SWTPM} otherwise)`, () => {
  it('verifies for the identity it was made for, and names swtpm a software TPM', async () => {
    const v = await verifyTpmQuote(quote, fingerprint);
    expect(v.hardware).toBe(false);
    expect(v.label).toMatch(/^software TPM \(swtpm, EK issued by CN=swtpm-localca/);
    expect(v.pcrs).toBe('sha256:0,1,2,3,4,5,6,7');
  });

  it('is refused for another identity', async () => {
    await expect(verifyTpmQuote(quote, other)).rejects.toThrow(/another identity/);
  });

  it('is refused when missing or malformed', async () => {
    await expect(verifyTpmQuote(undefined, fingerprint)).rejects.toThrow(/not a TPM quote attestation/);
    await expect(verifyTpmQuote({ ...quote, kind: 'sev-snp' }, fingerprint)).rejects.toThrow(/not a TPM quote attestation/);
  });

  it('is refused when the quote, its signature or its keys were changed', async () => {
    // A byte of the quote's clock (after magic, type, the signer's name and the 32-byte qualifying data): still a well-formed quote, no longer what the AK signed.
    await expect(verifyTpmQuote({ ...quote, quote: flip(quote.quote, 80) }, fingerprint)).rejects.toThrow(/did not sign it/);
    await expect(verifyTpmQuote({ ...quote, signature: otherQuote.signature }, fingerprint)).rejects.toThrow(/did not sign it/);
    // Another AK's public area with its own valid quote (for this identity's fingerprint rewritten): not this quote's signer.
    await expect(verifyTpmQuote({ ...quote, akPublic: otherQuote.akPublic }, fingerprint)).rejects.toThrow(/did not sign it|not this attestation key/);
    // An EK certificate of another TPM than the EK the AK was made under.
    const foreign = { ...otherQuote, quote: quote.quote, signature: quote.signature, akPublic: quote.akPublic, ekPublic: flip(quote.ekPublic, 80) };
    await expect(verifyTpmQuote(foreign, fingerprint)).rejects.toThrow(/not this attestation key under this endorsement key|not the one its certificate certifies/);
  });

  it('require_attestation: a newcomer is admitted with its own verified quote, refused with none, another\'s or a forged one', async () => {
    expect(await checkRequiredAttestation('signer4', identity, quote)).toMatch(/^software TPM \(swtpm/);
    await expect(checkRequiredAttestation('signer4', identity, undefined)).rejects.toThrow(/signer4 carries no attestation, and the governance requires one/);
    await expect(checkRequiredAttestation('signer4', identity, otherQuote)).rejects.toThrow(/signer4's attestation is refused: .*another identity/);
    await expect(checkRequiredAttestation('signer4', identity, { ...quote, signature: otherQuote.signature })).rejects.toThrow(/signer4's attestation is refused: .*did not sign it/);
  });

  it('the PCR digest read now is the quoted one until a quoted PCR is extended', async () => {
    const quoted = (await verifyTpmQuote(quote, fingerprint)).pcrDigest;
    expect(await readPcrDigest(tcti)).toBe(quoted);
    await withTpm(tcti, (tpm) => tpm.run('pcrextend', [`7:sha256=${'ab'.repeat(32)}`]));
    expect(await readPcrDigest(tcti)).not.toBe(quoted);
  }, 60_000);
});
