import { rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../audit/log.js';
import { collectKnownHeads, crossCheck } from '../../audit/crosscheck.js';
import { readLog, verifyLog } from '../../audit/verify.js';
import type { AuditEventInput, Head } from '../../audit/entry.js';
import { identity, keyOf, signEvent, tempDir } from './fixtures.js';

const ids = { gateway: identity('gateway'), signer1: identity('signer1'), signer2: identity('signer2') };
type Name = keyof typeof ids;

async function cluster() {
  const dir = tempDir();
  const file = (n: Name) => path.join(dir, `${n}.jsonl`);
  const logs = {
    gateway: await AuditLog.open(file('gateway'), ids.gateway),
    signer1: await AuditLog.open(file('signer1'), ids.signer1),
    signer2: await AuditLog.open(file('signer2'), ids.signer2),
  };
  /** One signing operation as the lead wires it: signers log first, the gateway records their heads. */
  async function sign(request: string, opts: { at?: ('signer1' | 'signer2')[]; named?: ('signer1' | 'signer2')[]; gateway?: boolean; signer?: Partial<AuditEventInput> } = {}) {
    const at = opts.at ?? ['signer1', 'signer2'];
    const heads: Partial<Record<Name, Head>> = {};
    for (const s of at)
      heads[s] = await logs[s].append(
        signEvent(request, { op: 'frost.sign', caller: ids.gateway.fingerprint, output: 'partial', heads: [{ party: 'gateway', ...logs.gateway.head() }], ...opts.signer }),
      );
    if (opts.gateway === false) return;
    const named = opts.named ?? at;
    return logs.gateway.append(signEvent(request, { signers: named.map((name, i) => ({ name, id: i + 1, ...(heads[name] && { entry: heads[name] }) })) }));
  }
  const close = async () => {
    for (const l of Object.values(logs)) await l.close();
    const parsed = await Promise.all((['gateway', 'signer1', 'signer2'] as const).map((n) => readLog(file(n))));
    return { gateway: parsed[0]!, signers: parsed.slice(1), file };
  };
  return { logs, sign, close, file };
}

describe('crossCheck', () => {
  it('finds nothing when every release is backed and every partial accounted for', async () => {
    const c = await cluster();
    await c.sign('req-1');
    await c.sign('req-2');
    // A refused request: the gateway records it and releases nothing.
    await c.logs.gateway.append(signEvent('req-3', { outcome: 'refused', reason: 'no policy allows it', output: 'none' }));
    const { gateway, signers, file } = await c.close();
    expect(crossCheck(gateway, signers)).toEqual([]);

    // The heads the gateway recorded let each signer's log be checked for truncation.
    const heads = collectKnownHeads([gateway, ...signers]);
    expect(heads.get('signer1')?.map((h) => h.source)).toEqual([expect.stringMatching(/^gateway \(entry \d+\)$/), expect.stringMatching(/^gateway/)]);
    expect(heads.get('gateway')?.length).toBe(4);
    for (const n of ['signer1', 'signer2'] as const) expect((await verifyLog(file(n), keyOf(ids[n]), { knownHeads: heads.get(n) })).ok).toBe(true);
  });

  it('warns of a request released twice, not of failed attempts before its one success', async () => {
    const c = await cluster();
    await c.logs.gateway.append(signEvent('req-1', { outcome: 'failed', reason: 'a holder was down', output: 'none' }));
    await c.sign('req-1');
    await c.sign('req-2');
    const again = await c.sign('req-2');
    const { gateway, signers } = await c.close();
    expect(crossCheck(gateway, signers)).toEqual([
      { party: 'gateway', seq: again!.seq, severity: 'warning', code: 'duplicate-request', message: expect.stringMatching(/^request req-2 has 2 successful gateway entries/) },
    ]);
  });

  it('flags a gateway release whose signer entry is missing', async () => {
    const c = await cluster();
    await c.sign('req-1');
    const released = await c.sign('req-2', { at: ['signer1'], named: ['signer1', 'signer2'] });
    const { gateway, signers } = await c.close();
    expect(crossCheck(gateway, signers)).toEqual([
      {
        party: 'gateway',
        seq: released!.seq,
        severity: 'error',
        code: 'missing-signer-entry',
        message: "request req-2: the gateway released a signature naming signer signer2, but signer2's log has no entry for this request",
      },
    ]);
  });

  it('flags a signer partial without its gateway entry, and one the gateway does not name', async () => {
    const c = await cluster();
    await c.sign('req-1');
    await c.sign('req-2', { at: ['signer2'], gateway: false });
    await c.sign('req-3', { at: ['signer1', 'signer2'], named: ['signer1'] });
    const { gateway, signers } = await c.close();
    const fs = crossCheck(gateway, signers);
    expect(fs.map((f) => [f.party, f.code])).toEqual([
      ['signer2', 'missing-gateway-entry'],
      ['signer2', 'signer-not-listed'],
    ]);
    expect(fs[0]!.message).toBe("request req-2: signer2 produced a partial, but the gateway's log has no entry for this request");
    expect(fs[0]!.seq).toBe(signers[1]!.lines.find((l) => l.entry.kind === 'event' && l.entry.request === 'req-2')!.entry.seq);
  });

  it('flags a release naming a signer that refused, and a recorded head that points elsewhere', async () => {
    const c = await cluster();
    await c.sign('req-1', { signer: { outcome: 'refused', reason: 'key policy forbids this principal', output: 'none' } });
    const h = await c.logs.signer1.append(signEvent('req-2', { output: 'partial' }));
    await c.logs.signer2.append(signEvent('req-2', { output: 'partial' }));
    // The gateway claims signer1's entry for req-2 is an older one.
    await c.logs.gateway.append(signEvent('req-2', { signers: [{ name: 'signer1', entry: { seq: h.seq - 1, hash: 'ab'.repeat(32) } }, { name: 'signer2' }] }));
    const { gateway, signers } = await c.close();
    const fs = crossCheck(gateway, signers);
    expect(fs.map((f) => f.code)).toEqual(['signer-refused', 'signer-refused', 'head-mismatch']);
    expect(fs[0]!.message).toMatch(/signer1 recorded no partial for it \(seq \d+: refused, key policy forbids this principal\)/);
    expect(fs[2]!.message).toMatch(/recorded signer1's entry \d+ for this request, but that entry is about request req-1/);
  });
});

describe('crossCheck after a signer is restored from a backup', () => {
  /** signer1 signs req-1, then its log is lost; a new one is opened under a new identity. */
  async function restored(witness: boolean) {
    const c = await cluster();
    await c.sign('req-1');
    await c.logs.signer1.close();
    rmSync(c.file('signer1'));
    const fresh = await AuditLog.open(c.file('signer1'), identity('signer1'));
    if (witness) await c.logs.signer2.append(signEvent('change-9', { op: 'policy.RestoreSigner', output: 'none', detail: { proposal: 'p-restore-1', member: 'signer1' } }));
    await c.logs.gateway.append(signEvent('p-restore-1', { op: 'RestoreSigner', output: 'none', detail: { proposal: 'p-restore-1' } }));
    c.logs.signer1 = fresh;
    await c.sign('req-2');
    const { gateway, signers } = await c.close();
    return { gateway, signers };
  }

  it('another signer’s record of applying the restoration: the lost log’s entries are not checked, and that is said', async () => {
    const { gateway, signers } = await restored(true);
    const findings = crossCheck(gateway, signers);
    expect(findings).toEqual([expect.objectContaining({ party: 'signer1', severity: 'info', code: 'restored', message: expect.stringMatching(/proposal p-restore-1.*applied by signer2.*1 gateway entry/) })]);
    // The heads of the lost log are not held against the new one; those since are.
    const heads = collectKnownHeads([gateway, ...signers]).get('signer1') ?? [];
    expect(heads).toHaveLength(1);
  });

  it('the gateway’s word alone: the lost entries stay errors', async () => {
    const { gateway, signers } = await restored(false);
    const codes = crossCheck(gateway, signers).filter((f) => f.severity === 'error').map((f) => f.code);
    expect(codes).toContain('head-mismatch');
    expect(collectKnownHeads([gateway, ...signers]).get('signer1')).toHaveLength(2);
  });
});
