// Where backups are recorded, so `mpchsm doctor` can report custody (doctor/custody.ts). Two logs
// of public facts (no share, no secret), one JSON object a line, each rewritten atomically:
//  - S/backups.jsonl, written by `signer backup --dir S`: a backup was MADE (when, for which
//    custodian, the file's SHA-256). The word of whoever ran the command; it proves nothing
//    about the file's contents, and the doctor never calls such a backup verified;
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
import { epochSchema } from './format.js';

const hex32 = z.string().regex(/^[0-9a-f]{64}$/);

/** What both logs say of a backup: whose, for which custodian, made when, at which epoch, which file. */
const backupFacts = {
  Signer: z.string().min(1).max(64),
  Party: z.number().int().min(1).max(255),
  Custodian: hex32,
  CustodianName: z.string().min(1).max(64),
  Created: z.iso.datetime(),
  Epoch: epochSchema,
  Sha256: hex32,
};

export const madeSchema = z.strictObject({ Event: z.literal('made'), ...backupFacts, File: z.string().max(4096) });
export type MadeRecord = z.infer<typeof madeSchema>;

export const verifiedSchema = z.strictObject({ Event: z.literal('verified'), ...backupFacts, ClusterId: z.string().max(64), Shares: z.number().int().min(0), Verified: z.iso.datetime() });
export type VerifiedRecord = z.infer<typeof verifiedSchema>;

/** The log of backups made of the signer in S. */
export const madeLog = (S: string): string => path.join(path.resolve(S), 'backups.jsonl');
/** The log of backups verified against the cluster in DIR. */
export const custodyLog = (dir: string): string => path.join(path.resolve(dir), 'custody.jsonl');

/** Appends one record to `file` by rewriting it atomically (public facts: 0644). */
export async function appendRecord(file: string, record: MadeRecord | VerifiedRecord): Promise<void> {
  const before = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const sep = before === '' || before.endsWith('\n') ? '' : '\n';
  await writeFileAtomic(file, Buffer.from(`${before}${sep}${JSON.stringify(record)}\n`), 0o644);
}

/** The records of `file` (none when it does not exist); each line refused is handed to `refused`, naming the file and line. */
export function readRecords<T>(file: string, schema: z.ZodType<T>, refused: (message: string) => void): T[] {
  if (!existsSync(file)) return [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    refused((e as Error).message);
    return [];
  }
  const out: T[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch {
      refused(`${file}: line ${i + 1} is not valid JSON`);
      continue;
    }
    const r = schema.safeParse(doc);
    if (r.success) out.push(r.data);
    else refused(`${file}: line ${i + 1}: ${r.error.issues[0]?.path.join('.') || '(top level)'} ${r.error.issues[0]?.message}`);
  }
  return out;
}
