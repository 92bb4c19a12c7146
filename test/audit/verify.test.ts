import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../audit/log.js';
import { lineHash, signHead } from '../../audit/chain.js';
import { verifyLog, type Finding } from '../../audit/verify.js';
import { identity, keyOf, signEvent, tempDir } from './fixtures.js';

const signer = identity('signer1');
const key = keyOf(signer);
const EVERY = 4;

let file: string;
/** The log's lines, then a writer that puts (possibly tampered) lines back. */
const read = () => readFileSync(file, 'utf8').trimEnd().split('\n');
const write = (lines: string[]) => writeFileSync(file, lines.join('\n') + '\n');
const errors = async (knownHeads = [] as { seq: number; hash: string; source: string }[]) =>
  (await verifyLog(file, key, { knownHeads })).findings.filter((f) => f.severity === 'error');
const only = (fs: Finding[]) => {
  expect(fs).toHaveLength(1);
  return fs[0]!;
};
/** Line index of the first event entry after `from`. */
const eventAt = (lines: string[], from: number) => lines.findIndex((l, i) => i > from && JSON.parse(l).kind === 'event');

/** Recomputes every prev after `from` so the chain is internally consistent again. */
function rechain(lines: string[], from = 1): string[] {
  const out = [...lines];
  for (let i = from; i < out.length; i++) {
    const e = JSON.parse(out[i]!);
    e.seq = i;
    e.prev = lineHash(Buffer.from(out[i - 1]!));
    out[i] = JSON.stringify(e);
  }
  return out;
}

beforeEach(async () => {
  file = path.join(tempDir(), 'audit.jsonl');
  const log = await AuditLog.open(file, signer, { checkpointEvery: EVERY, checkpointIntervalMs: 0 });
  for (let i = 0; i < 12; i++) await log.append(signEvent(`req-${i}`, { op: 'frost.sign', output: 'partial' }));
  await log.close();
});

describe('verifyLog', () => {
  it('accepts an untouched log', async () => {
    const r = await verifyLog(file, key);
    expect(r.ok).toBe(true);
    expect(r.findings).toEqual([]);
    expect(r.party).toBe('signer1');
    expect(r.head?.seq).toBe(read().length - 1);
  });

  it('catches an edited entry (hash mismatch at its seq)', async () => {
    const lines = read();
    const i = eventAt(lines, 3);
    lines[i] = lines[i]!.replace('"outcome":"ok"', '"outcome":"refused","reason":"edited afterwards"');
    write(lines);
    const f = only(await errors());
    expect(f).toMatchObject({ party: 'signer1', seq: i, code: 'edited' });
    expect(f.message).toMatch(new RegExp(`^hash mismatch at seq ${i}: entry ${i} .* was edited`));
  });

  it('catches a removed entry (seq gap)', async () => {
    const lines = read();
    const i = eventAt(lines, 5);
    lines.splice(i, 1);
    write(lines);
    const f = only(await errors());
    expect(f).toMatchObject({ seq: i, code: 'removed' });
    expect(f.message).toBe(`entry ${i} is missing (removed): the chain jumps from seq ${i - 1} to seq ${i + 1}`);
  });

  it('catches a removed entry whose successors were renumbered (hash mismatch)', async () => {
    const lines = read();
    const i = eventAt(lines, 5);
    lines.splice(i, 1);
    const renumbered = lines.map((l, j) => (j >= i ? JSON.stringify({ ...JSON.parse(l), seq: j }) : l));
    write(renumbered);
    const fs = await errors();
    expect(fs.map((f) => f.code)).toContain('edited');
    expect(fs[0]!.seq).toBe(i - 1);
  });

  it('catches reordered entries', async () => {
    const lines = read();
    const i = eventAt(lines, 5);
    [lines[i], lines[i + 1]] = [lines[i + 1]!, lines[i]!];
    write(lines);
    const f = only(await errors());
    expect(f).toMatchObject({ seq: i, code: 'reordered' });
    expect(f.message).toBe(`entry ${i} (line ${i + 2}) comes after entry ${i + 1}: entries were reordered`);
  });

  it('catches a truncated log against a head another party recorded', async () => {
    const lines = read();
    const hashOf = (i: number) => lineHash(Buffer.from(lines[i]!));
    const recorded = { seq: lines.length - 2, hash: hashOf(lines.length - 2), source: 'gateway (entry 40)' };
    // Cut the last 4 entries: the chain itself still holds.
    write(lines.slice(0, -4));
    expect((await verifyLog(file, key)).ok).toBe(true);
    const f = only(await errors([recorded, { ...recorded, seq: 2, hash: hashOf(2) }]));
    expect(f).toMatchObject({ code: 'truncated', seq: lines.length - 4 });
    expect(f.message).toBe(
      `${file} ends at seq ${lines.length - 5}, but gateway (entry 40) recorded its entry ${lines.length - 2}: entries ${lines.length - 4}..${lines.length - 2} are cut off (truncated) (an entry is fsynced before its head leaves the party, so no crash explains this)`,
    );
  });

  it('catches an entry that differs from the head another party recorded', async () => {
    const lines = read();
    const i = lines.length - 2;
    const recorded = { seq: i, hash: lineHash(Buffer.from(lines[i]!)), source: 'gateway (entry 9)' };
    // Rewrite the tail and re-sign nothing: the unsigned tail alone would pass.
    const rewritten = rechain([...lines.slice(0, i), JSON.stringify({ ...JSON.parse(lines[i]!), kind: 'event', request: 'other', op: 'x', outcome: 'ok', startedAt: '2025-01-01T00:00:00.000Z', durationMs: 1 })], i);
    write(rewritten.slice(0, i + 1));
    const fs = await errors([recorded]);
    expect(fs.map((f) => f.code)).toContain('rewritten');
    expect(fs.find((f) => f.code === 'rewritten')!.message).toMatch(/but gateway \(entry 9\) recorded .* the entry was rewritten/);
  });

  it('catches a forged head (checkpoint signed by another key)', async () => {
    const lines = read();
    // Append an invented entry and "sign" it with a key that is not the party's.
    const n = lines.length;
    const fake = JSON.stringify({ ...JSON.parse(lines[eventAt(lines, 1)]!), seq: n, prev: lineHash(Buffer.from(lines[n - 1]!)), request: 'invented' });
    const mallory = identity('mallory');
    const head = { seq: n, hash: lineHash(Buffer.from(fake)) };
    const cp = { v: 1, seq: n + 1, prev: head.hash, time: new Date().toISOString(), kind: 'checkpoint', sig: signHead(head, signer.fingerprint, mallory.signSecretKey) };
    write([...lines, fake, JSON.stringify(cp)]);
    const f = only(await errors());
    expect(f).toMatchObject({ seq: n + 1, code: 'forged-head' });
    expect(f.message).toBe(`checkpoint at seq ${n + 1}: the signature over head seq ${n} does not verify — forged, or made with another key`);
    // The genuine signed head stays the last valid one.
    expect((await verifyLog(file, key)).signedHead?.seq).toBe(n - 2);
  });

  it('catches an edit hidden by recomputing the chain (the signed heads no longer verify)', async () => {
    const lines = read();
    const i = eventAt(lines, 3);
    lines[i] = lines[i]!.replace('"outcome":"ok"', '"outcome":"refused","reason":"x"');
    write(rechain(lines, i + 1));
    const fs = await errors();
    expect(fs.length).toBeGreaterThan(0);
    expect(new Set(fs.map((f) => f.code))).toEqual(new Set(['forged-head']));
  });

  it('catches stripped checkpoints (a long unsigned stretch) and an unsigned opening', async () => {
    const lines = read().filter((l, i) => i === 0 || JSON.parse(l).kind !== 'checkpoint');
    write(rechain(lines));
    const fs = await errors();
    expect(fs.map((f) => f.code)).toEqual(['unsigned', 'unsigned']);
    expect(fs.find((f) => f.seq === 1)!.message).toMatch(/start of the log is unsigned/);
    expect(fs.find((f) => f.seq === 0)!.message).toMatch(new RegExp(`entries 0\\.\\.${lines.length - 1} \\(${lines.length} entries\\) carry no checkpoint, yet this party signs at least every ${EVERY} entries`));
  });

  it('catches a log checked against the wrong key, a cut start, junk lines and duplicates', async () => {
    expect(only((await verifyLog(file, keyOf(identity('signer2')))).findings.filter((f) => f.severity === 'error'))).toMatchObject({ code: 'wrong-party', seq: 0 });

    const lines = read();
    write([...lines.slice(0, 5), 'not json', ...lines.slice(5)]);
    expect(only(await errors())).toMatchObject({ code: 'malformed', line: 6 });

    write([...lines.slice(0, 6), lines[5]!, ...lines.slice(6)]);
    expect((await errors()).map((f) => f.code)).toContain('duplicate');

    write(lines.slice(3));
    const f = (await errors())[0]!;
    expect(f).toMatchObject({ code: 'removed', seq: 0 });
    expect(f.message).toBe('entries 0..2 are missing (removed): the log starts at seq 3');
  });

  it('reports a missing file as unreadable', async () => {
    const r = await verifyLog(path.join(path.dirname(file), 'nope.jsonl'), key, { party: 'signer9' });
    expect(r.ok).toBe(false);
    expect(only(r.findings)).toMatchObject({ party: 'signer9', code: 'unreadable' });
  });
});
