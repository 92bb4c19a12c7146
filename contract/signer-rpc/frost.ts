// The Ed25519 routes: FROST key generation (signers/protocols/dkg.ts), two rounds after the
// start, and FROST signing (signers/protocols/frost.ts, RFC 9591): a commitment, then a share.
import { z } from 'zod';
import { keygenAnswer, keygenStart, released, roundAnswer, route, stepRequest } from './route.js';
import { keyIdSchema, sessionIdSchema } from './relayed.js';

export const dkg = {
  /** `suite` is narrowed by the signer to the protocol's group names. */
  start: route('/v1/dkg/start', keygenStart({ suite: z.string() }), roundAnswer),
  step: route('/v1/dkg/step', stepRequest, keygenAnswer),
};

export const frost = {
  /** `use`: contract/signer-rpc/authority.ts `Use`, which the signer's guard parses. */
  commit: route(
    '/v1/frost/commit',
    z.strictObject({ session: sessionIdSchema, keyId: keyIdSchema, signers: z.array(z.number().int()).min(1), use: z.unknown().optional() }),
    z.object({ commitment: z.unknown() }),
  ),
  /** `package`: frost.ts `SigningPackage`, narrowed by the signer. */
  sign: route('/v1/frost/sign', z.strictObject({ session: sessionIdSchema, keyId: keyIdSchema, package: z.unknown() }), z.object({ share: z.unknown(), ...released })),
};
