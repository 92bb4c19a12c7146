// A page of a party's audit log as its raw lines, for reading it from another host (the signer
// route audit.read, the gateway's MpcHsm.AuditLog): the lines from position `from` (entry seq
// `from` in an intact log), at most `limit` of them and about `MAX_PAGE_BYTES`, never past the
// head the writer had made durable when the read began (a line being written is not handed out).
// The reader rebuilds the file from the pages and verifies it as it would the file (verify.ts).
// Also a page of a log's parsed entries (readEntries, MpcHsm.ListAuditRecords). Both stream the
// file, so what a party holds for them does not grow with its log.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseEntry, type Head, type LogEntry } from './entry.js';

export const MAX_PAGE_BYTES = 1024 * 1024;
export const MAX_PAGE_LINES = 10_000;

export interface LogPage {
  lines: string[];
  /** The log's head when the page was read; lines beyond it are left for the next page. */
  head: Head;
  /** Whether lines up to the head remain after this page. */
  more: boolean;
}

/** Reads a page of `file` whose durable head is `head`. */
export async function readLogPage(file: string, head: Head, from: number, limit: number): Promise<LogPage> {
  const max = Math.min(limit, MAX_PAGE_LINES);
  const lines: string[] = [];
  let bytes = 0;
  let more = false;
  let at = 0;
  await eachLine(file, (line) => {
    if (at > head.seq) return false;
    if (at++ < from) return true;
    const size = Buffer.byteLength(line) + 1;
    if (lines.length >= max || (lines.length > 0 && bytes + size > MAX_PAGE_BYTES)) {
      more = true;
      return false;
    }
    lines.push(line);
    bytes += size;
    return true;
  });
  return { lines, head, more };
}

/** An entry's seq read off its line's start (the writer puts `v` then `seq` first), to skip entries without parsing them. */
const SEQ_AT_START = /^\{"v":\d+,"seq":(\d+),/;

/**
 * The entries of `file` after seq `after` that `wanted` picks, in file order: at most `limit`,
 * and whether more follow. Lines that do not parse as entries are passed over (the verifier,
 * not this listing, reports them).
 */
export async function readEntries(file: string, after: number, limit: number, wanted: (e: LogEntry) => boolean): Promise<{ entries: LogEntry[]; more: boolean }> {
  const entries: LogEntry[] = [];
  let more = false;
  await eachLine(file, (line) => {
    const seq = SEQ_AT_START.exec(line)?.[1];
    if (seq !== undefined && Number(seq) <= after) return true;
    const p = parseEntry(line);
    if (!('entry' in p) || p.entry.seq <= after || !wanted(p.entry)) return true;
    if (entries.length === limit) {
      more = true;
      return false;
    }
    entries.push(p.entry);
    return true;
  });
  return { entries, more };
}

/** Calls `take` with each line of `file` until it returns false or the file ends. */
async function eachLine(file: string, take: (line: string) => boolean): Promise<void> {
  const stream = createReadStream(file, { encoding: 'utf8' });
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of rl) if (!take(line)) break;
  } finally {
    rl.close();
    stream.destroy();
  }
}
