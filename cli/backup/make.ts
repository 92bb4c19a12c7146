// `mpchsm signer backup --dir S --custodian K/custodian.json --out FILE`: every share record the
// signer holds (key.ID, a symmetric key's rotated materials material.ID.N, a reshared share
// pending adoption reshare.ID) and its policy records for those keys (policy.key.ID), with what a
// restore needs to start the signer again (its configuration, the genesis it was founded on and
// the signers admitted since: restore.ts), sealed to
// one custodian (format.ts), with a header naming the cluster, the signer, the store's epoch and
// each share's public package. One file per signer and per time: never combined with another
// signer's, so no one file holds a threshold of shares.
//
// The store is opened read-only (contract/io/sealed-store.ts): a running signer is not disturbed
// (its in-flight temp files are left alone, nothing is written). Every record is replaced
// atomically by the signer, so each one read is whole; a backup taken while a key is being
// refreshed may hold the share from before the refresh, which `backup verify --dir` names stale.
// That a backup was made is recorded in S/backups.jsonl (custody-log.ts) for `mpchsm doctor`.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../contract/io/atomic.js';
import { fingerprint, parsePublicIdentity } from '../../contract/identity/identity.js';
import { readJsonFile } from '../../contract/io/json-file.js';
import { openSignerStore } from '../../signers/node/tpm/store.js';
import { fromHex } from '../../contract/bytes.js';
import { verifyGovernanceChain } from '../../policy/index.js';
import { loadSignerConfig, signerPaths } from '../../signers/node/config.js';
import { decodeRecord, packageOf, recordScheme } from '../../signers/node/key-records.js';
import { GENESIS_RECORD } from '../../signers/node/genesis.js';
import { ADMITTED, GOVERNANCE, KEY_PREFIX, keyStateSchema, LEDGER, ledgerSchema, REGISTRY, registrySchema } from '../../signers/node/guard/state.js';
import { keyPackageSchema } from '../../signers/protocols/key-package.js';
import { readCustodianFile } from './custodian.js';
import { appendRecord } from './custody-log.js';
import { madeLog } from '../../contract/posture/backups.js';
import { sealBackup, shareEntrySchema, type BackupHeader, type ShareEntry } from './format.js';

/** The record of a backup holding the signer's config.json, for `signer restore`. */
export const RESTORE_CONFIG = 'signer.config';

/** Which key (and material, or pending resharing) a share record is of; undefined for other records. */
export function shareRecordOf(name: string): Pick<ShareEntry, 'keyId' | 'material' | 'pending'> | undefined {
  const m = /^(key|reshare)\.([0-9a-f-]{36})$/.exec(name) ?? /^(material)\.([0-9a-f-]{36})\.(\d{1,10})$/.exec(name);
  if (!m) return undefined;
  return { keyId: m[2]!, ...(m[1] === 'material' ? { material: Number(m[3]) } : {}), ...(m[1] === 'reshare' ? { pending: true as const } : {}) };
}

/** The header entry of a share record: decoded (which checks the share against its package), its package taken. */
export function shareEntry(name: string, raw: Uint8Array, keySpec: string | undefined): ShareEntry {
  const of = shareRecordOf(name);
  if (!of) throw new Error(`${name} is not a share record`);
  const held = decodeRecord(raw);
  return shareEntrySchema.parse({ record: name, ...of, ...(keySpec ? { keySpec } : {}), scheme: recordScheme(raw), publicPackage: keyPackageSchema.parse(packageOf(held)) });
}

const parseRecord = <T>(raw: Uint8Array | undefined, schema: z.ZodType<T>, name: string): T => {
  if (!raw) throw new Error(`the store holds no ${name} record: this signer was never enrolled`);
  return schema.parse(JSON.parse(Buffer.from(raw).toString('utf8')));
};

export interface BackupMade {
  file: string;
  header: BackupHeader;
  /** Why the backup, though written, is not in S/backups.jsonl (so `mpchsm doctor` will not know of it). */
  unrecorded?: string;
}

/** Writes the backup of the signer in S for the custodian of `custodianFile`; `secret` is asked for only if the store is software-sealed. */
export async function signerBackup(o: { dir: string; custodian: string; out: string }, secret: () => Promise<Uint8Array>): Promise<BackupMade> {
  const S = path.resolve(o.dir);
  const P = signerPaths(S);
  const custodian = readCustodianFile(o.custodian);
  if (!existsSync(P.config)) throw new Error(`${S} holds no config.json: this signer was never started on its genesis, so it holds no share to back up`);
  const config = loadSignerConfig(S);
  const identity = parsePublicIdentity(readJsonFile(P.identity, z.record(z.string(), z.unknown()).transform(({ id: _id, ...doc }) => doc)));
  const store = await openSignerStore(P.store, secret, { readOnly: true });
  const records = new Map<string, Uint8Array>();
  try {
    const registry = parseRecord(await store.get(REGISTRY), registrySchema, REGISTRY);
    const chain = parseRecord(await store.get(GOVERNANCE), z.strictObject({ chain: z.array(z.unknown()).min(1) }), GOVERNANCE);
    const g = verifyGovernanceChain(chain.chain);
    if (!g.ok) throw new Error(`the sealed governance does not verify: ${g.reason}`);
    const ledger = parseRecord(await store.get(LEDGER), ledgerSchema, LEDGER);
    const shares: ShareEntry[] = [];
    const names = await store.list();
    for (const name of names) {
      const of = shareRecordOf(name);
      if (!of) continue;
      const raw = await store.get(name);
      if (!raw) continue; // deleted since the listing (a key destroyed meanwhile)
      records.set(name, raw);
      const policy = await store.get(KEY_PREFIX + of.keyId);
      if (policy) records.set(KEY_PREFIX + of.keyId, policy);
      const keySpec = policy ? keyStateSchema.parse(JSON.parse(Buffer.from(policy).toString('utf8'))).keySpec : undefined;
      try {
        shares.push(shareEntry(name, raw, keySpec));
      } catch (e) {
        throw new Error(`record ${name} does not hold a sound share (${(e as Error).message}): no backup made; see \`mpchsm doctor\``);
      }
    }
    for (const [name, raw] of [
      [RESTORE_CONFIG, readFileSync(P.config)],
      [GENESIS_RECORD, await store.get(GENESIS_RECORD)],
      [ADMITTED, await store.get(ADMITTED)],
    ] as const)
      if (raw) records.set(name, new Uint8Array(raw));
    const header: BackupHeader = {
      clusterId: registry.clusterId,
      signer: { name: config.name, party: config.id, fingerprint: fingerprint(identity) },
      custodian: custodian.Fingerprint,
      created: new Date().toISOString(),
      epoch: { governanceVersion: g.governance.version, ledgerSeq: ledger.seq },
      shares,
    };
    const bytes = await sealBackup(header, records, fromHex(custodian.PublicKey));
    const file = path.resolve(o.out);
    await writeFileAtomic(file, bytes, 0o600);
    // The backup is written: a log that cannot be written is said, and the backup still returned.
    const unrecorded = await appendRecord(madeLog(S), {
      Event: 'made',
      Signer: header.signer.name,
      Party: header.signer.party,
      Custodian: header.custodian,
      CustodianName: custodian.Name,
      Created: header.created,
      Epoch: header.epoch,
      Sha256: createHash('sha256').update(bytes).digest('hex'),
      File: file,
    }).then(
      () => undefined,
      (e: Error) => `it could not be recorded in ${madeLog(S)} (${e.message}): \`mpchsm doctor\` will not know of it`,
    );
    return { file, header, ...(unrecorded ? { unrecorded } : {}) };
  } finally {
    for (const raw of records.values()) raw.fill(0);
    store.close();
  }
}
