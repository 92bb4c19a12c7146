// The threshold PRF behind symmetric keys (signers/protocols/tprf.ts): one round. The gateway
// names the key, the material version, a session and which of the client's evaluations it
// wants; the signer derives the PRF input from the client's signed request (`evidence`) itself
// (policy/symmetric-evidence.ts) and answers its partial with its proof.
import { z } from 'zod';
import { released, route } from './route.js';
import { keyIdSchema, uuidSchema } from './relayed.js';

export const tprf = {
  evaluate: route(
    '/v1/tprf/evaluate',
    z.strictObject({
      keyId: keyIdSchema,
      material: z.number().int().min(1).max(0xffffffff),
      session: uuidSchema,
      /** Which of the request's evaluations (ReEncrypt: 0 the source, 1 the destination). */
      evaluation: z.number().int().min(0).max(1),
      evidence: z.unknown(),
    }),
    z.object({ partial: z.unknown(), ...released }),
  ),
};
