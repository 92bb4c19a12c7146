// A signer's part of GenerateRandom: fresh random bytes of its own, for a client's request it
// checked itself (guard/random.ts); the gateway combines t of them (gateway/random.ts).
import { randomBytes } from 'node:crypto';
import { RANDOM_CONTRIBUTION_BYTES } from '../../contract/signer-rpc/random.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import type { PolicyGuard } from './guard/index.js';
import type { Answer } from './rpc.js';

const { random } = signerRoutes;

export function randomRoutes(guard: PolicyGuard) {
  return {
    [random.contribute.path]: async (body: unknown): Promise<Answer<typeof random.contribute>> => {
      const grant = await guard.authorizeRandom(random.contribute.request.parse(body));
      const contribution = randomBytes(RANDOM_CONTRIBUTION_BYTES).toString('hex');
      const asked = await guard.releaseRandom(grant);
      return { contribution, released: { output: 'partial', algorithm: 'random', ...asked } };
    },
  };
}
