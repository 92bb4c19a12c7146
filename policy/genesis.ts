// The genesis: a cluster's founding document (shared/CONTRACT.md, "Deployment across hosts").
// Each party makes its own secrets and writes a public file — an administrator's approval key
// (NAME.admin.json), a signer's identity and endpoint (NAME.signer.json), the gateway's identity,
// endpoints and PIN parameters (gateway.json). `genesis create` gathers them with the threshold
// and the governance quorum; every founding administrator then signs the document, adding the
// copy of their own KMS secrets sealed to each signer (the gateway never sees them). A signer
// starts only on a genesis every founding administrator signed, which lists it, and only on the
// one it was founded on; later membership changes go through governance.
import { z } from 'zod';
import { canonicalDigest, DOMAINS } from '../contract/canonical.js';
import { fromHex, toHex } from '../contract/bytes.js';
import { ed25519PublicKey, ed25519Sign, ed25519Verify } from '../contract/identity/curve25519.js';
import { parsePublicIdentity, publicIdentitySchema, type PublicIdentity } from '../contract/identity/identity.js';
import { readJsonFile } from '../contract/io/json-file.js';
import { pinKdfSchema, type PinKdf } from './evidence.js';
import {
  ADMIN_NAME_RE,
  DEFAULT_QUORUM_ACTIONS,
  defaultGovernance,
  governanceDigest,
  governanceDocumentSchema,
  signatureHexSchema,
  verifyGenesis,
  type SignedGovernance,
} from './governance.js';
import { principalEnrolmentSchema, type PrincipalEnrolment } from './membership.js';

export class GenesisError extends Error {
  override readonly name = 'GenesisError';
}

const hex32 = z.string().regex(/^[0-9a-f]{64}$/);
const hostPort = z.string().regex(/^[A-Za-z0-9.-]{1,253}:\d{1,5}$/, 'HOST:PORT');

/** `admin init`'s public file: the approval key, signed by itself (proof of possession). */
export const adminFileSchema = z.strictObject({
  Admin: z.literal('mpchsm-admin-v1'),
  Name: z.string().regex(ADMIN_NAME_RE),
  ApprovalKey: hex32,
  Possession: signatureHexSchema,
});
export type AdminFile = z.infer<typeof adminFileSchema>;

/** `signer init`'s public file. */
export const signerFileSchema = z.strictObject({
  Signer: z.literal('mpchsm-signer-v1'),
  Name: z.string().regex(/^[a-z0-9-]{1,32}$/),
  /** Where the gateway reaches it: mutual TLS with the identity key. */
  Endpoint: z.string().regex(/^https:\/\/[A-Za-z0-9.-]{1,253}:\d{1,5}$/),
  Identity: publicIdentitySchema,
  Seal: z.enum(['software', 'tpm']),
  Attestation: z.record(z.string(), z.unknown()).optional(),
});
export type SignerFile = z.infer<typeof signerFileSchema>;

/** `gateway init`'s public file. */
export const gatewayFileSchema = z.strictObject({
  Gateway: z.literal('mpchsm-gateway-v1'),
  Identity: publicIdentitySchema,
  /** The KMS endpoint's URL; https when the gateway was given a certificate. */
  Kms: z.string().regex(/^https?:\/\/[A-Za-z0-9.-]{1,253}:\d{1,5}$/),
  /** The KMS endpoint's certificate (PEM), for clients to trust. */
  Certificate: z.string().max(64 * 1024).optional(),
  Pkcs11: hostPort,
  Region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/),
  Account: z.string().regex(/^\d{12}$/),
  /** The cluster's PIN key derivation: principals derive their PIN's keys with it. */
  PinKdf: pinKdfSchema,
});
export type GatewayFile = z.infer<typeof gatewayFileSchema>;

export const genesisDocumentSchema = z.strictObject({
  Version: z.literal('mpchsm-genesis-v1'),
  ClusterId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  Threshold: z.number().int().min(1).max(32),
  Gateway: gatewayFileSchema,
  Signers: z.array(signerFileSchema.extend({ Id: z.number().int().min(1).max(255) })).min(1).max(32),
  Administrators: z.array(adminFileSchema).min(1).max(64),
  Governance: governanceDocumentSchema,
});
export type GenesisDocument = z.infer<typeof genesisDocumentSchema>;

/** One founding administrator's signature: over the document and their sealed KMS secrets. */
export const genesisSignatureSchema = z.strictObject({
  Admin: z.string().regex(ADMIN_NAME_RE),
  Enrolment: principalEnrolmentSchema,
  /** Over the governance document: version 1 of the governance chain every signer keeps. */
  Governance: signatureHexSchema,
  Signature: signatureHexSchema,
});
export type GenesisSignature = z.infer<typeof genesisSignatureSchema>;

export const genesisFileSchema = z.strictObject({ Genesis: genesisDocumentSchema, Signatures: z.array(genesisSignatureSchema).max(64) });
export type GenesisFile = z.infer<typeof genesisFileSchema>;

/** What a verified genesis founds. */
export interface Genesis {
  /** Hex digest of the document: the founding every party compares. */
  digest: string;
  clusterId: string;
  region: string;
  account: string;
  threshold: number;
  pinKdf: PinKdf;
  gateway: { identity: PublicIdentity; kms: string; pkcs11: string; certificate?: string };
  signers: { id: number; name: string; endpoint: string; identity: PublicIdentity; attestation?: Record<string, unknown> }[];
  administrators: { name: string; approvalKey: string }[];
  /** Version 1 of the governance chain, signed by every founding administrator. */
  governance: SignedGovernance;
  /** Each founding administrator's enrolment: KMS access key, PIN hash, secrets sealed to every signer. */
  enrolments: PrincipalEnrolment[];
}

const possessionDigest = (name: string, key: string) => canonicalDigest(DOMAINS.adminFile, { Name: name, ApprovalKey: key });
const documentDigest = (doc: GenesisDocument) => canonicalDigest(DOMAINS.genesis, doc);
const signatureDigest = (doc: GenesisDocument, enrolment: PrincipalEnrolment) =>
  canonicalDigest(DOMAINS.genesis, { Genesis: toHex(documentDigest(doc)), Enrolment: enrolment });

/** An administrator's public file for `approvalSecret`. */
export function adminFile(name: string, approvalSecret: Uint8Array): AdminFile {
  const key = toHex(ed25519PublicKey(approvalSecret));
  return { Admin: 'mpchsm-admin-v1', Name: name, ApprovalKey: key, Possession: toHex(ed25519Sign(possessionDigest(name, key), approvalSecret)) };
}

const parse = <T>(schema: z.ZodType<T>, doc: unknown, what: string): T => {
  const r = schema.safeParse(doc);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  throw new GenesisError(`${what}: ${i.path.join('.') || '(document)'}: ${i.message}`);
};

/** `genesis create`: the unsigned document. Signer party ids follow the order given. */
export function createGenesis(o: { clusterId: string; threshold: number; quorum?: number; requireAttestation?: boolean; gateway: unknown; signers: unknown[]; admins: unknown[] }): GenesisFile {
  const gateway = parse(gatewayFileSchema, o.gateway, 'the gateway file');
  const signers = o.signers.map((s, i) => ({ ...parse(signerFileSchema, s, `signer file ${i + 1}`), Id: i + 1 }));
  const admins = o.admins.map((a, i) => parse(adminFileSchema, a, `administrator file ${i + 1}`));
  const governance = defaultGovernance(o.clusterId, admins.map((a) => ({ name: a.Name, approvalKey: a.ApprovalKey })));
  if (o.quorum !== undefined) {
    if (o.quorum < 1 || o.quorum > admins.length) throw new GenesisError(`--quorum is between 1 and the ${admins.length} administrators, not ${o.quorum}`);
    for (const a of DEFAULT_QUORUM_ACTIONS) governance.quorum[a] = o.quorum;
  }
  if (o.requireAttestation) governance.requireAttestation = true;
  const file: GenesisFile = {
    Genesis: { Version: 'mpchsm-genesis-v1', ClusterId: o.clusterId, Threshold: o.threshold, Gateway: gateway, Signers: signers, Administrators: admins, Governance: governance },
    Signatures: [],
  };
  checkDocument(parse(genesisFileSchema, file, 'the genesis').Genesis);
  return file;
}

/** `genesis sign`: `admin`'s signature added (replacing an earlier one of theirs). */
export function signGenesis(file: GenesisFile, admin: string, approvalSecret: Uint8Array, enrolment: PrincipalEnrolment): GenesisFile {
  const doc = file.Genesis;
  const listed = doc.Administrators.find((a) => a.Name === admin);
  if (!listed) throw new GenesisError(`${admin} is not a founding administrator of this genesis`);
  if (listed.ApprovalKey !== toHex(ed25519PublicKey(approvalSecret))) throw new GenesisError(`the genesis lists another approval key for ${admin}`);
  const signature: GenesisSignature = {
    Admin: admin,
    Enrolment: enrolment,
    Governance: toHex(ed25519Sign(governanceDigest(doc.Governance), approvalSecret)),
    Signature: toHex(ed25519Sign(signatureDigest(doc, enrolment), approvalSecret)),
  };
  return { Genesis: doc, Signatures: [...file.Signatures.filter((s) => s.Admin !== admin), signature] };
}

/** The members' consistency: unique names, ids and keys; governance naming exactly the founding administrators. */
function checkDocument(doc: GenesisDocument): void {
  const fail = (m: string) => {
    throw new GenesisError(m);
  };
  if (doc.Threshold > doc.Signers.length) fail(`threshold ${doc.Threshold} exceeds the ${doc.Signers.length} signers`);
  const unique = (values: string[], what: string) => {
    const dup = values.find((v, i) => values.indexOf(v) !== i);
    if (dup !== undefined) fail(`${what} ${dup.slice(0, 64)} appears twice`);
  };
  unique(doc.Signers.map((s) => s.Name), 'signer name');
  unique(doc.Signers.map((s) => String(s.Id)), 'signer id');
  unique(doc.Signers.map((s) => s.Endpoint), 'signer endpoint');
  unique([doc.Gateway.Identity.signPublicKey, ...doc.Signers.map((s) => s.Identity.signPublicKey)], 'identity key');
  unique(doc.Administrators.map((a) => a.Name), 'administrator');
  try {
    parsePublicIdentity(doc.Gateway.Identity);
    for (const s of doc.Signers) {
      const id = parsePublicIdentity(s.Identity);
      if (id.name !== s.Name) fail(`signer ${s.Name}'s identity is named ${id.name}`);
    }
  } catch (e) {
    if (e instanceof GenesisError) throw e;
    fail((e as Error).message);
  }
  for (const a of doc.Administrators)
    if (!ed25519Verify(fromHex(a.Possession), possessionDigest(a.Name, a.ApprovalKey), fromHex(a.ApprovalKey))) fail(`administrator ${a.Name}'s file is not signed by its approval key`);
  const g = doc.Governance;
  if (g.clusterId !== doc.ClusterId || g.version !== 1) fail('the governance is not version 1 of this cluster');
  const listed = (xs: { name: string; approvalKey: string }[]) => JSON.stringify(xs.map((a) => [a.name, a.approvalKey]));
  if (listed(g.administrators) !== listed(doc.Administrators.map((a) => ({ name: a.Name, approvalKey: a.ApprovalKey }))))
    fail('the governance does not name exactly the founding administrators');
}

/**
 * Verifies a genesis: the document's consistency and each signature present. `complete` (what
 * every party starts on) also requires every founding administrator's.
 */
export function verifyGenesisFile(raw: unknown, opts: { complete: boolean } = { complete: true }): Genesis {
  const file = parse(genesisFileSchema, raw, 'the genesis');
  const doc = file.Genesis;
  checkDocument(doc);
  const ids = doc.Signers.map((s) => s.Id).sort((a, b) => a - b);
  for (const s of file.Signatures) {
    const admin = doc.Administrators.find((a) => a.Name === s.Admin);
    if (!admin) throw new GenesisError(`the genesis is signed by ${s.Admin}, who is not a founding administrator`);
    if (!ed25519Verify(fromHex(s.Signature), signatureDigest(doc, s.Enrolment), fromHex(admin.ApprovalKey)))
      throw new GenesisError(`${s.Admin}'s signature does not verify: the genesis was changed after it was signed`);
    const e = s.Enrolment;
    if (e.Name !== s.Admin || e.Role !== 'admin') throw new GenesisError(`${s.Admin}'s enrolment is not their own as an administrator`);
    if (JSON.stringify(e.Secrets.map((x) => x.Party).sort((a, b) => a - b)) !== JSON.stringify(ids)) throw new GenesisError(`${s.Admin}'s secrets are not sealed to exactly the genesis signers`);
  }
  const signedBy = new Set(file.Signatures.map((s) => s.Admin));
  if (signedBy.size !== file.Signatures.length) throw new GenesisError('an administrator signed twice');
  const missing = doc.Administrators.filter((a) => !signedBy.has(a.Name)).map((a) => a.Name);
  if (opts.complete && missing.length > 0) throw new GenesisError(`the genesis lacks the signature of founding administrator${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  const governance: SignedGovernance = { document: doc.Governance, signatures: file.Signatures.map((s) => ({ admin: s.Admin, signature: s.Governance })) };
  if (opts.complete) {
    const g = verifyGenesis(governance);
    if (!g.ok) throw new GenesisError(g.reason);
  }
  const gw = doc.Gateway;
  return {
    digest: toHex(documentDigest(doc)),
    clusterId: doc.ClusterId,
    region: gw.Region,
    account: gw.Account,
    threshold: doc.Threshold,
    pinKdf: gw.PinKdf,
    gateway: { identity: parsePublicIdentity(gw.Identity), kms: gw.Kms, pkcs11: gw.Pkcs11, ...(gw.Certificate ? { certificate: gw.Certificate } : {}) },
    signers: doc.Signers.map((s) => ({ id: s.Id, name: s.Name, endpoint: s.Endpoint, identity: parsePublicIdentity(s.Identity), ...(s.Attestation ? { attestation: s.Attestation } : {}) })),
    administrators: doc.Administrators.map((a) => ({ name: a.Name, approvalKey: a.ApprovalKey })),
    governance,
    enrolments: file.Signatures.map((s) => s.Enrolment),
  };
}

/** Reads and verifies a genesis file every founding administrator signed; errors name the file. */
export function readGenesis(file: string): Genesis {
  try {
    return verifyGenesisFile(readJsonFile(file, z.unknown()));
  } catch (e) {
    if (e instanceof GenesisError) throw new GenesisError(`${file}: ${e.message}`);
    throw e;
  }
}
