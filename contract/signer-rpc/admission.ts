// Admitting a signer added by an approved AddSigner (signers/node/admission.ts): the newcomer
// makes a challenge, each active signer seals its policy state to the newcomer for it, and the
// newcomer enrols from all of them, the gateway only relaying.
import { z } from 'zod';
import { envelopeSchema } from '../identity/envelope.js';
import { route } from './route.js';

const challengeSchema = z.string().regex(/^[0-9a-f]{64}$/);
/** An active signer's policy state, sealed to the newcomer. */
const sealedStateSchema = z.strictObject({ from: z.number().int().min(1).max(255), envelope: envelopeSchema });
export type SealedState = z.infer<typeof sealedStateSchema>;

export const admission = {
  /** Served by the newcomer only, until it is enrolled. */
  challenge: route('/v1/admission/challenge', z.strictObject({}), z.object({ challenge: challengeSchema })),
  /** Served by each active signer that applied the AddSigner naming `name`. */
  package: route('/v1/admission/package', z.strictObject({ name: z.string().regex(/^[a-z0-9-]{1,32}$/), challenge: challengeSchema }), sealedStateSchema),
  /** Served by the newcomer: every active signer's sealed state for its current challenge. */
  enrol: route(
    '/v1/admission/enrol',
    z.strictObject({ challenge: challengeSchema, packages: z.array(sealedStateSchema).min(1).max(255) }),
    z.object({ governanceVersion: z.number().int(), keys: z.number().int(), seq: z.number().int() }),
  ),
};
