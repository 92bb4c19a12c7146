// Custody posture in `mpchsm doctor`, on a real cluster (3 signers, threshold 2), through the
// `mpchsm` command: with no backup each signer is noted as having none; a backup made but not
// verified is reported as made, never as verified; once signer1's and signer2's backups, both
// for custodian A, are verified against the cluster, the doctor flags A as holding 2 of 3 (the
// threshold) and fails --strict; signer3, backed up to custodian B, is reported with B. A
// verify that fails, or one not against the cluster, records nothing; a damaged log line is a
// damaged-file finding (exit 1). From another host (--genesis/--as), each signer's signed
// report names its last backup made, and nothing there is called verified. A log that cannot be
// written is said on stderr; the backup and the verdict stand.
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctor } from '../../cli/doctor.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { kmsClient } from '../kms/kms-client.js';
import { mpchsmIn } from './run.js';

const LONG = 300_000;
const PASS = 'custodian passphrase for custody tests';

let tc: TestCluster;
let work: string;
const custodianDir = (c: string) => path.join(work, c);
const backupOf = (signer: string) => path.join(work, `${signer}.backup`);
const custodyLines = () => (existsSync(path.join(tc.dir, 'custody.jsonl')) ? readFileSync(path.join(tc.dir, 'custody.jsonl'), 'utf8').trim().split('\n') : []);

async function backup(signer: string, custodian: string) {
  const secret = readFileSync(path.join(tc.dir, 'operators', `${signer}.secret`), 'utf8');
  const r = await mpchsmIn(secret, 'signer', 'backup', '--dir', path.join(tc.dir, 'signers', signer), '--custodian', path.join(custodianDir(custodian), 'custodian.json'), '--out', backupOf(signer));
  expect(r.code, r.stderr).toBe(0);
  return r;
}
const verify = (signer: string, custodian: string, ...more: string[]) => mpchsmIn(PASS, 'backup', 'verify', backupOf(signer), '--custodian-dir', custodianDir(custodian), ...more);

/** The doctor's output and exit status. */
async function runDoctor(strict = false): Promise<{ code: number; text: string; row: (signer: string) => string }> {
  const lines: string[] = [];
  const code = await doctor(tc.dir, { strict }, { out: (l) => lines.push(l), err: (l) => lines.push(`ERR ${l}`) });
  const start = lines.findIndex((l) => l.startsWith('backups ('));
  const table = lines.slice(start + 1, start + 5);
  return { code, text: lines.join('\n'), row: (s) => table.find((l) => l.trim().startsWith(`${s} `)) ?? `no row for ${s}` };
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-test-custody-'));
  tc = await startCluster();
  await kmsClient(tc, 'admin1').send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
  for (const c of ['custodianA', 'custodianB']) {
    const r = await mpchsmIn(PASS, 'custodian', 'init', '--dir', custodianDir(c), '--name', c);
    expect(r.code, r.stderr).toBe(0);
  }
}, LONG);

afterAll(async () => {
  await tc?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
}, LONG);

describe('custody posture in mpchsm doctor', () => {
  it('with no backup, notes each signer as having none (no finding)', async () => {
    const d = await runDoctor();
    expect(d.code).toBe(0);
    for (const s of ['signer1', 'signer2', 'signer3']) {
      expect(d.row(s)).toMatch(new RegExp(`^\\s+${s}\\s+none\\s+-\\s+-$`));
      expect(d.text).toContain(`[no-backup] ${s} has no backup recorded`);
    }
    expect(d.text).not.toContain('[custodian-holds-threshold]');
  });

  it('a backup made but not verified is reported as made, not verified', async () => {
    await backup('signer1', 'custodianA');
    // Neither a verify without the cluster nor one that fails is recorded.
    expect((await verify('signer1', 'custodianA')).code).toBe(0);
    expect((await verify('signer1', 'custodianB', '--dir', tc.dir)).code).toBe(1);
    expect(custodyLines()).toEqual([]);
    const d = await runDoctor();
    expect(d.row('signer1')).toMatch(/signer1\s+\S+Z\s+custodianA \([0-9a-f]{12}…\)\s+made, not verified$/);
    expect(d.text).not.toContain('[no-backup] signer1');
    expect(d.text).toContain('[no-backup] signer2');
  }, LONG);

  it('signer1 and signer2 verified with custodian A: A holds the threshold, a finding that fails --strict', async () => {
    await backup('signer2', 'custodianA');
    for (const s of ['signer1', 'signer2']) {
      const r = await verify(s, 'custodianA', '--dir', tc.dir);
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
    const lines = custodyLines().map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.Event, l.Signer, l.CustodianName])).toEqual([
      ['verified', 'signer1', 'custodianA'],
      ['verified', 'signer2', 'custodianA'],
    ]);
    const d = await runDoctor();
    for (const s of ['signer1', 'signer2']) expect(d.row(s)).toMatch(new RegExp(`${s}\\s+\\S+Z\\s+custodianA \\([0-9a-f]{12}…\\)\\s+verified \\S+Z$`));
    expect(d.text).toMatch(/\[custodian-holds-threshold\] custodian custodianA \([0-9a-f]{12}…\) holds backups of signer1 and signer2: 2 of 3, at least the threshold 2 — custodianA could rebuild every key in them/);
    expect(d.code).toBe(0);
    expect((await runDoctor(true)).code).toBe(1);
  }, LONG);

  it('signer3 backed up to custodian B is reported with B, made then verified; A alone is flagged', async () => {
    await backup('signer3', 'custodianB');
    const made = await runDoctor();
    expect(made.row('signer3')).toMatch(/signer3\s+\S+Z\s+custodianB \([0-9a-f]{12}…\)\s+made, not verified$/);
    expect((await verify('signer3', 'custodianB', '--dir', tc.dir)).code).toBe(0);
    const d = await runDoctor();
    expect(d.row('signer3')).toMatch(/signer3\s+\S+Z\s+custodianB \([0-9a-f]{12}…\)\s+verified \S+Z$/);
    expect(d.text).not.toContain('[no-backup]');
    expect(d.text.match(/\[custodian-holds-threshold\]/g)).toHaveLength(1);
    expect(d.text).not.toMatch(/custodian custodianB .* holds backups/);
  }, LONG);

  it('a newer backup not yet verified is reported as such, naming the last verified one', async () => {
    await backup('signer3', 'custodianA');
    const d = await runDoctor();
    expect(d.row('signer3')).toMatch(/signer3\s+\S+Z\s+custodianA \([0-9a-f]{12}…\)\s+made, not verified \(last verified: made \S+Z for custodianB \([0-9a-f]{12}…\), verified \S+Z\)$/);
    // custodian A was handed signer3's backup too: now it holds all three.
    expect(d.text).toMatch(/holds backups of signer1, signer2 and signer3: 3 of 3/);
  }, LONG);

  it("from another host, each signer's signed report names its last backup made, none called verified", async () => {
    const asker = path.join(work, 'asker');
    mkdirSync(asker);
    copyFileSync(path.join(tc.dir, 'principals', 'auditor.env'), path.join(asker, 'auditor.env'));
    copyFileSync(path.join(tc.dir, 'genesis.json'), path.join(asker, 'genesis.json'));
    const r = await tc.mpchsmStatus('doctor', '--genesis', path.join(asker, 'genesis.json'), '--as', 'auditor', '--dir', asker);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^  signer1\s+\S+Z\s+custodianA \([0-9a-f]{12}…\)$/m);
    expect(r.out).toMatch(/^  signer3\s+\S+Z\s+custodianA \([0-9a-f]{12}…\)$/m);
    expect(r.out).not.toMatch(/verified \S+Z/);
  }, LONG);

  it('a damaged line in custody.jsonl is a damaged-file finding naming it, and exit 1', async () => {
    const n = custodyLines().length;
    appendFileSync(path.join(tc.dir, 'custody.jsonl'), '{"Event": "verified"\n');
    const d = await runDoctor();
    expect(d.code).toBe(1);
    expect(d.text).toContain(`[damaged-file] ${path.join(tc.dir, 'custody.jsonl')}: line ${n + 1} is not valid JSON`);
  });

  it('a log that cannot be written is said on stderr; the backup and the verdict stand', async () => {
    const made = path.join(tc.dir, 'signers', 'signer2', 'backups.jsonl');
    const custody = path.join(tc.dir, 'custody.jsonl');
    for (const f of [made, custody]) {
      renameSync(f, `${f}.kept`);
      mkdirSync(f); // a directory where the log should be: it cannot be replaced
    }
    try {
      expect((await backup('signer2', 'custodianB')).stderr).toContain(`could not be recorded in ${made}`);
      const r = await verify('signer2', 'custodianB', '--dir', tc.dir);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`the backup verified, but it could not be recorded in ${custody}`);
    } finally {
      for (const f of [made, custody]) {
        rmSync(f, { recursive: true });
        renameSync(`${f}.kept`, f);
      }
    }
  }, LONG);
});
