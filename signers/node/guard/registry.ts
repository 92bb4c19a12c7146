// The principal registry: every principal's name, role, access key id and SigV4 secret, and an
// application's or administrator's PKCS#11 PIN request key, with which this signer checks their
// requests itself (and authenticates SigV4 requests for the gateway, which holds no secret).
// Enrolled at bootstrap; since, applications and auditors are added and removed only by approved
// proposals (a secret arrives sealed to this signer: policy/membership.ts), administrators only
// by a governance update (governance.ts).
import { fromHex } from '../../../contract/bytes.js';
import { signerRoutes } from '../../../contract/signer-rpc/routes.js';
import { uuidSchema } from '../../../contract/signer-rpc/relayed.js';
import {
  forwardedRequest,
  MembershipError,
  openPrincipalSecret,
  principalEnrolmentSchema,
  principalRemovalSchema,
  sigv4EvidenceSchema,
  SigV4Error,
  verifySigV4,
  type AuthorizeInput,
  type PrincipalEnrolment,
  type Proposal,
} from '../../../policy/index.js';
import type { RequestCheck } from '../admin-evidence.js';
import { RpcError } from '../rpc.js';
import { denied, firstIssue, json, REGISTRY, registrySchema, type GuardState, type RegisteredPrincipal } from './state.js';

/** Rebuilds the lookups of principals by access key id and by name. */
export function indexPrincipals(s: GuardState): void {
  s.byAccessKey.clear();
  s.byName.clear();
  for (const p of s.registry.principals) {
    s.byAccessKey.set(p.accessKeyId, p);
    s.byName.set(p.name, p);
  }
}

/** A principal as this signer keeps it, with its secrets opened from the copy sealed here. */
export function registered(s: GuardState, e: PrincipalEnrolment): RegisteredPrincipal {
  try {
    return { name: e.Name, role: e.Role, accessKeyId: e.AccessKeyId, pinLoginHash: e.PinLoginHash, ...openPrincipalSecret(e, s.self.identity, s.self.party) };
  } catch (err) {
    if (err instanceof MembershipError) throw denied(err.message);
    throw err;
  }
}

export async function saveRegistry(s: GuardState, principals: RegisteredPrincipal[]): Promise<void> {
  const r = registrySchema.safeParse({ ...s.registry, principals });
  if (!r.success) throw denied(`the principal registry would be invalid: ${r.error.issues[0]?.message}`);
  await s.store.put(REGISTRY, json(r.data));
  s.registry = r.data;
  indexPrincipals(s);
}

/** A registered principal, as `authorize` takes it. */
export function principalInput(s: GuardState, name: string): AuthorizeInput['principal'] {
  const p = s.byName.get(name);
  if (!p) throw denied(`${name} is not a principal registered at this signer`);
  return { name: p.name, role: p.role, arn: `arn:aws:iam::${s.registry.account}:user/${p.name}` };
}

/** How this signer checks a principal's request: its region, its registry's secrets, key references of this cluster. */
export function requestCheck(s: GuardState): RequestCheck {
  return {
    region: s.registry.region,
    secretFor: (id) => {
      const p = s.byAccessKey.get(id);
      return p ? { principal: p.name, secret: p.secretAccessKey } : undefined;
    },
    requestKeyFor: (name) => {
      const k = s.byName.get(name)?.pinRequestKey;
      return k ? fromHex(k) : undefined;
    },
    keyIdOf: (ref) => {
      const prefix = `arn:aws:kms:${s.registry.region}:${s.registry.account}:key/`;
      const id = ref.startsWith(prefix) ? ref.slice(prefix.length) : ref;
      return uuidSchema.safeParse(id).success ? id : undefined;
    },
  };
}

const sigv4AuthSchema = signerRoutes.auth.sigv4.request.extend({ request: sigv4EvidenceSchema });

/**
 * Verifies an application's SigV4 request for the gateway, which does not hold application
 * secrets. Answers the principal, or refuses with the AWS error the client should get.
 */
export async function authenticate(s: GuardState, body: unknown): Promise<{ principal: string; accessKeyId: string }> {
  const req = sigv4AuthSchema.parse(body);
  try {
    const v = await verifySigV4(forwardedRequest(req.request), { ...requestCheck(s), now: Date.now() });
    return { principal: v.principal, accessKeyId: v.accessKeyId };
  } catch (err) {
    if (err instanceof SigV4Error) throw new RpcError(403, err.type, err.message);
    throw err;
  }
}

/** AddPrincipal, under an approved proposal: an application or auditor. Answers its name. */
export async function addPrincipal(s: GuardState, proposal: Proposal): Promise<string> {
  const r = principalEnrolmentSchema.safeParse(proposal.parameters);
  if (!r.success) throw denied(`malformed principal in proposal ${proposal.id}: ${firstIssue(r.error)}`);
  const e = r.data;
  if (e.Role === 'admin') throw denied(`${e.Name}: administrators are added by a governance update, which gives them an approval key`);
  if (s.byName.has(e.Name)) throw denied(`principal ${e.Name} already exists at this signer`);
  if (s.byAccessKey.has(e.AccessKeyId)) throw denied(`access key id ${e.AccessKeyId} is already in use at this signer`);
  await saveRegistry(s, [...s.registry.principals, registered(s, e)]);
  return e.Name;
}

/** RemovePrincipal, under an approved proposal: an application or auditor. Answers its name. */
export async function removePrincipal(s: GuardState, proposal: Proposal): Promise<string> {
  const r = principalRemovalSchema.safeParse(proposal.parameters);
  if (!r.success) throw denied(`malformed removal in proposal ${proposal.id}: ${firstIssue(r.error)}`);
  const p = s.byName.get(r.data.Name);
  if (!p) throw denied(`${r.data.Name} is not a principal registered at this signer`);
  if (p.role === 'admin') throw denied(`${p.name} is an administrator: administrators are removed by a governance update`);
  await saveRegistry(s, s.registry.principals.filter((x) => x.name !== p.name));
  return p.name;
}
