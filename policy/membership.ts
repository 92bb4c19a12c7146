// Changes to who may act, under the administrators' quorum: adding and removing principals,
// and adopting the next governance version. What such a proposal carries, and how a new
// principal's secret reaches the parties that verify its requests without the gateway — which
// stores and relays the proposal — being able to read or replace it.
//
// The proposing administrator's tool (`mpchsm principal add`) makes the credentials. The SigV4
// secret is sealed with the signers' envelope (contract/identity/envelope.ts: X25519
// ephemeral-static, HKDF, ChaCha20-Poly1305, signed) to every signer, which verify every
// principal's requests (the gateway verifies none: it asks a signer). The tool seals to the
// public identities it has pinned, never to ones the gateway reports. The sealed copies are
// parameters of the proposal, so every approval covers them, and such a proposal needs its
// proposer's own approval (approvals.ts), which the tool gives only after reading back exactly
// the copies it sealed. So the gateway can neither open a principal's secret nor swap in one it
// knows.
//
// Administrators are not added here: they need an approval key, so a governance update adds
// them (the update carries their credentials, sealed to every signer) and removes them.
import { z } from 'zod';
import { keyPackageSchema } from '../signers/protocols/key-package.js';
import type { Rng } from '../contract/bytes.js';
import { envelopeSchema, openEnvelope, sealEnvelope } from '../contract/identity/envelope.js';
import { identityFromSecrets, parsePublicIdentity, publicIdentitySchema, wipeIdentity, type IdentitySecrets, type PublicIdentity } from '../contract/identity/identity.js';
import type { Approval } from './approvals.js';
import { ADMIN_NAME_RE, governanceDocumentSchema, governanceKeySignatureSchema, type GovernanceDocument, type SignedGovernance } from './governance.js';

/** Envelope party id outside the signers' range: the proposer's tool sends. */
export const PROPOSER_PARTY = 0xffff;
const SECRET_PURPOSE = 'principal-secret';
const SECRET_RE = /^[\x21-\x7e]{20,256}$/;

export const principalNameSchema = z.string().regex(ADMIN_NAME_RE);
export const accessKeyIdSchema = z.string().regex(/^[A-Z0-9]{16,128}$/);

/** One sealed copy of a principal's secret, for the party with id `Party`. */
export const sealedSecretSchema = z.strictObject({ Party: z.number().int().min(1).max(0xffff), Envelope: envelopeSchema });

/** mpchsm:AddPrincipal's parameters (and a new administrator's, inside a governance update). */
export const principalEnrolmentSchema = z
  .strictObject({
    Name: principalNameSchema,
    Role: z.enum(['admin', 'app', 'auditor']),
    AccessKeyId: accessKeyIdSchema,
    /** The gateway's check at C_Login: the SHA-256 of the PIN's login key (policy/evidence.ts). */
    PinLoginHash: z.string().regex(/^[0-9a-f]{64}$/),
    /** The one-time identity that sealed the secret; the approvals vouch for it. */
    Sender: publicIdentitySchema,
    Secrets: z.array(sealedSecretSchema).min(1).max(64),
  })
  .superRefine((e, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (new Set(e.Secrets.map((s) => s.Party)).size !== e.Secrets.length) issue('Secrets', 'one sealed copy per party');
  });
export type PrincipalEnrolment = z.infer<typeof principalEnrolmentSchema>;

/** mpchsm:RemovePrincipal's parameters. */
export const principalRemovalSchema = z.strictObject({ Name: principalNameSchema });

/** mpchsm:RemoveSigner's parameters: the signer's name, as configured at every party. */
export const signerRemovalSchema = z.strictObject({ Name: principalNameSchema });

/**
 * mpchsm:AddSigner's parameters: the new signer's name, party id, public identity (made by its
 * operator; the approvers compare its fingerprint with the operator's, out of band) and the
 * address the gateway reaches it at. Party ids are never reused.
 */
export const signerAdmissionSchema = z.strictObject({
  Name: z.string().regex(/^[a-z0-9-]{1,32}$/),
  Id: z.number().int().min(1).max(255),
  Identity: publicIdentitySchema,
  /** HTTPS only: the gateway reaches signers over mutual TLS with their pinned identity keys. */
  Endpoint: z.string().url().max(256).regex(/^https:\/\//),
  /** The newcomer's attestation from its public file (a TPM quote): required where the governance says requireAttestation. */
  Attestation: z.record(z.string(), z.unknown()).optional(),
});
export type SignerAdmission = z.infer<typeof signerAdmissionSchema>;

/**
 * mpchsm:RestoreSigner's parameters (`mpchsm signer restore`, then `signer rejoin`): a lost
 * signer's party, its name and id unchanged (its shares are bound to the id), comes back with a
 * new identity made on the new host, holding the shares of one backup. The backup is named by
 * what each signer checks against its own records: the cluster, and each share's public package
 * (its SHA-256, packageDigest) — a package that is no longer the key's current one is a stale
 * share, and a stale backup is refused (signers/node/guard/restore.ts).
 */
export const signerRestorationSchema = z.strictObject({
  Name: signerAdmissionSchema.shape.Name,
  Id: signerAdmissionSchema.shape.Id,
  Identity: publicIdentitySchema,
  Endpoint: signerAdmissionSchema.shape.Endpoint,
  /** The restored signer's attestation over its new identity: required where the governance says requireAttestation, as at AddSigner. */
  Attestation: signerAdmissionSchema.shape.Attestation,
  Backup: z.strictObject({
    ClusterId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    Created: z.iso.datetime(),
    /** The backup file's SHA-256 and the custodian it was sealed to: what the approvers compare out of band. */
    Sha256: z.string().regex(/^[0-9a-f]{64}$/),
    Custodian: z.string().regex(/^[0-9a-f]{64}$/),
    Shares: z.array(z.strictObject({ Record: z.string().regex(/^(key|material)\.[a-z0-9.-]{1,120}$/), KeyId: z.string().uuid(), Package: z.string().regex(/^[0-9a-f]{64}$/) })).max(100_000),
  }),
  /**
   * The quorum revives the backup's older sharings: its shares of keys refreshed or reshared
   * since are taken back (the signers refuse them otherwise), and a key whose revived sharing t
   * restored holders hold is refreshed from it (`Revived`: those keys' packages, for the gateway).
   */
  ReviveEpoch: z.literal(true).optional(),
  Revived: z.array(z.strictObject({ KeyId: z.string().uuid(), Package: keyPackageSchema })).max(100_000).optional(),
});
export type SignerRestoration = z.infer<typeof signerRestorationSchema>;

/** mpchsm:UpdateGovernance's parameters; the approvals are signatures over Document. */
export const governanceUpdateSchema = z.strictObject({
  Document: governanceDocumentSchema,
  /** Signatures by administrators whose approval key is new in Document, made with that key. */
  Possession: z.array(governanceKeySignatureSchema).max(64),
  /** Credentials of the administrators Document adds. */
  Principals: z.array(principalEnrolmentSchema).max(64),
});
export type GovernanceUpdate = z.infer<typeof governanceUpdateSchema>;

export class MembershipError extends Error {
  override readonly name = 'MembershipError';
}

/**
 * What is sealed: the SigV4 secret, and for an application or administrator also the request
 * key its PKCS#11 requests are MAC'd with (policy/evidence.ts) — both verified where opened.
 */
export interface PrincipalSecrets {
  secretAccessKey: string;
  pinRequestKey?: string;
}
const principalSecretsSchema = z.strictObject({
  secretAccessKey: z.string().regex(SECRET_RE),
  pinRequestKey: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});

/** Seals `secrets` to each recipient under a one-time sender identity; `rng` gives the keys. */
export function sealPrincipalSecret(o: {
  accessKeyId: string;
  secrets: PrincipalSecrets;
  recipients: readonly { party: number; identity: PublicIdentity }[];
  rng: Rng;
}): Pick<PrincipalEnrolment, 'Sender' | 'Secrets'> {
  const sender = identityFromSecrets('proposer', Uint8Array.from(o.rng(32)), Uint8Array.from(o.rng(32)));
  const payload = new TextEncoder().encode(JSON.stringify(principalSecretsSchema.parse(o.secrets)));
  try {
    const Secrets = o.recipients.map((r) => ({
      Party: r.party,
      Envelope: sealEnvelope({ purpose: SECRET_PURPOSE, session: o.accessKeyId, round: 0, from: PROPOSER_PARTY, to: r.party, payload }, sender, r.identity, o.rng),
    }));
    return { Sender: sender.public, Secrets };
  } finally {
    payload.fill(0);
    wipeIdentity(sender);
  }
}

/** Opens the copy of the principal's secrets sealed to `self` (party id `party`): an application's or administrator's carry its PKCS#11 request key, an auditor's none. */
export function openPrincipalSecret(e: PrincipalEnrolment, self: IdentitySecrets, party: number): PrincipalSecrets {
  const mine = e.Secrets.find((s) => s.Party === party);
  if (!mine) throw new MembershipError(`the proposal carries no copy of ${e.Name}'s secret sealed to this party`);
  let bytes: Uint8Array;
  try {
    bytes = openEnvelope(mine.Envelope, self, parsePublicIdentity(e.Sender), { purpose: SECRET_PURPOSE, session: e.AccessKeyId, round: 0, from: PROPOSER_PARTY, to: party });
  } catch (err) {
    throw new MembershipError(`the copy of ${e.Name}'s secret sealed to this party does not open: ${(err as Error).message}`);
  }
  let secrets: z.infer<typeof principalSecretsSchema> | undefined;
  try {
    secrets = principalSecretsSchema.safeParse(JSON.parse(new TextDecoder().decode(bytes))).data;
  } catch {
    secrets = undefined;
  } finally {
    bytes.fill(0);
  }
  if (!secrets) throw new MembershipError(`the secrets sealed for ${e.Name} are not a secret access key (and request key)`);
  // Applications (CKU_USER) and administrators (CKU_SO) log in over PKCS#11; auditors do not.
  if ((e.Role !== 'auditor') !== (secrets.pinRequestKey !== undefined))
    throw new MembershipError(`${e.Name} is ${e.Role === 'auditor' ? 'an auditor: its sealed secrets carry no' : `${e.Role === 'app' ? 'an application' : 'an administrator'}: its sealed secrets need a`} PKCS#11 request key`);
  return secrets;
}

/** Administrators `next` adds and removes, by name, relative to `current`. */
export function administratorChanges(current: GovernanceDocument, next: GovernanceDocument): { added: string[]; removed: string[] } {
  const names = (g: GovernanceDocument) => new Set(g.administrators.map((a) => a.name));
  const [before, after] = [names(current), names(next)];
  return { added: [...after].filter((n) => !before.has(n)), removed: [...before].filter((n) => !after.has(n)) };
}

/** Why `principals` are not exactly the credentials of the administrators `next` adds, if they are not. */
export function enrolmentProblem(current: GovernanceDocument, next: GovernanceDocument, principals: readonly PrincipalEnrolment[]): string | undefined {
  const { added } = administratorChanges(current, next);
  const enrolled = principals.map((p) => p.Name);
  for (const p of principals) {
    if (p.Role !== 'admin' || !added.includes(p.Name)) return `governance v${next.version} enrols ${p.Name} (${p.Role}), which is not an administrator it adds`;
  }
  const missing = added.filter((n) => !enrolled.includes(n));
  if (missing.length) return `governance v${next.version} adds administrators without their credentials: ${missing.join(', ')}`;
  if (new Set(enrolled).size !== enrolled.length) return `governance v${next.version} enrols an administrator twice`;
  return undefined;
}

/** The governance chain's next link: the proposed document with its approvals and proofs of possession. */
export const signedUpdate = (u: GovernanceUpdate, approvals: readonly Approval[]): SignedGovernance => ({
  document: u.Document,
  signatures: [...approvals.map(({ proposalId: _, ...signature }) => signature), ...u.Possession],
});
