// Key generation (C_GenerateKeyPair, by distributed key generation or the RSA ceremony) and the
// import of a legacy RSA key (C_CreateObject), by a key administrator: the key's names —
// CKA_LABEL as a KMS alias, CKA_ID — checked and reserved before the slow part, the
// governance's decision (under quorum, a proposal that runs KMS CreateKey once approved).
import { createPrivateKey } from 'node:crypto';
import { z } from 'zod';
import type { KeySpec } from '../../../contract/keys/specs.js';
import { CKA, CKK, CKR, P11Error } from '../../../contract/pkcs11/ck.js';
import { isFalse, isTrue, keyPairRequested, pick, RSA_BITS, usageOf } from '../../../contract/pkcs11/keygen.js';
import type { Abi } from '../../../contract/pkcs11/wire.js';
import type { Creation } from '../../../contract/signer-rpc/authority.js';
import { ClusterError } from '../../cluster-outcome.js';
import { gatewayPolicy } from '../../governance.js';
import type { KeyRecord } from '../../keys.js';
import { ApprovalRequired, authorize } from '../../kms/authorize.js';
import { checkAliasName } from '../../kms/ids.js';
import type { Principal } from '../../principals.js';
import { encodeObject, type P11Object } from '../objects.js';
import { keygenEvidence, proofSchema } from '../proof.js';
import { p11Operation, templateSchema, uint, type P11Deps, type RequestLog } from '../request.js';
import { requireRole } from '../roles.js';
import { ckaIdOf, MAX_ID, objectsOfKey, TAG_ID, TAG_LABEL } from '../token.js';

/**
 * How a new key is named: CKA_LABEL becomes the KMS alias `alias/<label>` (shared with the KMS
 * facade), CKA_ID — when given — is kept beside the key in place of the UUID's bytes. Both are
 * checked, and reserved against concurrent creations, before the (slow) key is made.
 */
interface KeyNaming {
  alias?: string;
  ckaId?: string;
}
/** Aliases and CKA_IDs promised to key creations still running. */
const pendingAliases = new Set<string>();
const pendingIds = new Set<string>();

export function keyNaming(deps: P11Deps, label: Buffer | undefined, id: Buffer | undefined): KeyNaming {
  const naming: KeyNaming = {};
  if (label?.length) {
    const alias = `alias/${label.toString('utf8')}`;
    try {
      checkAliasName(alias);
    } catch (e) {
      throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `CKA_LABEL becomes the KMS alias ${alias}: ${(e as Error).message}`);
    }
    const tagged = deps.cluster.keys.list().some((k) => k.tags.some((t) => t.TagKey === TAG_LABEL && t.TagValue === alias.slice('alias/'.length)));
    if (pendingAliases.has(alias) || deps.kmsState.alias(alias) || tagged) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `CKA_LABEL: the alias ${alias} names another key`);
    naming.alias = alias;
  }
  if (id?.length) {
    if (id.length > MAX_ID) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `CKA_ID longer than ${MAX_ID} bytes`);
    const ckaId = id.toString('hex');
    if (pendingIds.has(ckaId) || deps.cluster.keys.list().some((k) => ckaIdOf(deps, k) === ckaId)) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, 'another key already has this CKA_ID');
    naming.ckaId = ckaId;
  }
  return naming;
}

/** Makes (or imports) a key under its names; returns its [public, private] objects. */
async function createNamedKey(
  deps: P11Deps,
  abi: Abi,
  log: RequestLog,
  naming: KeyNaming,
  req: { keySpec: KeySpec; keyUsage: KeyRecord['keyUsage']; description: string; pkcs8Pem?: string; creation?: Creation },
): Promise<[P11Object, P11Object]> {
  if (naming.alias) pendingAliases.add(naming.alias);
  if (naming.ckaId) pendingIds.add(naming.ckaId);
  try {
    let record: KeyRecord;
    try {
      const { creation, ...key } = req;
      record = await deps.cluster.createKey({ ...key, trace: log.trace, ...(creation ? { evidence: creation } : {}) });
    } catch (e) {
      if (e instanceof ClusterError && e.code === 'unsupported') throw new P11Error(CKR.DOMAIN_PARAMS_INVALID, e.message);
      throw e;
    }
    log.keyId = record.keyId;
    log.output = 'key';
    const ckaId = naming.ckaId;
    if (ckaId) await deps.store.exclusive(() => deps.store.setKeyMeta(record.keyId, { ckaId }));
    if (naming.alias) {
      const alias = naming.alias;
      await deps.kmsState.exclusive(async () => {
        if (deps.kmsState.alias(alias)) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `key ${record.keyId} was made, but the alias ${alias} was taken meanwhile`);
        await deps.kmsState.putAlias(alias, record.keyId);
      });
    }
    const objects = objectsOfKey(deps, abi, record.keyId);
    return [objects.find((o) => o.uid.endsWith(':pub'))!, objects.find((o) => o.uid.endsWith(':priv'))!];
  } finally {
    if (naming.alias) pendingAliases.delete(naming.alias);
    if (naming.ckaId) pendingIds.delete(naming.ckaId);
  }
}

/** C_GenerateKeyPair's arguments: the mechanism, both templates, and (a module of this version) the administrator's proof. */
const keygenArgs = z.union([z.tuple([uint, templateSchema, templateSchema]), z.tuple([uint, templateSchema, templateSchema, proofSchema])]);

export const generateKeyPair = p11Operation({ login: 'principal', args: keygenArgs, role: { operation: 'CreateKey', what: 'key generation' } }, async (deps, { abi, principal, args: [mech, pubT, privT, proof], log }) => {
  const pub = new Map(pubT);
  const priv = new Map(privT);
  if (isFalse(pub.get(CKA.TOKEN)) || isFalse(priv.get(CKA.TOKEN))) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'mpchsm keys are token objects (CKA_TOKEN false cannot be honoured)');
  if (isTrue(priv.get(CKA.EXTRACTABLE)) || isFalse(priv.get(CKA.SENSITIVE))) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'mpchsm private keys are sensitive and never extractable');
  const { keySpec, keyUsage } = keyPairRequested(mech, pub, priv, abi);
  const naming = keyNaming(deps, pick(pub, priv, CKA.LABEL), pick(pub, priv, CKA.ID));
  const description = `created with PKCS#11 C_GenerateKeyPair by ${principal.name}`;
  const evidence = proof?.length ? keygenEvidence(principal, abi, { mech, pubT, privT, proof }) : undefined;
  await authorizeCreate(principal, { KeySpec: keySpec, KeyUsage: keyUsage, Description: description }, naming, evidence !== undefined);
  const creation = evidence && { keySpec, keyUsage, origin: 'AWS_KMS' as const, evidence };
  const objects = await createNamedKey(deps, abi, log, naming, { keySpec, keyUsage, description, ...(creation ? { creation } : {}) });
  return objects.map(encodeObject);
});

/**
 * CreateKey's decision; `requestApproved`: the module proved the administrator's request, which
 * is that administrator's approval. One still under quorum becomes a proposal, made as the KMS
 * API makes it (ProposalStore.create): the approval that completes it runs KMS CreateKey with
 * these parameters, and the key then appears as objects, named by the tags.
 */
async function authorizeCreate(principal: Principal, parameters: { KeySpec: KeySpec; KeyUsage: KeyRecord['keyUsage']; Description: string }, naming: KeyNaming, requestApproved: boolean): Promise<void> {
  try {
    authorize(principal, 'CreateKey', undefined, { context: {}, requestApproved });
  } catch (e) {
    if (!(e instanceof ApprovalRequired) || e.need.kind !== 'quorum') throw e;
    const tags = [
      ...(naming.alias ? [{ TagKey: TAG_LABEL, TagValue: naming.alias.slice('alias/'.length) }] : []),
      ...(naming.ckaId ? [{ TagKey: TAG_ID, TagValue: naming.ckaId }] : []),
    ];
    const p = await gatewayPolicy().proposals.create(principal.name, e.need.operation, { ...parameters, ...(tags.length ? { Tags: tags } : {}) });
    throw new P11Error(
      CKR.FUNCTION_REJECTED,
      `${e.message}. Proposal ${p.id} holds this key generation until ${e.need.m} of the ${e.need.n} administrators approve it; each runs: mpchsm approve ${p.id} --as <administrator>; the key then appears as objects`,
    );
  }
}

/**
 * Import of a legacy RSA key (C_CreateObject, CKO_PRIVATE_KEY, by a key administrator): the
 * components go once to the key ceremony, which deals shares and forgets the key. EC and
 * Edwards keys are born by distributed key generation only.
 */
export async function importRsaKey(deps: P11Deps, abi: Abi, principal: Principal, t: Map<number, Buffer>, log: RequestLog): Promise<P11Object> {
  requireRole(principal, 'CreateKey', 'key import');
  if (t.get(CKA.KEY_TYPE) === undefined || abi.readUlong(t.get(CKA.KEY_TYPE)!) !== BigInt(CKK.RSA)) {
    throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'only RSA keys are imported: EC and Edwards keys are born by distributed key generation');
  }
  if (isFalse(t.get(CKA.SENSITIVE)) || isTrue(t.get(CKA.EXTRACTABLE))) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'mpchsm private keys are sensitive and never extractable');
  const parts = [CKA.MODULUS, CKA.PUBLIC_EXPONENT, CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2, CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT].map((a) => t.get(a));
  if (parts.some((p) => !p?.length)) throw new P11Error(CKR.TEMPLATE_INCOMPLETE, 'an RSA key import needs the modulus, both exponents, both primes and the CRT values');
  const [n, e, d, p, q, dp, dq, qi] = parts.map((b) => b!.toString('base64url'));
  let pkcs8Pem: string;
  let bits: number;
  try {
    const key = createPrivateKey({ key: { kty: 'RSA', n, e, d, p, q, dp, dq, qi }, format: 'jwk' });
    bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    pkcs8Pem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch (err) {
    throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `not an RSA private key: ${(err as Error).message}`);
  } finally {
    for (const b of parts) b!.fill(0);
  }
  const keySpec = RSA_BITS[String(bits)];
  if (!keySpec) throw new P11Error(CKR.KEY_SIZE_RANGE, `RSA keys are 2048, 3072 or 4096 bits, not ${bits}`);
  const keyUsage = usageOf(keySpec, isTrue(t.get(CKA.SIGN)), isTrue(t.get(CKA.DECRYPT)));
  const naming = keyNaming(deps, t.get(CKA.LABEL), t.get(CKA.ID));
  try {
    authorize(principal, 'CreateKey', undefined, { context: {} });
  } catch (e) {
    // A proposal would have to hold the key material until approved: imports are not proposed.
    if (e instanceof ApprovalRequired) throw new P11Error(CKR.FUNCTION_REJECTED, `${e.message}; a PKCS#11 key import cannot wait for approvals (a proposal would hold the key material)`);
    throw e;
  }
  const [, priv] = await createNamedKey(deps, abi, log, naming, { keySpec, keyUsage, pkcs8Pem, description: `imported with PKCS#11 C_CreateObject by ${principal.name}` });
  return priv;
}
