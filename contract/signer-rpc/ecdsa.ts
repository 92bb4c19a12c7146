// The threshold-ECDSA routes (DKLs23, signers/protocols/ecdsa/): key generation, two rounds after
// the start, and signing, two rounds after the start, the last carrying each signer's share.
import { z } from 'zod';
import { keygenAnswer, keygenStart, released, roundAnswer, route, stepRequest } from './route.js';
import { keyIdSchema, sessionIdSchema } from './relayed.js';

export const ecdsa = {
  keygen: {
    /** `curve` is narrowed by the signer to the protocol's curve names. */
    start: route('/v1/ecdsa/keygen/start', keygenStart({ curve: z.string() }), roundAnswer),
    step: route('/v1/ecdsa/keygen/step', stepRequest, keygenAnswer),
  },
  sign: {
    /** `digest`: what is signed, hex; `use`: contract/signer-rpc/authority.ts `Use`, which the signer's guard parses. */
    start: route(
      '/v1/ecdsa/sign/start',
      z.strictObject({
        session: sessionIdSchema,
        keyId: keyIdSchema,
        signers: z.array(z.number().int()).min(1),
        digest: z.string().regex(/^(?:[0-9a-f]{2}){1,64}$/),
        lowS: z.boolean().optional(),
        use: z.unknown().optional(),
      }),
      roundAnswer,
    ),
    step: route('/v1/ecdsa/sign/step', stepRequest, roundAnswer.extend(released)),
  },
};
