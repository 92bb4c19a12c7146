// GenerateRandom (KMS): each of t signers contributes fresh random bytes, which the gateway
// combines (gateway/random.ts), so no single party chooses the output. A signer contributes only
// for a client's own signed GenerateRandom request (`evidence`) of exactly `numberOfBytes`, once.
import { z } from 'zod';
import { released, route } from './route.js';
import { uuidSchema } from './relayed.js';

/** The bytes each signer contributes: 256 bits, so one honest signer makes the output unpredictable. */
export const RANDOM_CONTRIBUTION_BYTES = 32;
/** AWS's upper bound on GenerateRandom's NumberOfBytes. */
export const RANDOM_MAX_BYTES = 1024;

export const random = {
  contribute: route(
    '/v1/random/contribute',
    z.strictObject({ session: uuidSchema, numberOfBytes: z.number().int().min(1).max(RANDOM_MAX_BYTES), evidence: z.unknown() }),
    z.object({ contribution: z.string().regex(new RegExp(`^[0-9a-f]{${2 * RANDOM_CONTRIBUTION_BYTES}}$`)), ...released }),
  ),
};
