// Every route a signer serves, by family; each entry's path mirrors where it stands in the table
// (`signerRoutes.ecdsa.keygen.start` is POST /v1/ecdsa/keygen/start). The signer parses a
// request with the entry's `request`; the gateway builds the body to its input type and reads
// the answer with its `response` (gateway/signer-client.ts). A path not listed here is served by
// no signer (test/node/signer-routes.test.ts checks both ways).
import { admission } from './admission.js';
import { audit } from './audit.js';
import { ecdsa } from './ecdsa.js';
import { dkg, frost } from './frost.js';
import { keys } from './keys.js';
import { auth, policy } from './policy.js';
import { posture } from './posture.js';
import { random } from './random.js';
import { reshare } from './reshare.js';
import { rsa } from './rsa.js';
import { tprf } from './tprf.js';

export const signerRoutes = { dkg, frost, ecdsa, rsa, tprf, random, keys, reshare, auth, policy, admission, audit, posture };
