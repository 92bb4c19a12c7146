// A signer's signed report about itself (contract/posture/report.ts), asked with the nonce of
// whoever will check it (an administrator's or auditor's `mpchsm doctor`, through the gateway's
// MpcHsm.Posture): the gateway relays it and cannot forge or replay it.
import { z } from 'zod';
import { postureNonceSchema, signedPostureSchema } from '../posture/report.js';
import { route } from './route.js';

export const posture = {
  /** `packages`: the report lists each key share's package digest (for `backup verify` from another host). */
  report: route('/v1/posture/report', z.strictObject({ nonce: postureNonceSchema, packages: z.literal(true).optional() }), z.object({ report: signedPostureSchema })),
};
