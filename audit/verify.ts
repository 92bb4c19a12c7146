// The verifier: reads a party's log and says precisely what, if anything, is wrong with it.
//
// Checked: every line parses; seq runs 0,1,2,… in file order (a gap is a removal, a step
// back a reordering); every entry's `prev` is the hash of the entry before it (a mismatch is
// an edit); seq 0 opens the log for the expected key; every checkpoint's signature verifies
// (else a forged head); no stretch of entries is longer than the party's checkpoint interval
// (else checkpoints were stripped, e.g. to hide a rewrite); and the log still holds, unchanged,
// every entry another party recorded a head for (else it was truncated or rewritten).
//
// What it cannot see alone: entries cut from the end after the last head anyone recorded. The
// gateway records each signer's entry for every request, and signers may record the gateway's
// head, so cross-party heads bound how much can vanish silently.

import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { GENESIS_PREV, lineHash, verifyHead, type AuditKey } from './chain.js';
import { parseEntry, type Head, type LogEntry, type SignedHead } from './entry.js';

export type Severity = 'error' | 'warning' | 'info';

export type FindingCode =
  | 'unreadable'
  | 'malformed'
  | 'wrong-party'
  | 'edited'
  | 'removed'
  | 'reordered'
  | 'duplicate'
  | 'forged-head'
  | 'unsigned'
  | 'truncated'
  | 'rewritten'
  | 'torn-tail'
  | 'recovered'
  // cross-check (crosscheck.ts)
  | 'missing-log'
  | 'missing-signer-entry'
  | 'signer-refused'
  | 'missing-gateway-entry'
  | 'signer-not-listed'
  | 'head-mismatch'
  /** A gateway entry reports a signer's act otherwise than the signer's own entry does. */
  | 'misreported'
  | 'duplicate-request'
  /** A request the gateway intended and never finished (it stopped mid-request): information. */
  | 'interrupted'
  /** Signers released under one unfinished request for different operations, keys or messages. */
  | 'signers-disagree'
  /** A signer restored from a backup under an approved proposal another signer applied: information (crosscheck.ts). */
  | 'restored';

/** One problem: which party, which entry (seq, or file line when there is no seq), what. */
export interface Finding {
  party: string;
  seq?: number;
  line?: number;
  severity: Severity;
  code: FindingCode;
  message: string;
}

export interface LogLine {
  /** 1-based line number in the file. */
  line: number;
  /** SHA-256 of the line's bytes, hex. */
  hash: string;
  entry: LogEntry;
}

export interface ParsedLog {
  party: string;
  lines: LogLine[];
  malformed: { line: number; error: string }[];
  /** A final line without its newline (a write cut short). */
  torn?: { line: number; bytes: number };
}

/** A head of this log that some other record vouches for; `source` says which. */
export interface KnownHead extends Head {
  source: string;
}

export interface VerifyOptions {
  /** Label for findings; defaults to the party named in the log. */
  party?: string;
  knownHeads?: readonly KnownHead[];
  /** The log's file, named in findings about the file as a whole (a truncation). */
  file?: string;
}

export interface VerifyResult {
  party: string;
  /** No finding of severity `error`. */
  ok: boolean;
  entries: number;
  /** The last entry. */
  head?: Head;
  /** The last head carrying a valid signature. */
  signedHead?: SignedHead;
  findings: Finding[];
  log: ParsedLog;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Splits a log into entries, keeping malformed lines and a torn tail aside. */
export function parseLog(data: Uint8Array, party?: string): ParsedLog {
  const lines: LogLine[] = [];
  const malformed: ParsedLog['malformed'] = [];
  let torn: ParsedLog['torn'];
  let from = 0;
  for (let n = 1; from < data.length; n++) {
    const nl = data.indexOf(0x0a, from);
    if (nl < 0) {
      torn = { line: n, bytes: data.length - from };
      break;
    }
    const bytes = data.subarray(from, nl);
    from = nl + 1;
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      malformed.push({ line: n, error: 'not UTF-8' });
      continue;
    }
    const p = parseEntry(text);
    if ('entry' in p) lines.push({ line: n, hash: lineHash(bytes), entry: p.entry });
    else malformed.push({ line: n, error: p.error });
  }
  const first = lines[0]?.entry;
  return { party: party ?? (first?.kind === 'open' ? first.party : 'unknown'), lines, malformed, ...(torn && { torn }) };
}

export async function readLog(file: string, party?: string): Promise<ParsedLog> {
  return parseLog(await readFile(file), party);
}

/** Reads and verifies `file` against the party's pinned key. Never throws for a bad log. */
export async function verifyLog(file: string, key: AuditKey, opts: VerifyOptions = {}): Promise<VerifyResult> {
  let log: ParsedLog;
  try {
    log = await readLog(file, opts.party);
  } catch (e) {
    const party = opts.party ?? basename(dirname(file));
    const message = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `no audit log at ${file}` : `cannot read ${file}: ${(e as Error).message}`;
    const finding: Finding = { party, severity: 'error', code: 'unreadable', message };
    return { party, ok: false, entries: 0, findings: [finding], log: { party, lines: [], malformed: [] } };
  }
  return verifyParsedLog(log, key, { file, ...opts });
}

const range = (a: number, b: number) => (a === b ? `entry ${a} is` : `entries ${a}..${b} are`);
const short = (h: string) => `${h.slice(0, 16)}…`;

export function verifyParsedLog(log: ParsedLog, key: AuditKey, opts: VerifyOptions = {}): VerifyResult {
  const party = opts.party ?? log.party;
  const findings: Finding[] = [];
  const add = (f: Omit<Finding, 'party'>) => findings.push({ party, ...f });

  if (log.torn)
    add({ line: log.torn.line, severity: 'warning', code: 'torn-tail', message: `line ${log.torn.line} is incomplete (${log.torn.bytes} bytes without a newline): a write was cut short; the party removes it when it next opens the log` });
  for (const m of log.malformed) add({ line: m.line, severity: 'error', code: 'malformed', message: `line ${m.line} is not a valid audit entry (${m.error})` });

  const { lines } = log;
  if (lines.length === 0) {
    add({ severity: 'error', code: 'removed', message: 'the log holds no valid entry' });
    return done();
  }

  // Index by seq; a seq seen twice is an insertion or a copy.
  const bySeq = new Map<number, LogLine>();
  for (const l of lines) {
    const other = bySeq.get(l.entry.seq);
    if (other) add({ seq: l.entry.seq, line: l.line, severity: 'error', code: 'duplicate', message: `seq ${l.entry.seq} appears more than once (lines ${other.line} and ${l.line})` });
    else bySeq.set(l.entry.seq, l);
  }
  const maxSeq = Math.max(...bySeq.keys());

  // The opening entry: seq 0, for the expected key.
  const genesis = bySeq.get(0)?.entry;
  if (genesis && (genesis.kind !== 'open' || genesis.prev !== GENESIS_PREV))
    add({ seq: 0, line: bySeq.get(0)!.line, severity: 'error', code: 'malformed', message: 'entry 0 is not the log\'s open entry' });
  // Another party's log: its signatures cannot verify under this key, so say that once.
  const foreign = genesis?.kind === 'open' && (genesis.fingerprint !== key.fingerprint || genesis.signPublicKey !== key.signPublicKey);
  if (foreign)
    add({ seq: 0, severity: 'error', code: 'wrong-party', message: `the log opens for ${genesis.party} with key fingerprint ${short(genesis.fingerprint)}, not the expected ${short(key.fingerprint)}` });
  for (const l of lines)
    if (l.entry.kind === 'open' && l.entry.seq !== 0) add({ seq: l.entry.seq, line: l.line, severity: 'error', code: 'malformed', message: `entry ${l.entry.seq} is a second open entry` });

  // Removed entries: seq numbers that appear nowhere.
  for (let s = 0; s <= maxSeq; s++) {
    if (bySeq.has(s)) continue;
    let e = s;
    while (e + 1 <= maxSeq && !bySeq.has(e + 1)) e++;
    const where = s === 0 ? `the log starts at seq ${e + 1}` : `the chain jumps from seq ${s - 1} to seq ${e + 1}`;
    add({ seq: s, severity: 'error', code: 'removed', message: `${range(s, e)} missing (removed): ${where}` });
    s = e;
  }

  // Reordered entries: seq going backwards in file order.
  for (let i = 1; i < lines.length; i++) {
    const [a, b] = [lines[i - 1]!.entry.seq, lines[i]!.entry.seq];
    if (b < a) add({ seq: b, line: lines[i]!.line, severity: 'error', code: 'reordered', message: `entry ${b} (line ${lines[i]!.line}) comes after entry ${a}: entries were reordered` });
  }

  // Edited entries: an entry that no longer hashes to what its successor recorded.
  for (const [s, l] of bySeq) {
    const before = bySeq.get(s - 1);
    if (s === 0 || !before || l.entry.prev === before.hash) continue;
    add({
      seq: s - 1,
      line: before.line,
      severity: 'error',
      code: 'edited',
      message: `hash mismatch at seq ${s - 1}: entry ${s - 1} (line ${before.line}) hashes to ${short(before.hash)} but entry ${s} recorded ${short(l.entry.prev)} — entry ${s - 1} was edited (or entry ${s}'s prev altered)`,
    });
  }

  // Signed heads.
  let signedHead: SignedHead | undefined;
  for (const l of lines) {
    const e = l.entry;
    if (e.kind !== 'checkpoint' || foreign) continue;
    const head = { seq: e.seq - 1, hash: e.prev, sig: e.sig };
    if (!verifyHead(head, key))
      add({ seq: e.seq, line: l.line, severity: 'error', code: 'forged-head', message: `checkpoint at seq ${e.seq}: the signature over head seq ${e.seq - 1} does not verify — forged, or made with another key` });
    else if (!signedHead || head.seq > signedHead.seq) signedHead = head;
  }

  // Stripped checkpoints: the writer signs at least every `checkpointEvery` entries.
  if (genesis?.kind === 'open') {
    const every = genesis.checkpointEvery;
    if (bySeq.get(1)?.entry.kind !== 'checkpoint')
      add({ seq: 1, severity: 'error', code: 'unsigned', message: 'the open entry is not followed by its signed checkpoint (seq 1): the start of the log is unsigned' });
    let runStart = -1;
    let run = 0;
    const closeRun = (end: number) => {
      if (run > every)
        add({ seq: runStart, severity: 'error', code: 'unsigned', message: `entries ${runStart}..${end} (${run} entries) carry no checkpoint, yet this party signs at least every ${every} entries: checkpoints were removed` });
      run = 0;
    };
    for (let s = 0; s <= maxSeq; s++) {
      const e = bySeq.get(s)?.entry;
      if (!e) continue;
      if (e.kind === 'checkpoint') closeRun(s - 1);
      else if (run++ === 0) runStart = s;
    }
    closeRun(maxSeq);
  }

  // Heads others recorded: the log must still hold them, unchanged.
  const heads = [...(opts.knownHeads ?? [])].sort((a, b) => b.seq - a.seq);
  const beyond = heads.find((h) => h.seq > maxSeq);
  if (beyond)
    add({
      seq: maxSeq + 1,
      severity: 'error',
      code: 'truncated',
      message: `${opts.file ?? 'the log'} ends at seq ${maxSeq}, but ${beyond.source} recorded its entry ${beyond.seq}: ${range(maxSeq + 1, beyond.seq)} cut off (truncated) (an entry is fsynced before its head leaves the party, so no crash explains this)`,
    });
  const reported = new Set<number>();
  for (const h of heads) {
    const l = bySeq.get(h.seq);
    if (!l || l.hash === h.hash || reported.has(h.seq)) continue;
    reported.add(h.seq);
    add({ seq: h.seq, line: l.line, severity: 'error', code: 'rewritten', message: `entry ${h.seq} hashes to ${short(l.hash)}, but ${h.source} recorded ${short(h.hash)} for it: the entry was rewritten (edited, or the log truncated there and appended to again)` });
  }

  for (const l of lines)
    if (l.entry.kind === 'recovered')
      add({ seq: l.entry.seq, severity: 'info', code: 'recovered', message: `the party cut a torn final line of ${l.entry.droppedBytes} bytes when it reopened the log (saved as ${l.entry.savedAs})` });

  const last = bySeq.get(maxSeq)!;
  return done({ seq: maxSeq, hash: last.hash }, signedHead);

  function done(head?: Head, signed?: SignedHead): VerifyResult {
    findings.sort((a, b) => (a.seq ?? -1) - (b.seq ?? -1));
    return {
      party,
      ok: !findings.some((f) => f.severity === 'error'),
      entries: lines.length,
      ...(head && { head }),
      ...(signed && { signedHead: signed }),
      findings,
      log,
    };
  }
}
