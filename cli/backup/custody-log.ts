// Where backups are recorded, so `mpchsm doctor` can report custody (doctor/custody.ts). Two logs
// of public facts (no share, no secret), one JSON object a line, each rewritten atomically:
//  - S/backups.jsonl, written by `signer backup --dir S`: a backup was MADE (when, for which
//    custodian, the file's SHA-256; its schema in contract/posture/backups.ts, since the signer
//    reports it too). The word of whoever ran the command; it proves nothing about the file's
//    contents, and the doctor never calls such a backup verified;
//  - DIR/custody.jsonl, written by `backup verify --dir DIR` only when it exits 0: every share of
//    the file with that SHA-256 opened with the custodian's key and matched its key's public
//    commitments and the running cluster's current packages and epoch, at that time.
// Both are files of the cluster's own directories: whoever can write them can forge a line, as
// they could any other file there. Two writers at the same instant may lose one line (each
// rewrites the whole file); the backup itself is untouched and can be verified again.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../contract/io/atomic.js';
import { backupFacts, type MadeRecord } from '../../contract/posture/backups.js';

export const verifiedSchema = z.strictObject({ Event: z.literal('verified'), ...backupFacts, ClusterId: z.string().max(64), Shares: z.number().int().min(0), Verified: z.iso.datetime() });
export type VerifiedRecord = z.infer<typeof verifiedSchema>;

/** The log of backups verified against the cluster in DIR. */
export const custodyLog = (dir: string): string => path.join(path.resolve(dir), 'custody.jsonl');

/** Appends one record to `file` by rewriting it atomically (public facts: 0644). */
export async function appendRecord(file: string, record: MadeRecord | VerifiedRecord): Promise<void> {
  const before = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const sep = before === '' || before.endsWith('\n') ? '' : '\n';
  await writeFileAtomic(file, Buffer.from(`${before}${sep}${JSON.stringify(record)}\n`), 0o644);
}
