// The record of the backups made of a signer: `mpchsm signer backup --dir S` adds one JSON line
// to S/backups.jsonl (cli/backup/custody-log.ts) — when, for which custodian, the file's SHA-256.
// Here, in the ground floor, because two parties read it: `mpchsm doctor` on the cluster's host,
// and the signer daemon, which puts its last line in its signed posture report (report.ts) so a
// doctor on another host learns of it too. What a line proves: that whoever could write S said a
// backup was made. Never that the backup is sound: only `backup verify` shows that.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

const hex32 = z.string().regex(/^[0-9a-f]{64}$/);

/** A store's epoch: the governance version in force and the last governance change applied. */
export const epochSchema = z.strictObject({ governanceVersion: z.number().int().min(0), ledgerSeq: z.number().int().min(0) });

/** What is said of any backup: whose, for which custodian, made when, at which epoch, which file. */
export const backupFacts = {
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

/** The last backup made, as a signer's posture report carries it. */
export const lastBackupSchema = z.strictObject({ created: z.iso.datetime(), custodian: hex32, custodianName: z.string().min(1).max(64), sha256: hex32 });
export type LastBackup = z.infer<typeof lastBackupSchema>;

/** The log of backups made of the signer whose directory is S. */
export const madeLog = (S: string): string => path.join(path.resolve(S), 'backups.jsonl');

/** The records of a JSON-lines `file` (none when it does not exist); each line refused is handed to `refused`, naming the file and line. */
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

/** The latest backup S/backups.jsonl records (by its creation time); lines that cannot be read are left out. */
export function lastBackupMade(S: string): LastBackup | undefined {
  const last = readRecords(madeLog(S), madeSchema, () => undefined)
    .sort((a, b) => a.Created.localeCompare(b.Created))
    .at(-1);
  return last && { created: last.Created, custodian: last.Custodian, custodianName: last.CustodianName, sha256: last.Sha256 };
}
