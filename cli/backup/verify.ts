// `mpchsm backup verify FILE --custodian-dir K [--dir DIR]`: opens a backup in memory with the
// custodian's key and checks every share on its own against the key's public commitments,
// never reconstructing a key (one share is all a backup holds):
//  - DKG keys (FROST Ed25519, symmetric ristretto255 keys) and DKLs23 ECDSA keys: the share s_i
//    gives s_i·G equal to the signer's verifying share in the public package, whose verifying
//    shares lie on one polynomial of degree t−1 through the public key (Feldman's check:
//    signers/protocols/dkg.ts openKeyShare, ecdsa/keyshare.ts checkEcdsaKeyShare);
//  - RSA: v^{s_i} equal to the signer's verification key v_i (rsa/key.ts parseKeyShare).
// The same decoding the signer itself uses (signers/node/key-records.ts decodeRecord). Each
// share must also be the backed-up signer's (its party id) and stand for the package the header
// names. Naming a cluster compares with its current state (cluster-state.ts).
import { canonicalJson } from '../../contract/canonical.js';
import { decodeRecord, packageOf, recordScheme } from '../../signers/node/key-records.js';
import { KEY_PREFIX, keyStateSchema } from '../../signers/node/guard/state.js';
import type { BackupHeader, ShareEntry } from './format.js';
import { shareRecordOf } from './make.js';

export type ShareStatus = 'verified' | 'bad' | 'stale';

export interface ShareResult {
  record: string;
  keyId: string;
  keySpec?: string | undefined;
  status: ShareStatus;
  /** For bad and stale: which check failed. */
  reason?: string;
}

/** Checks one share record against its header entry; the reason of the first check that fails, or undefined. */
function checkShare(e: ShareEntry, raw: Uint8Array | undefined, party: number): string | undefined {
  if (!raw) return 'the sealed payload holds no such record';
  let held;
  try {
    if (recordScheme(raw) !== e.scheme) return `the record is a ${recordScheme(raw)} share, the header says ${e.scheme}`;
    held = decodeRecord(raw);
  } catch (e) {
    return `the share does not match its public commitments: ${(e as Error).message}`;
  }
  const self = 'rsa' in held ? held.rsa.share.id : held.ec.self;
  if (self !== party) return `the share is party ${self}'s, not the backed-up signer's (party ${party})`;
  if (canonicalJson(packageOf(held)) !== canonicalJson(e.publicPackage)) return "the share's public package is not the one the header names";
  return undefined;
}

/** Every share of the backup, checked on its own; records the header does not list are reported bad too. */
export function verifyShares(header: BackupHeader, records: ReadonlyMap<string, Uint8Array>): ShareResult[] {
  const out: ShareResult[] = [];
  for (const e of header.shares) {
    let reason = checkShare(e, records.get(e.record), header.signer.party);
    const policy = records.get(KEY_PREFIX + e.keyId);
    if (!reason && policy && e.keySpec !== undefined) {
      let doc: unknown;
      try {
        doc = JSON.parse(Buffer.from(policy).toString('utf8'));
      } catch {
        doc = undefined;
      }
      const spec = keyStateSchema.safeParse(doc);
      if (!spec.success || spec.data.keySpec !== e.keySpec) reason = "the key's policy record does not name the key spec the header does";
    }
    out.push({ record: e.record, keyId: e.keyId, keySpec: e.keySpec, status: reason ? 'bad' : 'verified', ...(reason ? { reason } : {}) });
  }
  const listed = new Set(header.shares.map((e) => e.record));
  for (const name of records.keys()) {
    const of = shareRecordOf(name);
    if (of && !listed.has(name)) out.push({ record: name, keyId: of.keyId, status: 'bad', reason: 'a share record the header does not list' });
  }
  return out;
}
