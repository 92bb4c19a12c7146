// The token as a principal sees it: every key as a public and a private object under its labels
// (its aliases, or the label it was generated with) and its CKA_ID, and the stored
// certificates; and a key found by its object id.
import { isKeySpec, type KeySpec } from '../../contract/keys/specs.js';
import { CKA, CKR, P11Error } from '../../contract/pkcs11/ck.js';
import type { Abi } from '../../contract/pkcs11/wire.js';
import type { KeyRecord } from '../keys.js';
import { certificateObject, keyObjects, uuidBytes, type P11Object } from './objects.js';
import type { P11Deps, RequestLog } from './request.js';

/** Longest CKA_ID accepted. */
export const MAX_ID = 128;

/** Tags that carry a PKCS#11 key's names through a proposal (the KMS API executes it). */
export const TAG_LABEL = 'mpchsm:pkcs11:label';
export const TAG_ID = 'mpchsm:pkcs11:id';

export const keyUid = /^k:([0-9a-f-]{36}):(pub|priv)$/;

export function keyOf(deps: P11Deps, uid: Buffer, want: 'pub' | 'priv' | 'any', log: RequestLog): KeyRecord {
  const m = keyUid.exec(uid.toString('utf8'));
  const key = m ? deps.cluster.keys.get(m[1]!) : undefined;
  if (!m || !key || key.state === 'PendingDeletion' || (want !== 'any' && m[2] !== want)) {
    throw new P11Error(CKR.KEY_HANDLE_INVALID, `no such ${want === 'priv' ? 'private ' : want === 'pub' ? 'public ' : ''}key: ${uid.toString('utf8').slice(0, 80)}`);
  }
  log.keyId = key.keyId;
  return key;
}

export function specOf(key: KeyRecord): KeySpec {
  if (!isKeySpec(key.keySpec)) throw new P11Error(CKR.GENERAL_ERROR, `key ${key.keyId} has unknown key spec ${key.keySpec}`);
  return key.keySpec;
}

/** Every object the principal may see (all of them, for now: the policy seam decides per key). */
export function allObjects(deps: P11Deps, abi: Abi): P11Object[] {
  const certs = deps.store.certificates();
  const certObjects = certs.map((c) => certificateObject(c, abi));
  const subjectBySpki = new Map(certObjects.map((o) => [o.attrs.get(CKA.PUBLIC_KEY_INFO)!.toString('base64'), o.attrs.get(CKA.SUBJECT)!]));
  const aliases = new Map<string, string[]>();
  for (const a of deps.kmsState.aliases()) aliases.set(a.keyId, [...(aliases.get(a.keyId) ?? []), a.name.slice('alias/'.length)]);
  const out: P11Object[] = [];
  for (const key of deps.cluster.keys.list()) {
    if (key.state === 'PendingDeletion' || !isKeySpec(key.keySpec)) continue;
    const labels = labelsOf(deps, key, aliases.get(key.keyId) ?? []);
    const names = {
      labels: labels.length ? labels : [key.keyId],
      ckaId: Buffer.from(ckaIdOf(deps, key), 'hex'),
      subject: subjectBySpki.get(key.publicKey) ?? Buffer.alloc(0),
    };
    out.push(...keyObjects(key, names, abi));
  }
  return [...out, ...certObjects];
}

/**
 * Every name a key answers to as CKA_LABEL: its aliases and the label it was generated with.
 * The first is its CKA_LABEL: the one C_SetAttributeValue chose, else the first by name.
 */
export function labelsOf(deps: P11Deps, key: KeyRecord, aliases: readonly string[]): string[] {
  const tagLabel = key.tags.find((t) => t.TagKey === TAG_LABEL)?.TagValue;
  const labels = [...new Set([...aliases, ...(tagLabel ? [tagLabel] : [])])].sort();
  const chosen = deps.store.keyMeta(key.keyId)?.label;
  return chosen !== undefined && labels.includes(chosen) ? [chosen, ...labels.filter((l) => l !== chosen)] : labels;
}

/** A key's [public, private] objects as they are now. */
export const objectsOfKey = (deps: P11Deps, abi: Abi, keyId: string) => allObjects(deps, abi).filter((o) => o.uid.startsWith(`k:${keyId}:`));

/** CKA_ID: given at generation (kept beside the key, or as a tag through a proposal), else the UUID's bytes. */
export const ckaIdOf = (deps: P11Deps, key: KeyRecord): string => {
  const tagged = key.tags.find((t) => t.TagKey === TAG_ID)?.TagValue;
  return deps.store.keyMeta(key.keyId)?.ckaId ?? (tagged && /^(?:[0-9a-f]{2}){1,128}$/.test(tagged) ? tagged : uuidBytes(key.keyId).toString('hex'));
};
