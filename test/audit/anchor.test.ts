// The signer's side of the audit anchor (contract/signer-rpc/audit.ts): it records the gateway's
// head it is sent in its own log, so the gateway's last entries are anchored. A gateway that lies
// — floods anchors, sends one without a head, or an older head — gets no more than a bounded
// number of entries, and never a head older than the last it anchored.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readLog } from '../../audit/verify.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { enrolledSigner } from '../helpers/signer.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-anchor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const head = (seq: number) => ({ seq, hash: seq.toString(16).padStart(64, '0') });

describe('the audit anchor at a signer', () => {
  it('records a later gateway head, at most one per 200 ms, and refuses an anchor without a head', async () => {
    const signer = await enrolledSigner(dir, { checkpointIntervalMs: 0 });
    try {
      const service = await signer.start();
      const anchor = service.routes()[signerRoutes.audit.anchor.path]!;
      expect(await anchor({}, { callerHead: head(10) })).toEqual({ anchored: true, head: head(10) });
      // A flood: answered, not recorded.
      for (let i = 11; i < 60; i++) expect(await anchor({}, { callerHead: head(i) })).toMatchObject({ anchored: false, head: head(10) });
      await new Promise((r) => setTimeout(r, 250));
      // An older head is not recorded over a later one.
      expect(await anchor({}, { callerHead: head(5) })).toMatchObject({ anchored: false, head: head(10) });
      expect(await anchor({}, { callerHead: head(60) })).toEqual({ anchored: true, head: head(60) });
      await expect(anchor({}, {})).rejects.toThrow(/carries the gateway head/);
      await expect(anchor({ head: head(70) }, { callerHead: head(70) })).rejects.toThrow();
    } finally {
      await signer.close();
    }
    const entries = (await readLog(signer.auditFile)).lines.flatMap((l) => (l.entry.kind === 'event' && l.entry.op === 'audit.anchor' ? [l.entry] : []));
    expect(entries.filter((e) => e.outcome === 'ok').map((e) => [e.request, e.heads])).toEqual([
      ['audit-anchor', [{ party: 'gateway', ...head(10) }]],
      ['audit-anchor', [{ party: 'gateway', ...head(60) }]],
    ]);
  });
});
