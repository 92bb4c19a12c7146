// Removing a signer's share of a key: forgetting one whose creation failed (never a key in use),
// and destroying one whose approved deletion is due by the signer's own clock.
import { z } from 'zod';
import { route } from './route.js';
import { keyIdSchema } from './relayed.js';

const removal = z.strictObject({ keyId: keyIdSchema });
/** `existed`: whether this signer held a share of it. */
const removed = z.object({ keyId: z.string(), existed: z.boolean() });

export const keys = {
  forget: route('/v1/keys/forget', removal, removed),
  destroy: route('/v1/keys/destroy', removal, removed),
};
