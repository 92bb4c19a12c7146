// Key creation as a transaction across the signers. Before the first signer is asked to make a
// share, the gateway journals the creation (key id, session, participants, what was asked and
// under which proposal) atomically; once every signer finished with the same public package it
// records the key, commits it at every signer (from then on only an approved deletion removes
// a share: signers/node/guard/keys.ts) and removes the journal record. A record found at the
// gateway's next start is an interrupted creation: it is completed if every participant holds
// a share with the same public package, and otherwise rolled back everywhere — each signer
// forgets its pending share and gives back the authority it spent, so the same proposal can be
// approved again (create-resume.ts).
import type { Logger } from 'pino';
import { z } from 'zod';
import { isEcKeySpec, KEY_USAGES, SYMMETRIC_KEY_SPEC, type CreatableKeySpec, type KeySpec } from '../contract/keys/specs.js';
import { spkiFromRawPublicKey, spkiFromRsaPublicKey } from '../contract/keys/spki.js';
import { keyIdSchema, sessionIdSchema } from '../contract/signer-rpc/relayed.js';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import type { KeyPackage } from '../signers/protocols/key-package.js';
import { packageField } from './key-package.js';
import { KeyJournal } from './key-journal.js';
import { schemeSchema, type KeyRecord, type Scheme } from './keys.js';
import type { SignerClient } from './signer-client.js';

export const creationRecordSchema = z.strictObject({
  keyId: keyIdSchema,
  /** The request id the signers record the creation under: the key generation's session, or (RSA) the key id. */
  session: sessionIdSchema,
  scheme: schemeSchema,
  keySpec: z.string().max(64),
  keyUsage: z.enum(KEY_USAGES),
  origin: z.enum(['AWS_KMS', 'EXTERNAL']),
  description: z.string().max(8192),
  creationDate: z.number(),
  /** Every signer asked to hold a share, at this threshold. */
  participants: z.array(z.number().int().min(1).max(255)).min(1).max(255),
  threshold: z.number().int().min(1),
  /** The key policy asked for (the signers keep the same); absent: the default policy. */
  policy: z.string().max(32768).optional(),
  /** The approved proposal the creation executes, if any: executed once the key is recorded. */
  proposal: z.string().max(128).optional(),
});
export type CreationRecord = z.infer<typeof creationRecordSchema>;

/** One file per key being created, in a directory of the gateway's own. */
export class CreateJournal extends KeyJournal<CreationRecord> {
  constructor(dir: string) {
    super(dir, creationRecordSchema);
  }
}

const DKG_SCHEME: Partial<Record<CreatableKeySpec, Scheme>> = { ECC_NIST_EDWARDS25519: 'frost-ed25519', [SYMMETRIC_KEY_SPEC]: 'tprf-ristretto255' };

/** The scheme a key of this spec is made with (undefined: not supported). */
export const schemeOfSpec = (spec: CreatableKeySpec): Scheme | undefined => (spec.startsWith('RSA_') ? 'rsa-shoup' : isEcKeySpec(spec) ? 'ecdsa-dkls23' : DKG_SCHEME[spec]);

/** What a key record is made of besides its public package: a journaled creation, or (key-recovery.ts) what the signers hold. */
export type KeyShape = Pick<CreationRecord, 'keyId' | 'scheme' | 'keySpec' | 'keyUsage' | 'origin' | 'description' | 'creationDate' | 'participants' | 'threshold'>;

/** The key record a journaled creation (or a recovery) makes with the public package every participant reported. */
export function recordOfCreation(r: KeyShape, pkg: KeyPackage): KeyRecord {
  const spki =
    r.keySpec === SYMMETRIC_KEY_SPEC ? new Uint8Array()
    : 'n' in pkg ? spkiFromRsaPublicKey(BigInt(`0x${pkg.n}`), BigInt(`0x${pkg.e}`))
    : spkiFromRawPublicKey(r.keySpec as KeySpec, Buffer.from('protocol' in pkg ? pkg.publicKey : pkg.groupPublicKey, 'hex'));
  return {
    keyId: r.keyId,
    scheme: r.scheme,
    keySpec: r.keySpec,
    keyUsage: r.keyUsage,
    publicKey: Buffer.from(spki).toString('base64'),
    holders: r.participants,
    threshold: r.threshold,
    state: 'Enabled',
    origin: r.origin,
    description: r.description,
    creationDate: r.creationDate,
    tags: [],
    ...packageField(pkg),
  };
}

/** The participants of a creation that are still planned with (a retired one holds nothing that matters). */
export const participantsOf = (active: readonly SignerClient[], r: CreationRecord) => active.filter((c) => r.participants.includes(c.id));

/**
 * Commits a recorded key at every participant, then removes the journal record. A signer that
 * could not be told keeps its share pending (it commits at its first use); the record stays for
 * the next start to commit again. Answers whether every participant committed.
 */
export async function commitCreation(active: readonly SignerClient[], journal: CreateJournal, r: CreationRecord, log: Logger): Promise<boolean> {
  const chosen = participantsOf(active, r);
  const settled = await Promise.allSettled(chosen.map((c) => c.call(signerRoutes.keys.commit, { keyId: r.keyId })));
  const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [`${chosen[i]!.name}: ${(s.reason as Error).message}`] : s.value.committed ? [] : [`${chosen[i]!.name}: holds no share`]));
  if (failed.length > 0) {
    log.warn({ keyId: r.keyId, failed }, 'a new key could not be committed at every signer; the next start commits it again');
    return false;
  }
  await journal.delete(r.keyId);
  return true;
}

/**
 * Rolls a creation back: every participant forgets its pending share (a signer refuses for a
 * committed key). The journal record is removed only once every participant answered, so a
 * signer down now is asked again at the next start. Answers the failures, if any.
 */
export async function rollBackCreation(active: readonly SignerClient[], journal: CreateJournal, r: CreationRecord, log: Logger): Promise<string[]> {
  const chosen = participantsOf(active, r);
  const settled = await Promise.allSettled(chosen.map((c) => c.call(signerRoutes.keys.forget, { keyId: r.keyId })));
  const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [`${chosen[i]!.name}: ${(s.reason as Error).message}`] : []));
  if (failed.length > 0) log.error({ keyId: r.keyId, failed }, 'an unfinished key creation could not be rolled back at every signer; it stays journaled for the next start');
  else await journal.delete(r.keyId);
  return failed;
}
