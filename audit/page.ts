// A page of a party's audit log as its raw lines, for reading it from another host (the signer
// route audit.read, the gateway's MpcHsm.AuditLog): the lines from position `from` (entry seq
// `from` in an intact log), at most `limit` of them and about `MAX_PAGE_BYTES`, never past the
// head the writer had made durable when the read began (a line being written is not handed out).
// The reader rebuilds the file from the pages and verifies it as it would the file (verify.ts).
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Head } from './entry.js';

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
  const stream = createReadStream(file, { encoding: 'utf8' });
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    let at = 0;
    for await (const line of rl) {
      if (at > head.seq) break;
      if (at >= from) {
        const size = Buffer.byteLength(line) + 1;
        if (lines.length >= max || (lines.length > 0 && bytes + size > MAX_PAGE_BYTES)) {
          more = true;
          break;
        }
        lines.push(line);
        bytes += size;
      }
      at++;
    }
  } finally {
    rl.close();
    stream.destroy();
  }
  return { lines, head, more };
}
