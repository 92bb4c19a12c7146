// `mpchsm signer restore --dir S --from FILE --custodian-dir K`: a lost signer made again on a
// fresh directory from one of its backups. The custodian's passphrase (first line of standard
// input) opens the backup in memory; every share is checked against its public package, and —
// where S is a signer directory of a cluster `mpchsm up` runs (DIR/signers/NAME) — each share is
// compared with the key's current package: a backup that is tampered with, of another cluster or
// stale (a refresh or a removal since) is refused, and nothing is written. Otherwise the new
// store, sealed under the operator's passphrase (second line) or, with --seal tpm, to this host's
// TPM (its quote over the new identity then travels in the restoration), holds a new identity made here
// and the backup's shares; S/config.json is the lost signer's, its own identity replaced; and
// the public S/NAME.restore.json is what an administrator proposes (`mpchsm signer rejoin`):
// once the quorum approves, each signer checks the backup itself (signers/node/guard/restore.ts)
// and pins the new identity, and the restored signer is enrolled as a newcomer is. With
// --revive-epoch a stale backup is not refused here: the restoration asks the quorum to revive
// its older sharings (docs/operations.md, "Reviving an older sharing").
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../contract/io/atomic.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import { readSecretLinesFromStdin } from '../../contract/io/stdin.js';
import { type SignerRestoration } from '../../policy/index.js';
import { peerSchema, signerConfigSchema, signerPaths, type Peer } from '../../signers/node/config.js';
import { GENESIS_RECORD, RESTORED_RECORD } from '../../signers/node/genesis.js';
import { admittedSchema, ADMITTED } from '../../signers/node/guard/state.js';
import { initSigner } from '../../signers/node/init.js';
import type { TpmSealOptions } from '../../signers/node/tpm/sealer.js';
import { openSignerStore } from '../../signers/node/tpm/store.js';
import { packageDigest } from '../../signers/protocols/key-package.js';
import { NO_LONGER_HELD } from './cluster-state.js';
import { examineBackup, type Examined } from './examine.js';
import { RESTORE_CONFIG, shareRecordOf } from './make.js';

/** Why a backup is not restored: the verdict `backup verify` would give, and the reason. */
export class RestoreRefused extends Error {
  override name = 'RestoreRefused';
  constructor(
    readonly verdict: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Restored {
  file: string;
  restoration: SignerRestoration;
  fingerprint: string;
  /** Keys left out: deleted since the backup. */
  dropped: string[];
  /** Whether each share was compared with the running cluster's (S in an `mpchsm up` directory). */
  compared: boolean;
}

/** The `mpchsm up` directory S belongs to (DIR/signers/NAME), if it does. */
function clusterDirOf(S: string): string | undefined {
  const root = path.dirname(path.dirname(S));
  return path.basename(path.dirname(S)) === 'signers' && existsSync(path.join(root, 'cluster.json')) ? root : undefined;
}

const parsed = <T>(raw: Uint8Array | undefined, what: string, parse: (v: unknown) => T): T => {
  if (!raw) throw new RestoreRefused('unsupported-version', `the backup holds no ${what}: it was made by an mpchsm that could not restore; make a new backup`);
  return parse(JSON.parse(Buffer.from(raw).toString('utf8')));
};

/** Restores the signer of backup FILE into the new directory S. */
export async function signerRestore(o: { dir: string; from: string; custodianDir: string; reviveEpoch: boolean; seal?: TpmSealOptions | undefined }): Promise<Restored> {
  const S = path.resolve(o.dir);
  if (existsSync(S) && readdirSync(S).length > 0) throw new Error(`${S} is not empty: a signer is restored into a new directory`);
  const clusterDir = clusterDirOf(S);
  // A TPM-sealed store needs no passphrase of its own.
  const [custodianSecret, storeSecret] = await readSecretLinesFromStdin(["the custodian's passphrase", ...(o.seal ? [] : ["the restored signer's store passphrase"])]);
  let e: Examined | undefined;
  try {
    e = await examineBackup(o.from, o.custodianDir, clusterDir === undefined ? undefined : { dir: clusterDir }, () => Promise.resolve(custodianSecret!));
    return await restoreExamined(S, e, o.seal ?? storeSecret!, clusterDir !== undefined, o.reviveEpoch);
  } finally {
    custodianSecret!.fill(0);
    storeSecret?.fill(0);
    for (const r of e?.records?.values() ?? []) r.fill(0);
  }
}

async function restoreExamined(S: string, e: Examined, seal: Uint8Array | TpmSealOptions, compared: boolean, reviveEpoch: boolean): Promise<Restored> {
  const { header, records, shares } = e;
  if (!header || !records || !shares) throw new RestoreRefused(e.verdict, e.problem ?? e.verdict);
  const bad = shares.find((s) => s.status === 'bad');
  if (bad) throw new RestoreRefused('bad', `share ${bad.record} does not verify (${bad.reason}): nothing was restored`);
  // A key deleted since is left out; a share the cluster holds under another package is an older epoch's.
  const dropped = shares.filter((s) => s.status === 'stale' && s.reason === NO_LONGER_HELD).map((s) => s.record);
  const stale = shares.filter((s) => s.status === 'stale' && s.reason !== NO_LONGER_HELD);
  if (stale.length && !reviveEpoch) throw new RestoreRefused('stale', `the backup is stale: ${stale.map((s) => s.record).join(', ')} — ${stale[0]!.reason}; an older epoch's shares are never taken back (docs/operations.md, "Restoring a signer")`);

  const lost = parsed(records.get(RESTORE_CONFIG), 'signer configuration', (v) => signerConfigSchema.parse(v));
  const admitted: Peer[] = records.has(ADMITTED) ? parsed(records.get(ADMITTED), 'admitted signers', (v) => admittedSchema.parse(v)) : [];
  // With a TPM, its quote over the new identity, which each signer checks where the governance requires attestation.
  const { identity, attestation } = await initSigner(S, lost.name, seal, lost.id);
  const store = seal instanceof Uint8Array ? await ShareStore.open(signerPaths(S).store, seal) : await openSignerStore(signerPaths(S).store, () => Promise.reject(new Error('unused')), { tcti: seal.tcti });
  try {
    for (const [name, raw] of records) {
      const of = shareRecordOf(name);
      // Shares of the key and its materials; a pending resharing's share is no share of any epoch yet.
      if ((of && !of.pending && !dropped.includes(name)) || name === GENESIS_RECORD) await store.put(name, raw);
    }
    await store.put(RESTORED_RECORD, Buffer.from(JSON.stringify({ name: lost.name, party: lost.id })));
  } finally {
    store.close();
  }
  // The peers it pinned, and those admitted since; itself under its new identity.
  const peers = [...lost.peers.filter((p) => !admitted.some((a) => a.id === p.id)), ...admitted].map((p) => (p.id === lost.id ? peerSchema.parse({ name: lost.name, id: lost.id, identity }) : p));
  const config = signerConfigSchema.parse({ ...lost, peers });
  await writeFileAtomic(signerPaths(S).config, Buffer.from(JSON.stringify(config, null, 2) + '\n'), 0o600);
  const taken = header.shares.filter((s) => !s.pending && !dropped.includes(s.record));
  const restoration: SignerRestoration = {
    Name: lost.name,
    Id: lost.id,
    Identity: identity,
    Endpoint: `https://${lost.host}:${lost.port}`,
    ...(attestation ? { Attestation: attestation } : {}),
    Backup: {
      ClusterId: header.clusterId,
      Created: header.created,
      Sha256: e.sha256!,
      Custodian: header.custodian,
      Shares: taken.map((s) => ({ Record: s.record, KeyId: s.keyId, Package: packageDigest(s.publicPackage) })),
    },
    // Asked for, the quorum is asked to revive the older sharings of the keys' shares (where the
    // cluster could not be compared here, the signers find which): their packages, for the gateway.
    ...(reviveEpoch ? { ReviveEpoch: true as const, Revived: taken.filter((s) => s.record === `key.${s.keyId}`).map((s) => ({ KeyId: s.keyId, Package: s.publicPackage })) } : {}),
  };
  const file = path.join(S, `${lost.name}.restore.json`);
  await writeFileAtomic(file, Buffer.from(JSON.stringify(restoration, null, 2) + '\n'), 0o644);
  return { file, restoration, fingerprint: identity.fingerprint, dropped, compared };
}
