// Resharing a key (signers/node/reshare.ts): new shares at the same threshold for the same
// public key, to the same holders (a refresh) or others. The start deals, the steps run the
// protocol's rounds, and every new holder keeps its share pending until told to adopt it.
import { z } from 'zod';
import { released, roundAnswer, route, stepRequest } from './route.js';
import { keyIdSchema, sessionIdSchema } from './relayed.js';

export const reshare = {
  /**
   * `old`: the key's public package (signers/protocols/key-package.ts), for a holder new to the
   * key, narrowed by the signer; `authority`: authority.ts `ReshareAuthority`, for a refresh;
   * `dealers`: the old holders that deal (default: every old holder that stays), at least the
   * threshold — a resharing from a sharing revived by a restore is dealt by the holders restored
   * with it (signers/node/guard/restore.ts).
   */
  start: route(
    '/v1/reshare/start',
    z.strictObject({
      session: sessionIdSchema,
      keyId: keyIdSchema,
      participants: z.array(z.number().int()).min(1).max(255),
      threshold: z.number().int(),
      old: z.unknown().optional(),
      authority: z.unknown().optional(),
      dealers: z.array(z.number().int()).min(1).max(255).optional(),
    }),
    roundAnswer,
  ),
  /** The last round's answer carries the new public package, which every new holder must agree on. */
  step: route('/v1/reshare/step', stepRequest, roundAnswer.extend({ publicPackage: z.unknown().optional() })),
  /** `publicPackage`: the one every new holder reported, narrowed by the signer. */
  adopt: route('/v1/reshare/adopt', z.strictObject({ session: sessionIdSchema, keyId: keyIdSchema, publicPackage: z.unknown() }), z.object({ keyId: z.string(), ...released })),
};
