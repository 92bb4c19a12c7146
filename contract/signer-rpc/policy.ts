// The signer's own policy, asked by the gateway: verifying an application's SigV4 request (the
// gateway holds no application secret), and applying a numbered change to keys, aliases or
// membership (authority.ts `changeSchema`), each signer checking its approvals itself.
import { z } from 'zod';
import { changeSchema } from './authority.js';
import { route } from './route.js';
import { uuidSchema } from './relayed.js';

export const auth = {
  /** `session`: the gateway's request id; `request`: policy/evidence.ts SigV4 evidence, narrowed by the signer. */
  sigv4: route('/v1/auth/sigv4', z.strictObject({ session: uuidSchema, request: z.unknown() }), z.object({ principal: z.string(), accessKeyId: z.string() })),
};

export const policy = {
  /** `applied`: false for a change this signer had already processed (a retry). */
  apply: route('/v1/policy/apply', changeSchema, z.object({ seq: z.number().int(), applied: z.boolean() })),
};
