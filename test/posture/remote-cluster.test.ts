// doctor and audit verify from "another host" against a real cluster started with `mpchsm up`:
// the asker holds only a copy of the auditor's env file and of DIR/genesis.json, in a directory
// of its own. The signed
// reports name each signer's operator and host and give the single-domain verdict; audit verify
// holds, then fails when a signer's log is edited on its host, and when its end is cut (what a
// gateway cutting the signer's pages would show).
import { copyFileSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../helpers/cluster.js';

describe('doctor and audit verify with --genesis/--as/--dir', () => {
  let tc: TestCluster;
  let asker: string;
  let genesis: string;
  const remote = (cmd: string[]) => tc.mpchsmStatus(...cmd, '--genesis', genesis, '--as', 'auditor', '--dir', asker);
  beforeAll(async () => {
    tc = await startCluster();
    asker = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-test-asker-'));
    copyFileSync(path.join(tc.dir, 'principals', 'auditor.env'), path.join(asker, 'auditor.env'));
    genesis = path.join(asker, 'genesis.json');
    copyFileSync(path.join(tc.dir, 'genesis.json'), genesis);
    // Some traffic for the logs: a key made and used.
    await tc.mpchsm('audit', 'verify', '--dir', tc.dir);
  }, 180_000);
  afterAll(async () => {
    await tc?.destroy();
    if (asker) rmSync(asker, { recursive: true, force: true });
  });

  it("doctor reports each signer's operator and host from its signed report, and the single domain", async () => {
    const r = await remote(['doctor']);
    expect(r.code, r.out).toBe(0);
    const user = os.userInfo().username;
    for (const name of ['signer1', 'signer2', 'signer3']) expect(r.out).toMatch(new RegExp(`^  ${name}\\s+${os.hostname()} \\(\\w+\\)\\s+${user} \\(\\d+\\)`, 'm'));
    expect(r.out).toMatch(/3 signers, threshold 2, 3 reported/);
    expect(r.out).toContain('[reported-same-operator] signer1, signer2 and signer3 report running as the same account');
    expect(r.out).toContain('[reported-same-host]');
    expect(r.out).toMatch(/verdict: this deployment is a SINGLE ADMINISTRATIVE DOMAIN: one operator \(.+\) runs every signer/);
    expect((await remote(['doctor', '--strict'])).code).toBe(1);
  });

  it('an application principal may not ask for the reports', async () => {
    const appDir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-test-app-'));
    try {
      copyFileSync(path.join(tc.dir, 'principals', 'app.env'), path.join(appDir, 'app.env'));
      const r = await tc.mpchsmStatus('doctor', '--genesis', genesis, '--as', 'app', '--dir', appDir);
      expect(r.code, r.out).toBe(2);
      expect(r.out).toMatch(/AccessDeniedException: principal app is not allowed mpchsm:Approve/);
    } finally {
      rmSync(appDir, { recursive: true, force: true });
    }
  });

  it('the local doctor takes its verdict from the same signed reports', async () => {
    const r = await tc.mpchsmStatus('doctor', '--dir', tc.dir);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/signed reports \(asked through the gateway as auditor.*\): 3 of 3 signers/);
    // What the local facts already say is not repeated from the reports; the verdict is the reports'.
    expect(r.out).toContain('[same-process-user]');
    expect(r.out).not.toContain('[reported-same-operator]');
    expect(r.out).toContain('SINGLE ADMINISTRATIVE DOMAIN: one operator');
  });

  it("audit verify holds, then fails on a signer's log edited on its host", async () => {
    const ok = await remote(['audit', 'verify']);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toContain('audit verify: every chain, signed head and cross-check holds');

    // Edit one character of an early entry in place (same length, so the signer's appends are unaffected), then put it back.
    const file = path.join(tc.dir, 'signers', 'signer2', 'audit.jsonl');
    const text = readFileSync(file, 'utf8');
    const at = text.indexOf('"time":"') + '"time":"20'.length;
    const original = text[at]!;
    const fd = openSync(file, 'r+');
    try {
      writeSync(fd, original === '9' ? '8' : '9', at);
      const bad = await remote(['audit', 'verify']);
      expect(bad.code, bad.out).toBe(1);
      expect(bad.out).toMatch(/signer2 .*\[(edited|wrong-party|forged-head)\]/);
    } finally {
      writeSync(fd, original, at);
      closeSync(fd);
    }
    expect((await remote(['audit', 'verify'])).code).toBe(0);
  });

  it("audit verify fails when a signer's log is cut short of the head its signed report names", async () => {
    const file = path.join(tc.dir, 'signers', 'signer3', 'audit.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    // The last entries go (the file as the gateway would relay it, cut); the signer's own head is in its report.
    truncateSync(file, Buffer.byteLength(lines.slice(0, -3).join('\n') + '\n'));
    const cut = await remote(['audit', 'verify']);
    expect(cut.code, cut.out).toBe(1);
    // Cut short of the head signer3 signed (or, if the gateway anchored its head there meanwhile,
    // the signer's next append lands past a hole at the old end: a damaged line either way).
    expect(cut.out, cut.out).toMatch(/signer3 .*(\[truncated\].*signer3.s signed posture report|\[malformed\])/);
  });
});
