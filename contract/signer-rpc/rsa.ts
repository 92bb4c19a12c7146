// The threshold-RSA routes (Shoup, signers/protocols/rsa/): installing a share a key ceremony
// dealt (signers/ceremony/), and a partial signature or decryption for a request the signer
// checks itself (rsa/request.ts).
import { z } from 'zod';
import { released, route } from './route.js';
import { keyIdSchema } from './relayed.js';

export const rsa = {
  /**
   * `params`: rsa/key.ts public parameters, narrowed by the signer; `dealer` and `envelope`: the
   * dealer's identity and this signer's sealed share; `creation`: authority.ts `Creation`.
   */
  install: route(
    '/v1/rsa/install',
    z.strictObject({ keyId: keyIdSchema, params: z.unknown(), dealer: z.unknown(), envelope: z.unknown(), creation: z.unknown().optional() }),
    z.object({ keyId: z.string(), ...released }),
  ),
  /**
   * `request`: rsa/request.ts `RsaRequest` for `session`; `use`: authority.ts `Use`; `prove`: with
   * the proof of correctness (the coordinator asks again, the same request, when its
   * combination fails).
   */
  partial: route(
    '/v1/rsa/partial',
    z.strictObject({ keyId: keyIdSchema, session: z.string(), request: z.unknown(), use: z.unknown().optional(), prove: z.boolean().optional() }),
    z.object({ partial: z.unknown(), ...released }),
  ),
};
