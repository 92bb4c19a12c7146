// Write-ahead audit: a gateway intent without an outcome is an interrupted request (information),
// told apart from tampering — a release with no intent, signers that disagree, an intent the
// signers' records contradict — and a gateway log cut below a head a signer anchored is truncated.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectKnownHeads, crossCheck } from '../../audit/crosscheck.js';
import type { AuditEventInput, AuditIntentInput } from '../../audit/entry.js';
import { AuditLog } from '../../audit/log.js';
import { readLog, verifyLog } from '../../audit/verify.js';
import { DIGEST, identity, keyOf, signEvent, tempDir } from './fixtures.js';

const ids = { gateway: identity('gateway'), signer1: identity('signer1'), signer2: identity('signer2') };
const KEY = '6f1c1f4e-9a53-4c4e-9d0b-3e0b8f7d2a11';
const intentOf = (request: string, extra: Partial<AuditIntentInput> = {}): AuditIntentInput => ({
  request,
  op: 'Sign',
  principal: { name: 'app', accessKeyId: 'MPCAPPKEY0000000001', source: '127.0.0.1:50000' },
  keyId: KEY,
  algorithm: 'ECDSA_SHA_256',
  digest: DIGEST,
  session: request,
  startedAt: new Date('2025-01-01T00:00:00Z'),
  ...extra,
});
/** A signer's partial as the signers record it: what it read from the client's evidence. */
const partial = (request: string, extra: Partial<AuditEventInput> = {}): AuditEventInput =>
  signEvent(request, { op: 'frost.sign', operation: 'Sign', principal: { name: 'app' }, output: 'partial', ...extra });

async function cluster() {
  const dir = tempDir();
  const file = (n: keyof typeof ids) => path.join(dir, `${n}.jsonl`);
  const logs = {
    gateway: await AuditLog.open(file('gateway'), ids.gateway, { checkpointIntervalMs: 0 }),
    signer1: await AuditLog.open(file('signer1'), ids.signer1, { checkpointIntervalMs: 0 }),
    signer2: await AuditLog.open(file('signer2'), ids.signer2, { checkpointIntervalMs: 0 }),
  };
  const check = async () => {
    for (const l of Object.values(logs)) await l.close();
    const [gateway, ...signers] = await Promise.all((['gateway', 'signer1', 'signer2'] as const).map((n) => readLog(file(n))));
    return crossCheck(gateway!, signers);
  };
  return { logs, file, check };
}

describe('intents and outcomes', () => {
  it('finds nothing when every intent has its outcome', async () => {
    const c = await cluster();
    await c.logs.gateway.intend(intentOf('s-1'));
    const h1 = await c.logs.signer1.append(partial('s-1'));
    const h2 = await c.logs.signer2.append(partial('s-1'));
    await c.logs.gateway.append(signEvent('s-1', { signers: [{ name: 'signer1', id: 1, entry: h1 }, { name: 'signer2', id: 2, entry: h2 }] }));
    expect(await c.check()).toEqual([]);
  });

  it('reports an intent without outcome, with consistent releases under it, as interrupted information', async () => {
    const c = await cluster();
    const intent = await c.logs.gateway.intend(intentOf('s-1'));
    await c.logs.signer1.append(partial('s-1'));
    await c.logs.signer2.append(partial('s-1'));
    // An abandoned session before the crash: its intent too is left open, with one release.
    const abandoned = await c.logs.gateway.intend(intentOf('s-0'));
    await c.logs.signer1.append(partial('s-0'));
    // The gateway stopped here: no outcome for either.
    const found = await c.check();
    expect(found).toEqual([
      { party: 'gateway', seq: intent.seq, severity: 'info', code: 'interrupted', message: expect.stringMatching(/^request s-1: the gateway recorded its intent, Sign of key .* but no outcome: it stopped mid-request .*; signer1 \(entry \d+\), signer2 \(entry \d+\) released under it/) },
      { party: 'gateway', seq: abandoned.seq, severity: 'info', code: 'interrupted', message: expect.stringMatching(/^request s-0: .*signer1 \(entry \d+\) released under it/) },
    ]);
  });

  it('reports an intent no signer acted on as interrupted, and a creation whose key the intent could not know yet', async () => {
    const c = await cluster();
    await c.logs.gateway.intend(intentOf('s-1'));
    await c.logs.gateway.intend(intentOf('s-2', { op: 'CreateKey', keyId: undefined, digest: undefined, algorithm: undefined }));
    const key = { op: 'dkg.step', operation: 'CreateKey', output: 'key' as const, digest: undefined, algorithm: undefined };
    await c.logs.signer1.append(partial('s-2', key));
    await c.logs.signer2.append(partial('s-2', key));
    const found = await c.check();
    expect(found.map((f) => [f.severity, f.code])).toEqual([
      ['info', 'interrupted'],
      ['info', 'interrupted'],
    ]);
    expect(found[0]!.message).toMatch(/no signer released under it/);
    expect(found[1]!.message).toMatch(/of key \(not yet known\)/);
  });

  it('still fails a release with no gateway intent or entry at all: the gateway hid it', async () => {
    const c = await cluster();
    await c.logs.gateway.intend(intentOf('s-1'));
    const hidden = await c.logs.signer1.append(partial('s-9'));
    const found = await c.check();
    expect(found).toContainEqual({ party: 'signer1', seq: hidden.seq, severity: 'error', code: 'missing-gateway-entry', message: expect.stringMatching(/^request s-9: signer1 produced a partial, but the gateway's log has no entry/) });
  });

  it('fails signers that released different messages under one unfinished request', async () => {
    const c = await cluster();
    // The intent names no key or digest (a creation's key is not known yet): only the signers' own records can disagree.
    await c.logs.gateway.intend(intentOf('s-1', { keyId: undefined, digest: undefined }));
    await c.logs.signer1.append(partial('s-1', { digest: undefined }));
    const other = await c.logs.signer2.append(partial('s-1', { digest: 'cd'.repeat(32), keyId: '0b0c2a6e-1f1d-4a8e-b9d5-1c2d3e4f5a6b' }));
    const found = await c.check();
    expect(found.filter((f) => f.severity === 'error')).toEqual([
      { party: 'signer2', seq: other.seq, severity: 'error', code: 'signers-disagree', message: expect.stringMatching(/^request s-1: signer2 signed with key 0b0c2a6e.*, but signer1 signed with key 6f1c1f4e.* — the key and digest differ$/) },
    ]);
    expect(found.some((f) => f.code === 'interrupted')).toBe(false);
  });

  it('fails an unfinished request whose intent the signers contradict', async () => {
    const c = await cluster();
    const intent = await c.logs.gateway.intend(intentOf('s-1', { principal: { name: 'other' } }));
    await c.logs.signer1.append(partial('s-1'));
    const found = await c.check();
    expect(found).toEqual([
      { party: 'gateway', seq: intent.seq, severity: 'error', code: 'misreported', message: expect.stringMatching(/^request s-1: signer1 signed with key .* for principal app .*; the gateway's intent says Sign of key .* for principal other .* — the principal differs$/) },
    ]);
  });
});

describe('a gateway log cut below a head a signer anchored', () => {
  it('is reported as truncated, naming the file and the anchored entry', async () => {
    const c = await cluster();
    await c.logs.gateway.intend(intentOf('s-1'));
    await c.logs.gateway.append(signEvent('s-1', { output: 'none' }));
    // The anchor: the signer records the gateway's head after its last entry.
    const head = c.logs.gateway.head();
    await c.logs.signer1.append({ request: 'audit-anchor', op: 'audit.anchor', caller: 'gateway', heads: [{ party: 'gateway', ...head }], outcome: 'ok', startedAt: Date.now() });
    for (const l of Object.values(c.logs)) await l.close();

    const lines = readFileSync(c.file('gateway'), 'utf8').split('\n').filter(Boolean);
    // The closing checkpoint came after the anchor: cut it and the entry the anchor names.
    const kept = lines.filter((l) => (JSON.parse(l) as { seq: number }).seq < head.seq);
    writeFileSync(c.file('gateway'), kept.map((l) => `${l}\n`).join(''));
    const logs = await Promise.all((['gateway', 'signer1', 'signer2'] as const).map((n) => readLog(c.file(n))));
    const heads = collectKnownHeads(logs);
    const alone = await verifyLog(c.file('gateway'), keyOf(ids.gateway));
    expect(alone.ok, 'the chain alone still holds').toBe(true);
    const r = await verifyLog(c.file('gateway'), keyOf(ids.gateway), { knownHeads: heads.get('gateway') });
    expect(r.ok).toBe(false);
    expect(r.findings).toEqual([
      { party: 'gateway', seq: head.seq, severity: 'error', code: 'truncated', message: expect.stringContaining(`${c.file('gateway')} ends at seq ${head.seq - 1}, but signer1 (entry`) },
    ]);
    expect(r.findings[0]!.message).toContain(`recorded its entry ${head.seq}`);
  });
});
