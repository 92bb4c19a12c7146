// Credential activation (TPM 2.0 Part 1, "Credential Protection"): a quote proves the identity was
// quoted by *an* attestation key (AK), and its EK certificate a genuine endorsement key (EK), but
// not that the two are in one TPM: a software AK paired with another TPM's (public) EK
// certificate would pass. So each verifying signer makes a credential — a fresh secret, its seed
// encrypted to the newcomer's EK and bound to its AK's name (TPM2_MakeCredential, computed by
// tpm2-tools without a TPM) — and only a TPM that holds both that EK's private key and an object
// of that name (TPM2_ActivateCredential) recovers the secret. The newcomer answers with an HMAC
// under the secret over the verifier and its own identity, never the secret, so the gateway that
// relays it learns nothing it could answer another challenge with; each challenge is answered once,
// within ACTIVATION_TTL_MS.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../../contract/io/atomic.js';
import { readJsonFileAsync } from '../../../contract/io/json-file.js';
import { fromHex, toHex, tpmBlobSchema } from '../../../contract/bytes.js';
import { objectName, parseTpm2bPublic } from './structures.js';
import { withTpm, type Tpm } from './tools.js';

/** How long a verifier waits for the answer to a credential it made. */
export const ACTIVATION_TTL_MS = 120_000;
/** Credentials outstanding per newcomer: a gateway retrying must not make a verifier hold more. */
const MAX_PENDING = 8;
const PURPOSE = 'mpchsm-credential-activation-v1';

export class ActivationError extends Error {
  override name = 'ActivationError';
}

/** The AK's blobs, kept beside the signer's store by `signer init --seal tpm`: its private part is wrapped by the EK and loads only in that TPM. */
export const attestationKeySchema = z.strictObject({ ekType: z.enum(['rsa', 'ecc']), akPublic: tpmBlobSchema, akPrivate: tpmBlobSchema });
export type AttestationKey = z.infer<typeof attestationKeySchema>;
export const attestationKeyPath = (signerDir: string) => path.join(signerDir, 'attestation-key.json');

export async function saveAttestationKey(file: string, key: AttestationKey): Promise<void> {
  await writeFileAtomic(file, Buffer.from(JSON.stringify(key, null, 2) + '\n'), 0o600);
}

/** What a verifier challenges: the newcomer's EK and AK public areas, from the attestation it verified when pinning it. */
export interface ActivationTarget {
  ekPublic: string;
  akPublic: string;
}

/** The verifier's side: a fresh secret and its credential (tpm2-tools' credential file, hex) for `target`. */
export async function makeCredential(target: ActivationTarget): Promise<{ secret: Buffer; credential: string }> {
  const akName = toHex(objectName(parseTpm2bPublic(fromHex(target.akPublic))));
  const secret = randomBytes(32);
  // No TPM: MakeCredential is public-key encryption to the EK (-T none).
  const credential = await withTpm('none', async (tpm) => {
    await writeFile(tpm.file('ek.pub'), fromHex(target.ekPublic));
    await tpm.run('makecredential', ['-T', 'none', '-e', tpm.file('ek.pub'), '-s', '-', '-n', akName, '-o', tpm.file('cred.out')], secret);
    return toHex(await readFile(tpm.file('cred.out')));
  });
  return { secret, credential };
}

/** Satisfies the EK's policy (TPM2_PolicySecret with the endorsement hierarchy) for one command. */
async function ekSession(tpm: Tpm): Promise<string> {
  const session = tpm.file('ek-session.ctx');
  await tpm.run('startauthsession', ['--policy-session', '-S', session]);
  await tpm.run('policysecret', ['-S', session, '-c', 'e']);
  return `session:${session}`;
}

/**
 * The newcomer's side: its TPM recovers the secret of each credential with its EK and the AK of
 * `keyFile` (both loaded once); throws, naming the first that is not theirs.
 */
export async function activateCredentials(tcti: string, keyFile: string, credentials: readonly string[]): Promise<Buffer[]> {
  const key = await readJsonFileAsync(keyFile, attestationKeySchema);
  return withTpm(tcti, async (tpm) => {
    await writeFile(tpm.file('ak.pub'), fromHex(key.akPublic));
    await writeFile(tpm.file('ak.priv'), fromHex(key.akPrivate));
    await tpm.run('createek', ['-c', tpm.file('ek.ctx'), '-G', key.ekType]);
    await tpm.run('load', ['-C', tpm.file('ek.ctx'), '-u', tpm.file('ak.pub'), '-r', tpm.file('ak.priv'), '-c', tpm.file('ak.ctx'), '-P', await ekSession(tpm)]);
    await tpm.run('flushcontext', ['-s']);
    const secrets: Buffer[] = [];
    for (const [i, credential] of credentials.entries()) {
      await writeFile(tpm.file('cred.in'), fromHex(credential));
      try {
        // The recovered secret is a one-time challenge value; it sits for one command in this private directory, removed after.
        await tpm.run('activatecredential', ['-c', tpm.file('ak.ctx'), '-C', tpm.file('ek.ctx'), '-i', tpm.file('cred.in'), '-o', tpm.file('secret'), '-P', await ekSession(tpm)]);
      } catch (e) {
        for (const s of secrets) s.fill(0);
        throw new ActivationError(`credential ${i + 1} does not activate with this TPM's endorsement and attestation keys: ${(e as Error).message}`);
      } finally {
        await tpm.run('flushcontext', ['-s']);
      }
      secrets.push(await readFile(tpm.file('secret')));
      await rm(tpm.file('secret'));
    }
    return secrets;
  });
}

/** What the newcomer returns to verifier `verifier`: an HMAC under the recovered secret, bound to the verifier and to the newcomer's identity. */
export function activationProof(secret: Uint8Array, verifier: number, fingerprint: string): string {
  return createHmac('sha256', secret).update(`${PURPOSE}\n${verifier}\n${fingerprint}`).digest('hex');
}

/** A verifier's outstanding credentials, by newcomer and the newcomer's admission challenge; in memory: a restart asks again. */
export class ActivationChallenges {
  private readonly pending = new Map<string, { challenge: string; secret: Buffer; until: number }[]>();

  constructor(private readonly self: number) {}

  async issue(name: string, challenge: string, target: ActivationTarget): Promise<string> {
    const { secret, credential } = await makeCredential(target);
    const now = Date.now();
    const all = [...(this.pending.get(name) ?? []), { challenge, secret, until: now + ACTIVATION_TTL_MS }];
    const kept = all.filter((p, i) => p.until > now && !all.slice(i + 1).some((q) => q.challenge === p.challenge)).slice(-MAX_PENDING);
    for (const p of all) if (!kept.includes(p)) p.secret.fill(0);
    this.pending.set(name, kept);
    return credential;
  }

  /** Spends the credential made for `name`'s `challenge`: `proof` must be its secret's HMAC for this verifier and `fingerprint`. */
  check(name: string, challenge: string, fingerprint: string, proof: string | undefined): void {
    const all = this.pending.get(name) ?? [];
    const p = all.find((x) => x.challenge === challenge);
    if (!p) throw new ActivationError(`no credential for ${name}'s challenge is outstanding here (never made, answered once already, or this signer restarted)`);
    this.pending.set(name, all.filter((x) => x !== p));
    try {
      if (p.until <= Date.now()) throw new ActivationError(`${name}'s credential expired before it was answered`);
      if (proof === undefined) throw new ActivationError(`${name} did not answer this signer's credential`);
      const expected = Buffer.from(activationProof(p.secret, this.self, fingerprint), 'hex');
      const got = Buffer.from(proof, 'hex');
      if (got.length !== expected.length || !timingSafeEqual(got, expected))
        throw new ActivationError(`${name}'s answer to this signer's credential is wrong: its attestation key is not in the TPM of its endorsement key`);
    } finally {
      p.secret.fill(0);
    }
  }
}
