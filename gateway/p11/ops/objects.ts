// The token's objects: C_FindObjects over every object a principal sees; certificates stored
// and removed (C_CreateObject, C_DestroyObject); a key's deletion scheduled and its label
// changed (a KMS alias) through the KMS facade, exactly as a KMS request would.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { CKA, CKC_X_509, CKO, CKR, P11Error } from '../../../contract/pkcs11/ck.js';
import { isTrue } from '../../../contract/pkcs11/keygen.js';
import type { P11LabelEvidence } from '../../../policy/admin-evidence.js';
import { authorize } from '../../kms/authorize.js';
import { OpContext } from '../../kms/context.js';
import { executeOperation } from '../../kms/execute.js';
import { Arns } from '../../kms/ids.js';
import { parseInput } from '../../kms/input.js';
import { OPERATIONS } from '../../kms/ops/index.js';
import type { Principal } from '../../principals.js';
import { certificateObject, encodeObject, isPublic, matches } from '../objects.js';
import { labelEvidence, proofSchema } from '../proof.js';
import { bytes, p11Operation, templateSchema, type P11Deps } from '../request.js';
import { requireRole } from '../roles.js';
import { allObjects, ckaIdOf, keyOf, keyUid, labelsOf, MAX_ID, objectsOfKey } from '../token.js';
import { parseCertificate } from '../x509.js';
import { importRsaKey, keyNaming } from './keygen.js';

const MAX_LABEL = 256;

/**
 * C_FindObjectsInit: a logged-in principal searches every object; a public session (no login, as
 * on a hardware token before C_Login) only the public ones (CKA_PRIVATE false: public keys and
 * certificates not marked private), never a private key. A public search costs what any request
 * before a login may (the listener's frame, connection and idle limits) and is counted, not
 * recorded one by one (p11/unauthenticated.ts).
 */
export const find = p11Operation({ login: 'public', args: z.tuple([templateSchema]) }, (deps, { abi, principal, args: [template] }) => {
  if (principal) authorize(principal, 'ListKeys');
  const visible = principal ? allObjects(deps, abi) : allObjects(deps, abi).filter(isPublic);
  return [visible.filter((o) => matches(o, template)).map(encodeObject)];
});

/** Attributes a certificate template may carry; the DER-derived ones are recomputed. */
const CERT_TEMPLATE_ATTRIBUTES = new Set<number>([
  CKA.CLASS, CKA.TOKEN, CKA.PRIVATE, CKA.LABEL, CKA.ID, CKA.VALUE, CKA.CERTIFICATE_TYPE, CKA.SUBJECT, CKA.ISSUER,
  CKA.SERIAL_NUMBER, CKA.TRUSTED, CKA.CERTIFICATE_CATEGORY, CKA.MODIFIABLE, CKA.COPYABLE, CKA.DESTROYABLE,
  CKA.START_DATE, CKA.END_DATE, CKA.URL, CKA.CHECK_VALUE, CKA.JAVA_MIDP_SECURITY_DOMAIN, CKA.HASH_OF_SUBJECT_PUBLIC_KEY,
  CKA.HASH_OF_ISSUER_PUBLIC_KEY, CKA.PUBLIC_KEY_INFO, CKA.APPLICATION,
]);

export const createObject = p11Operation({ login: 'principal', args: z.tuple([templateSchema]) }, async (deps, { abi, principal, args: [template], log }) => {
  const t = new Map(template);
  const cls = t.has(CKA.CLASS) ? abi.readUlong(t.get(CKA.CLASS)!) : undefined;
  if (cls === undefined) throw new P11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_CLASS is required');
  if (cls === BigInt(CKO.PRIVATE_KEY)) return [encodeObject(await importRsaKey(deps, abi, principal, t, log))];
  if (cls === BigInt(CKO.PUBLIC_KEY)) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'a token public key comes with its private key (import the private key); a public key alone can be a session object');
  if (cls !== BigInt(CKO.CERTIFICATE)) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'the token stores certificates only (other objects can be session objects)');
  const certType = t.get(CKA.CERTIFICATE_TYPE);
  if (certType && abi.readUlong(certType) !== BigInt(CKC_X_509)) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'only X.509 certificates (CKC_X_509)');
  for (const type of t.keys()) if (!CERT_TEMPLATE_ATTRIBUTES.has(type)) throw new P11Error(CKR.ATTRIBUTE_TYPE_INVALID, `attribute 0x${type.toString(16)} is not a certificate attribute`);
  const value = t.get(CKA.VALUE);
  if (!value?.length) throw new P11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_VALUE (the DER certificate) is required');
  const parts = parseCertificate(value);
  if (isTrue(t.get(CKA.TRUSTED)) && principal.role !== 'admin') throw new P11Error(CKR.ATTRIBUTE_READ_ONLY, 'only a key administrator (CKU_SO) may mark a certificate trusted');
  const category = t.has(CKA.CERTIFICATE_CATEGORY) ? Number(abi.readUlong(t.get(CKA.CERTIFICATE_CATEGORY)!) ?? 99n) : 0;
  if (!(category >= 0 && category <= 3)) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, 'CKA_CERTIFICATE_CATEGORY must be 0..3');
  const label = t.get(CKA.LABEL) ?? Buffer.alloc(0);
  if (label.length > MAX_LABEL) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `CKA_LABEL longer than ${MAX_LABEL} bytes`);
  // Without a CKA_ID, a certificate takes the ID of the key it certifies, which pairs them.
  let id = t.get(CKA.ID);
  if (id === undefined) {
    const key = deps.cluster.keys.list().find((k) => Buffer.from(k.publicKey, 'base64').equals(parts.spki));
    id = key ? Buffer.from(ckaIdOf(deps, key), 'hex') : Buffer.alloc(0);
  }
  if (id.length > MAX_ID) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `CKA_ID longer than ${MAX_ID} bytes`);
  const stored = {
    id: randomUUID(),
    value: value.toString('base64'),
    label: label.toString('utf8'),
    ckaId: id.toString('hex'),
    private: isTrue(t.get(CKA.PRIVATE)),
    trusted: isTrue(t.get(CKA.TRUSTED)),
    category,
    createdBy: principal.name,
    creationDate: Date.now(),
  };
  await deps.store.exclusive(() => deps.store.addCertificate(stored));
  deps.log.info({ certificate: stored.id, principal: principal.name }, 'pkcs11 certificate stored');
  return [encodeObject(certificateObject(stored, abi))];
});

export const destroyObject = p11Operation({ login: 'principal', args: z.tuple([bytes]) }, async (deps, { principal, args: [uid], log }) => {
  const name = uid.toString('utf8');
  if (keyUid.test(name)) {
    // Either object of a key stands for the key: destroying it schedules the key's deletion
    // (KMS's pending window applies, and the governance's quorum: then it is a proposal).
    const key = keyOf(deps, uid, 'any', log);
    requireRole(principal, 'ScheduleKeyDeletion', 'destroying a key (KMS ScheduleKeyDeletion)');
    await runKms(deps, principal, 'ScheduleKeyDeletion', { KeyId: key.keyId });
    deps.log.info({ keyId: key.keyId, principal: principal.name }, 'pkcs11 key deletion scheduled');
    return [];
  }
  const m = /^c:([0-9a-f-]{36})$/.exec(name);
  if (!m || !(await deps.store.exclusive(() => deps.store.removeCertificate(m[1]!)))) throw new P11Error(CKR.OBJECT_HANDLE_INVALID, 'no such object');
  deps.log.info({ certificate: m[1], principal: principal.name }, 'pkcs11 certificate removed');
  return [];
});

/**
 * Runs a KMS operation as `principal`, exactly as the KMS API would (authorization, the
 * governance's quorum, forwarding the change to the signers). One under quorum becomes a
 * proposal and is answered CKR_FUNCTION_REJECTED naming it.
 */
async function runKms(deps: P11Deps, principal: Principal, operation: string, parameters: Record<string, unknown>, evidence?: P11LabelEvidence): Promise<void> {
  const op = OPERATIONS[operation]!;
  const ctx = new OpContext(deps, deps.kmsState, new Arns(deps.config.region, deps.config.account), principal, operation, { parameters, ...(evidence ? { evidence } : {}) });
  await executeOperation(ctx, op, parseInput(op.input, parameters, operation));
}

/** C_SetAttributeValue's arguments: the object, the template, and (a module of this version) the administrator's proof. */
const setAttributesArgs = z.union([z.tuple([bytes, templateSchema]), z.tuple([bytes, templateSchema, proofSchema])]);


/**
 * C_SetAttributeValue on a key: only CKA_LABEL, which is a KMS alias. A new label becomes an
 * alias of the key (KMS CreateAlias) and its CKA_LABEL; the key keeps its other aliases (a
 * KMS client may use them) and answers to each in searches. Answers the key's objects.
 */
export const setAttributes = p11Operation({ login: 'principal', args: setAttributesArgs }, async (deps, { abi, principal, args: [uid, template, proof], log }) => {
  if (!keyUid.test(uid.toString('utf8'))) throw new P11Error(CKR.ACTION_PROHIBITED, 'only keys are modifiable (their CKA_LABEL); certificates are not');
  const key = keyOf(deps, uid, 'any', log);
  requireRole(principal, 'CreateAlias', "changing a key's label (a KMS alias)");
  for (const [type] of template) if (type !== CKA.LABEL) throw new P11Error(CKR.ATTRIBUTE_READ_ONLY, `attribute 0x${type.toString(16)} of a key cannot be changed; CKA_LABEL can`);
  const label = template.at(-1)?.[1]; // every entry is a CKA_LABEL: the last one counts
  if (label !== undefined) {
    if (label.length === 0) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, "a key's CKA_LABEL is a KMS alias name and cannot be empty");
    const name = label.toString('utf8');
    const aliases = deps.kmsState.aliases().filter((a) => a.keyId === key.keyId).map((a) => a.name.slice('alias/'.length));
    if (!labelsOf(deps, key, aliases).includes(name)) {
      const { alias } = keyNaming(deps, label, undefined);
      // The module's proof is the administrator's request, which each signer checks before the alias.
      const evidence = proof?.length ? labelEvidence(principal, uid, template, proof) : undefined;
      await runKms(deps, principal, 'CreateAlias', { AliasName: alias!, TargetKeyId: key.keyId }, evidence);
    }
    await deps.store.exclusive(() => deps.store.setKeyMeta(key.keyId, { label: name }));
    deps.log.info({ keyId: key.keyId, principal: principal.name }, 'pkcs11 key relabelled');
  }
  return [objectsOfKey(deps, abi, key.keyId).map(encodeObject)];
});
