import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../audit/log.js';
import { readEntries } from '../../audit/page.js';
import { verifyLog } from '../../audit/verify.js';
import { verifyHead } from '../../audit/chain.js';
import { AuditError, assertNoSecrets, type LogEntry } from '../../audit/entry.js';
import { identity, keyOf, signEvent, tempDir } from './fixtures.js';

const gw = identity('gateway');
const lines = (file: string) => readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));

describe('AuditLog', () => {
  it('creates a signed log, chains entries and verifies', async () => {
    const file = path.join(tempDir(), 'audit.jsonl');
    const log = await AuditLog.open(file, gw, { checkpointEvery: 4 });
    const heads = [];
    for (let i = 0; i < 10; i++) heads.push(await log.append(signEvent(`req-${i}`)));
    await log.close();

    const all = lines(file);
    expect(all[0]).toMatchObject({ seq: 0, kind: 'open', party: 'gateway', fingerprint: gw.fingerprint, checkpointEvery: 4 });
    expect(all[1]).toMatchObject({ seq: 1, kind: 'checkpoint' });
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i));
    // At most 4 entries between checkpoints, and the close signed the tail.
    let run = 0;
    for (const e of all) {
      run = e.kind === 'checkpoint' ? 0 : run + 1;
      expect(run).toBeLessThanOrEqual(4);
    }
    expect(all.at(-1).kind).toBe('checkpoint');
    // Each head returned by append names that very entry.
    for (const [i, h] of heads.entries()) expect(all[h.seq]).toMatchObject({ kind: 'event', request: `req-${i}` });

    const r = await verifyLog(file, keyOf(gw));
    expect(r.findings).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.signedHead?.seq).toBe(all.length - 2);
    expect(verifyHead(r.signedHead!, keyOf(gw))).toBe(true);
  });

  it('records what it is given and nothing secret', async () => {
    const file = path.join(tempDir(), 'audit.jsonl');
    const log = await AuditLog.open(file, gw);
    const start = Date.now() - 50;
    await log.append({ ...signEvent('req-1'), startedAt: start, durationMs: undefined });
    await log.append(signEvent('req-2', { outcome: 'refused', reason: 'policy: principal app may not sign with this key', output: 'none' }));
    await expect(log.append(signEvent('req-3', { outcome: 'refused' }))).rejects.toThrow(/reason/);
    await expect(log.append({ ...signEvent('req-4'), detail: { privateKey: 'x' } })).rejects.toThrow(/detail\.privateKey looks like a secret/);
    await expect(log.append({ ...signEvent('req-5'), detail: { note: '-----BEGIN PRIVATE KEY-----' } })).rejects.toMatchObject({ code: 'secret-field' });
    await expect(log.append({ ...(signEvent('req-6') as object), message: 'hello' } as never)).rejects.toThrow(/message looks like a secret/);
    await expect(log.append({ ...(signEvent('req-7') as object), shares: [] } as never)).rejects.toThrow(/shares looks like a secret/);
    await expect(log.append({ ...(signEvent('req-8') as object), color: 'blue' } as never)).rejects.toThrow(/audit event/);
    await expect(log.append(signEvent('req 9'))).rejects.toThrow(/request/);
    await log.close();
    const events = lines(file).filter((e) => e.kind === 'event');
    expect(events.map((e) => e.request)).toEqual(['req-1', 'req-2']);
    expect(events[0].durationMs).toBeGreaterThanOrEqual(50);
    expect(events[0].startedAt).toBe(new Date(start).toISOString());
    expect(events[1]).toMatchObject({ outcome: 'refused', reason: 'policy: principal app may not sign with this key' });
    expect((await verifyLog(file, keyOf(gw))).ok).toBe(true);
  });

  it('assertNoSecrets walks nested values', () => {
    expect(() => assertNoSecrets({ a: [{ b: { operatorSecret: 1 } }] })).toThrow(/a\[0\]\.b\.operatorSecret/);
    expect(() => assertNoSecrets({ pin: '1234' })).toThrow(AuditError);
    expect(() => assertNoSecrets({ nonce: 'ab' })).toThrow(AuditError);
    expect(() => assertNoSecrets({ x: new Uint8Array(2) })).toThrow(/raw bytes/);
    expect(() => assertNoSecrets(signEvent('r'))).not.toThrow();
  });

  it('writes concurrent appends as one chain, each acknowledged entry in place', async () => {
    const file = path.join(tempDir(), 'audit.jsonl');
    const log = await AuditLog.open(file, gw, { checkpointEvery: 16 });
    const heads = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(signEvent(`req-${i}`))));
    await log.close();
    expect(new Set(heads.map((h) => h.seq)).size).toBe(200);
    const all = lines(file);
    for (const [i, h] of heads.entries()) expect(all[h.seq]).toMatchObject({ request: `req-${i}` });
    const r = await verifyLog(file, keyOf(gw));
    expect(r.findings).toEqual([]);
    expect(r.entries).toBe(all.length);
  });

  it('continues the chain when reopened, and signs on a timer', async () => {
    const file = path.join(tempDir(), 'audit.jsonl');
    let log = await AuditLog.open(file, gw, { checkpointIntervalMs: 0 });
    await log.append(signEvent('a'));
    await log.close();
    log = await AuditLog.open(file, gw, { checkpointIntervalMs: 20 });
    const h = await log.append(signEvent('b'));
    await expect.poll(() => log.signedHead()?.seq, { timeout: 2000 }).toBe(h.seq);
    await log.close();
    expect(lines(file).map((e) => e.seq)).toEqual(lines(file).map((_, i) => i));
    expect((await verifyLog(file, keyOf(gw))).findings).toEqual([]);
  });

  it('refuses a log that belongs to another identity, and a key that does not match', async () => {
    const file = path.join(tempDir(), 'audit.jsonl');
    await (await AuditLog.open(file, gw)).close();
    await expect(AuditLog.open(file, identity('signer1'))).rejects.toMatchObject({ code: 'wrong-party' });
    const other = identity('other');
    await expect(AuditLog.open(file, { ...gw, signSecretKey: other.signSecretKey, public: gw.public })).rejects.toThrow(/does not match/);
  });

  it('recovers from a torn last line: keeps every acknowledged entry and records the cut', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'audit.jsonl');
    let log = await AuditLog.open(file, gw, { checkpointEvery: 8 });
    const acked = [];
    for (let i = 0; i < 5; i++) acked.push(await log.append(signEvent(`req-${i}`)));
    // Simulate a crash in the middle of writing the next line: no close, a partial line.
    const torn = '{"v":1,"seq":7,"prev":"00';
    appendFileSync(file, torn);
    const before = await verifyLog(file, keyOf(gw));
    expect(before.ok).toBe(true);
    expect(before.findings.map((f) => f.code)).toEqual(['torn-tail']);

    log = await AuditLog.open(file, gw);
    const after = await log.append(signEvent('req-after'));
    await log.close();
    const all = lines(file);
    for (const [i, h] of acked.entries()) expect(all[h.seq]).toMatchObject({ request: `req-${i}` });
    const rec = all.find((e) => e.kind === 'recovered');
    expect(rec).toMatchObject({ droppedBytes: torn.length });
    expect(readFileSync(path.join(dir, rec.savedAs), 'utf8')).toBe(torn);
    expect(all[after.seq]).toMatchObject({ request: 'req-after' });
    const r = await verifyLog(file, keyOf(gw));
    expect(r.ok).toBe(true);
    expect(r.findings.map((f) => [f.code, f.severity])).toEqual([['recovered', 'info']]);
  });

  it('recovers from an unparsable final line and from a crash right after a full stretch', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'audit.jsonl');
    let log = await AuditLog.open(file, gw, { checkpointEvery: 3, checkpointIntervalMs: 0 });
    for (let i = 0; i < 3; i++) await log.append(signEvent(`req-${i}`));
    // Drop the checkpoint the third entry triggered, as if the crash tore it, then garbage.
    const text = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(JSON.parse(text.at(-1)!).kind).toBe('checkpoint');
    writeFileSync(file, text.slice(0, -1).join('\n') + '\n' + '\0\0\0garbage\n');
    log = await AuditLog.open(file, gw);
    await log.append(signEvent('req-3'));
    await log.close();
    const r = await verifyLog(file, keyOf(gw));
    expect(r.findings.map((f) => f.code)).toEqual(['recovered']);
    expect(readdirSync(dir).filter((n) => n.includes('.torn-'))).toHaveLength(1);
  });

  it('rejects appends after close', async () => {
    const log = await AuditLog.open(path.join(tempDir(), 'audit.jsonl'), gw);
    await Promise.all([log.close(), log.close()]);
    await expect(log.append(signEvent('x'))).rejects.toMatchObject({ code: 'closed' });
  });
});

describe('readEntries (MpcHsm.ListAuditRecords)', () => {
  it('pages the entries after a seq that a filter picks, passing over lines that are not entries', async () => {
    const file = path.join(tempDir(), 'audit.jsonl');
    const log = await AuditLog.open(file, gw, { checkpointEvery: 4 });
    const other = '0e9a3c4d-1b2f-4a5e-8c7d-6f5e4d3c2b1a';
    for (let i = 0; i < 12; i++) await log.append(signEvent(`req-${i}`, i % 3 === 0 ? { keyId: other } : {}));
    await log.close();
    appendFileSync(file, 'not an entry\n{"v":1,"seq":99,"torn');
    const ofKey = (e: LogEntry) => 'keyId' in e && e.keyId === other;
    const first = await readEntries(file, -1, 2, ofKey);
    const requests = (es: LogEntry[]) => es.map((e) => ('request' in e ? e.request : e.kind));
    expect(requests(first.entries)).toEqual(['req-0', 'req-3']);
    expect(first.more).toBe(true);
    const rest = await readEntries(file, first.entries.at(-1)!.seq, 10, ofKey);
    expect(requests(rest.entries)).toEqual(['req-6', 'req-9']);
    expect(rest.more).toBe(false);
    // Every entry, in order; the two lines that are not entries are left out.
    const every = await readEntries(file, -1, 1000, () => true);
    expect(every.entries.map((e) => e.seq)).toEqual([...Array(readFileSync(file, 'utf8').split('\n').length - 2).keys()]);
  });
});
