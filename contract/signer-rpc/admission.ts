// Admitting a signer added by an approved AddSigner (signers/node/admission.ts): the newcomer
// makes a challenge, each active signer seals its policy state to the newcomer for it, and the
// newcomer enrols from all of them, the gateway only relaying. Where the governance requires
// attestation, each active signer first challenges the newcomer's TPM with a credential
// (signers/node/tpm/activation.ts), and seals its state only for the right answer. Founding
// signers under require_attestation answer each other's credentials the same way (activation,
// activate, confirm: signers/node/genesis.ts), the challenge then being the gateway's.
import { z } from 'zod';
import { tpmBlobSchema } from '../bytes.js';
import { envelopeSchema } from '../identity/envelope.js';
import { route } from './route.js';

const challengeSchema = z.string().regex(/^[0-9a-f]{64}$/);
/** An active signer's policy state, sealed to the newcomer. */
const sealedStateSchema = z.strictObject({ from: z.number().int().min(1).max(255), envelope: envelopeSchema });
export type SealedState = z.infer<typeof sealedStateSchema>;
const partySchema = z.number().int().min(1).max(255);
const nameSchema = z.string().regex(/^[a-z0-9-]{1,32}$/);
/** The newcomer's HMAC under a credential's secret (signers/node/tpm/activation.ts `activationProof`). */
const proofSchema = z.string().regex(/^[0-9a-f]{64}$/);

export const admission = {
  /** Served by the newcomer only, until it is enrolled. */
  challenge: route('/v1/admission/challenge', z.strictObject({}), z.object({ challenge: challengeSchema })),
  /**
   * Served by each active signer: a credential for the TPM of signer `name` (a newcomer, or a
   * founder), made for `challenge` (the newcomer's current one), while this signer awaits that
   * TPM's answer; none otherwise.
   */
  activation: route('/v1/admission/activation', z.strictObject({ name: nameSchema, challenge: challengeSchema }), z.object({ from: partySchema, credential: tpmBlobSchema.optional() })),
  /** Served by the newcomer until it is enrolled, and by every enrolled TPM-sealed signer: its TPM's answer to each signer's credential. */
  activate: route(
    '/v1/admission/activate',
    z.strictObject({ credentials: z.array(z.strictObject({ from: partySchema, credential: tpmBlobSchema })).min(1).max(255) }),
    z.object({ proofs: z.array(z.object({ from: partySchema, proof: proofSchema })) }),
  ),
  /** Served by each active signer that applied the AddSigner naming `name`; `proof` answers its credential, where it made one. */
  package: route('/v1/admission/package', z.strictObject({ name: nameSchema, challenge: challengeSchema, proof: proofSchema.optional() }), sealedStateSchema),
  /**
   * Served by each active signer: `proof` answers the credential it made for enrolled signer
   * `name` (a founder) for `challenge`: a right one ends its wait, anything else is refused. Where
   * it awaits nothing of `name` it answers as well: the signer is activated there.
   */
  confirm: route('/v1/admission/confirm', z.strictObject({ name: nameSchema, challenge: challengeSchema, proof: proofSchema }), z.object({ from: partySchema })),
  /** Served by the newcomer: every active signer's sealed state for its current challenge. */
  enrol: route(
    '/v1/admission/enrol',
    z.strictObject({ challenge: challengeSchema, packages: z.array(sealedStateSchema).min(1).max(255) }),
    z.object({ governanceVersion: z.number().int(), keys: z.number().int(), seq: z.number().int() }),
  ),
};
