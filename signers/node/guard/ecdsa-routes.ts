// Puts the guard in front of the threshold-ECDSA routes (signers/node/ecdsa.ts): key generation
// needs the creation authorisation, signing the client's evidence for exactly the digest signed,
// and the round that releases this signer's share consumes it. A presigned sign is authorised
// after the presignature was taken out (ecdsa.ts), the same way; presigning itself releases
// nothing and passes as it is.
import { z } from 'zod';
import { ECDSA_CURVE_OF_SPEC } from '../../../contract/keys/specs.js';
import { signerRoutes } from '../../../contract/signer-rpc/routes.js';
import { RpcError } from '../rpc.js';
import type { PolicyGuard } from './index.js';
import type { PendingKey } from './keys.js';
import { denied } from './state.js';
import type { UseGrant } from './use.js';
import type { AuthorizePresigned } from '../ecdsa.js';

type Route = (body: unknown) => Promise<{ released?: { output: string; keyId?: string }; [k: string]: unknown }>;
const ECDSA_SPECS: Readonly<Record<string, string>> = ECDSA_CURVE_OF_SPEC;
const GRANT_TTL_MS = 120_000;
const { ecdsa } = signerRoutes;

/** The members every guarded ECDSA call carries; the rest is the route's own. */
const sessionOfSchema = z.object({ session: z.string().max(128), keyId: z.string().optional() }).passthrough();

/**
 * The ECDSA routes with the guard in front: `creation` in the keygen start body, `use` in the
 * sign start body; the step that releases records the key, or spends the grant.
 */
export function guardEcdsaRoutes(guard: PolicyGuard, routes: Record<string, Route>): Record<string, Route> {
  const keygens = new Map<string, { pending: PendingKey; expires: number }>();
  const signs = new Map<string, { grant: UseGrant; expires: number }>();
  const sweep = () => {
    const now = Date.now();
    for (const m of [keygens, signs] as Map<string, { expires: number }>[]) for (const [k, v] of m) if (v.expires < now) m.delete(k);
  };
  const split = (body: unknown, member: string) => {
    const b = sessionOfSchema.parse(body);
    const { [member]: extra, ...rest } = b;
    return { session: b.session, keyId: b.keyId ?? '', extra, rest };
  };
  const route = (path: string): Route => {
    const r = routes[path];
    if (!r) throw new Error(`no ECDSA route ${path}`);
    return r;
  };
  return {
    ...routes,
    [ecdsa.keygen.start.path]: async (body) => {
      sweep();
      const { session, keyId, extra, rest } = split(body, 'creation');
      const pending = await guard.authorizeCreate(keyId, extra);
      if (ECDSA_SPECS[pending.keySpec] !== rest.curve) throw new RpcError(403, 'wrong-curve', `a ${pending.keySpec} key is not made on curve ${String(rest.curve)}`);
      const answer = await route(ecdsa.keygen.start.path)(rest);
      keygens.set(session, { pending, expires: Date.now() + GRANT_TTL_MS });
      return answer;
    },
    [ecdsa.keygen.step.path]: async (body) => {
      const { session } = split(body, '');
      const answer = await route(ecdsa.keygen.step.path)(body);
      const k = keygens.get(session);
      if (!answer.released || !k) return answer;
      keygens.delete(session);
      return { ...answer, released: { ...answer.released, ...(await guard.recordCreated(k.pending)) } };
    },
    [ecdsa.sign.start.path]: async (body) => {
      sweep();
      const { session, keyId, extra, rest } = split(body, 'use');
      const grant = await guard.authorizeUse(keyId, extra);
      guard.expectDigest(grant, String(rest.digest));
      const answer = await route(ecdsa.sign.start.path)(rest);
      signs.set(session, { grant, expires: Date.now() + GRANT_TTL_MS });
      return answer;
    },
    [ecdsa.sign.step.path]: async (body) => {
      const { session } = split(body, '');
      const s = signs.get(session);
      if (!s) throw denied(`no authorised signing session ${session}`);
      const answer = await route(ecdsa.sign.step.path)(body);
      if (!answer.released) return answer;
      signs.delete(session);
      return { ...answer, released: { ...answer.released, ...(await guard.release(s.grant, `ecdsa:${session}`)) } };
    },
    [ecdsa.sign.presigned.path]: (body) => {
      const { keyId, extra, rest } = split(body, 'use');
      const authorize: AuthorizePresigned = async (digest) => {
        const grant = await guard.authorizeUse(keyId, extra);
        guard.expectDigest(grant, digest);
        return () => guard.release(grant, `ecdsa:${String(rest.presignature)}`);
      };
      return (route(ecdsa.sign.presigned.path) as (b: unknown, a: AuthorizePresigned) => ReturnType<Route>)(rest, authorize);
    },
  };
}
