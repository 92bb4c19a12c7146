// A real SignerService answering posture.report and audit.read (signers/node/posture.ts): the
// report is signed by its identity over the nonce asked and names its sealing, epoch and log
// head; the log comes in pages bounded by `limit`, never past the head, and rebuilds the file.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { lineHash } from '../../audit/chain.js';
import { readLogPage } from '../../audit/page.js';
import { parseLog } from '../../audit/verify.js';
import { verifyAndReport } from '../../cli/audit.js';
import { verifyPosture } from '../../contract/posture/report.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { enrolledSigner } from '../helpers/signer.js';
import { tempDir } from '../audit/fixtures.js';

const { posture, audit } = signerRoutes;

describe("a signer's posture and log pages", () => {
  it('reports itself, signed over the nonce, and serves its log in bounded pages', async () => {
    const signer = await enrolledSigner(tempDir());
    try {
      const routes = (await signer.start()).routes();
      for (let i = 0; i < 5; i++) await signer.audit.append({ request: `r-${i}`, op: 'test', caller: 'gateway', startedAt: Date.now(), outcome: 'ok', output: 'none' });
      const nonce = 'ab'.repeat(32);
      const { report } = posture.report.response.parse(await routes[posture.report.path]!({ nonce }, {}));
      const r = verifyPosture(report, signer.self.public, nonce);
      expect(r).toMatchObject({ party: 'signer1', role: 'signer', seal: signer.store.sealerKind, epoch: { governanceVersion: 1, ledgerSeq: 0 }, hostname: os.hostname() });
      expect(r.operator.uid).toBe(process.getuid!());
      expect(r.auditHead).toEqual(signer.audit.head());

      const lines: string[] = [];
      for (let pages = 0; pages < 20; pages++) {
        const page = audit.read.response.parse(await routes[audit.read.path]!({ from: lines.length, limit: 2 }, {}));
        expect(page.lines.length).toBeLessThanOrEqual(2);
        lines.push(...page.lines);
        if (!page.more) break;
      }
      expect(lines.map((l) => `${l}\n`).join('')).toBe(readFileSync(signer.auditFile, 'utf8'));
      expect(lineHash(Buffer.from(lines[r.auditHead.seq]!))).toBe(r.auditHead.hash);
      await expect(routes[audit.read.path]!({ from: 0, limit: 20_000 }, {})).rejects.toThrow();
    } finally {
      await signer.close();
    }
  });

  it('a log the gateway relays cut short of the head in the signed report fails audit verify', async () => {
    const signer = await enrolledSigner(tempDir());
    try {
      const routes = (await signer.start()).routes();
      for (let i = 0; i < 4; i++) await signer.audit.append({ request: `r-${i}`, op: 'test', caller: 'gateway', startedAt: Date.now(), outcome: 'ok', output: 'none' });
      const nonce = 'cd'.repeat(32);
      const r = verifyPosture(posture.report.response.parse(await routes[posture.report.path]!({ nonce }, {})).report, signer.self.public, nonce);
      const { lines } = audit.read.response.parse(await routes[audit.read.path]!({ from: 0, limit: 100 }, {}));
      const check = async (kept: string[]) => {
        const out: string[] = [];
        const log = parseLog(Buffer.from(kept.map((l) => `${l}\n`).join('')), 'signer1');
        const heads = [{ ...r.auditHead, source: "signer1's signed posture report" }];
        const key = { fingerprint: signer.self.fingerprint, signPublicKey: signer.self.public.signPublicKey };
        const code = await verifyAndReport([{ name: 'signer1', label: 'the relayed log', key, log, heads }], [], { out: (l) => out.push(l), err: (l) => out.push(l) });
        return { code, text: out.join('\n') };
      };
      expect((await check(lines)).code).toBe(0);
      // The relay drops the last two entries; the chain that remains is intact.
      const cut = await check(lines.slice(0, -2));
      expect(cut.code).toBe(1);
      expect(cut.text).toMatch(/signer1 .*\[truncated\] the relayed log ends at seq \d+, but signer1's signed posture report recorded its entry/);
    } finally {
      await signer.close();
    }
  });

  it('a page stops at the head it was given: a line being written is not handed out', async () => {
    const signer = await enrolledSigner(tempDir());
    try {
      const head = signer.audit.head();
      await signer.audit.append({ request: 'later', op: 'test', caller: 'gateway', startedAt: Date.now(), outcome: 'ok', output: 'none' });
      const page = await readLogPage(signer.auditFile, head, 0, 100);
      expect(page.lines).toHaveLength(head.seq + 1);
      expect(page.more).toBe(false);
    } finally {
      await signer.close();
    }
  });
});
