// The gateway's journal of resharings between their two phases (gateway/cluster.ts `reshare`).
// Once every new holder finished with the same public package, each is told to adopt its new
// share. A gateway that stops half-way leaves some holders on new shares and the others on old
// ones, which do not sign together, and a key record naming the old package. So the package is
// written here, atomically, before the first adopt, and removed once every holder adopted and
// the key record names it. A record left here is finished at the gateway's next start (and
// before MpcHsm.RefreshKeyShares reshares the key): adopt is sent again to every holder —
// a signer answers a repeated adopt as done (signers/node/reshare.ts) — then the key record is
// updated. One that still fails is logged and kept for the next attempt.
import { z } from 'zod';
import { keyPackageSchema } from '../signers/protocols/key-package.js';
import { keyIdSchema, sessionIdSchema } from '../contract/signer-rpc/relayed.js';
import { KeyJournal } from './key-journal.js';

export const journalRecordSchema = z.strictObject({
  keyId: keyIdSchema,
  session: sessionIdSchema,
  publicPackage: keyPackageSchema,
  /** The new holders: every one of them is told to adopt. */
  holders: z.array(z.number().int().min(1).max(255)).min(1).max(255),
});
export type JournalRecord = z.infer<typeof journalRecordSchema>;

/** One file per key being reshared, in a directory of the gateway's own. */
export class ReshareJournal extends KeyJournal<JournalRecord> {
  constructor(dir: string) {
    super(dir, journalRecordSchema);
  }
}
