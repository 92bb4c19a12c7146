import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../audit/log.js';
import { gatewayAuditPath, signerAuditPath } from '../../audit/paths.js';
import { auditShow, auditVerify } from '../../cli/audit.js';
import type { Io } from '../../cli/cluster-dir.js';
import { doctor } from '../../cli/doctor.js';
import { exportPublicIdentity, type IdentitySecrets } from '../../contract/identity/identity.js';
import { SOFTWARE_SEALER_KIND } from '../../contract/io/seal.js';
import { identity, signEvent, tempDir } from './fixtures.js';

const SIGNERS = ['signer1', 'signer2', 'signer3'] as const;
const KEY_A = '6f1c1f4e-9a53-4c4e-9d0b-3e0b8f7d2a11';
const KEY_B = '0d4c6a62-31a5-4a8e-8a43-58b1f54f1b7e';
const gw = identity('gateway');
const ids = Object.fromEntries(SIGNERS.map((n) => [n, identity(n)])) as Record<(typeof SIGNERS)[number], IdentitySecrets>;

function capture(): Io & { text: () => string; lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (l) => lines.push(l), err: (l) => lines.push(`ERR ${l}`), text: () => lines.join('\n') };
}

const json = (file: string, v: unknown) => writeFileSync(file, JSON.stringify(v, null, 2) + '\n');

/** A port nothing listens on, so /health fails fast. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** A cluster directory as `mpchsm up` lays it out, with real identities and audit logs. */
async function makeCluster(): Promise<string> {
  const dir = tempDir();
  const port = await closedPort();
  const url = (i: number) => `http://127.0.0.1:${port}/s${i}`;
  mkdirSync(path.join(dir, 'gateway'), { recursive: true });
  mkdirSync(path.join(dir, 'operators'));
  json(path.join(dir, 'gateway', 'config.json'), {
    port,
    threshold: 2,
    signers: SIGNERS.map((name, i) => ({ name, id: i + 1, url: url(i), identity: exportPublicIdentity(ids[name]) })),
  });
  json(path.join(dir, 'gateway', 'principals.json'), {
    principals: ['admin1', 'admin2', 'app'].map((name) => ({ name, role: name === 'app' ? 'app' : 'admin', accessKeyId: 'MPC0000000000000000', secretAccessKey: 'not-printed-ever-xxxxxxxx' })),
  });
  json(path.join(dir, 'cluster.json'), {
    gateway: { pid: process.pid, url: `http://127.0.0.1:${port}` },
    signers: SIGNERS.map((name, i) => ({ name, pid: process.pid, url: url(i) })),
    threshold: 2,
    signers_total: 3,
  });
  for (const [i, name] of SIGNERS.entries()) {
    const d = path.join(dir, 'signers', name);
    mkdirSync(path.join(d, 'store'), { recursive: true });
    json(path.join(d, 'identity.json'), { ...exportPublicIdentity(ids[name]), id: i + 1 });
    json(path.join(d, 'config.json'), { name, id: i + 1, gateway: exportPublicIdentity(gw) });
    json(path.join(d, 'store', 'sealer.json'), { format: 'mpchsm-sealer', version: 1, kind: SOFTWARE_SEALER_KIND });
    writeFileSync(path.join(dir, 'operators', `${name}.secret`), `operator-secret-of-${name}`);
  }

  const gwLog = await AuditLog.open(gatewayAuditPath(dir), gw);
  const logs = Object.fromEntries(await Promise.all(SIGNERS.map(async (n) => [n, await AuditLog.open(signerAuditPath(dir, n), ids[n])] as const)));
  let clock = Date.parse('2025-01-01T00:00:00Z');
  const operation = async (request: string, keyId: string, at: (typeof SIGNERS)[number][]) => {
    const startedAt = (clock += 1000);
    const signers = [];
    for (const [i, n] of at.entries()) {
      const entry = await logs[n]!.append(
        signEvent(request, { keyId, op: 'frost.sign', output: 'partial', caller: gw.fingerprint, heads: [{ party: 'gateway', ...gwLog.head() }], startedAt: startedAt + 1 + i }),
      );
      signers.push({ name: n, id: i + 1, entry });
    }
    await gwLog.append(signEvent(request, { keyId, signers, startedAt }));
  };
  await operation('req-1', KEY_A, ['signer1', 'signer2']);
  await operation('req-2', KEY_B, ['signer2', 'signer3']);
  await operation('req-3', KEY_A, ['signer1', 'signer3']);
  await gwLog.append(signEvent('req-4', { startedAt: (clock += 1000), keyId: KEY_B, outcome: 'refused', reason: 'principal app may not use this key', output: 'none' }));
  for (const l of [gwLog, ...Object.values(logs)]) await l!.close();
  return dir;
}

let dir: string;
beforeEach(async () => {
  dir = await makeCluster();
});

describe('mpchsm audit verify', () => {
  it('exits 0 when every chain, head and cross-check holds', async () => {
    const io = capture();
    expect(await auditVerify(dir, io)).toBe(0);
    expect(io.lines[0]).toMatch(/^gateway\s+ok\s+\d+ entries, signed through entry \d+$/);
    expect(io.text()).toMatch(/signer3\s+ok/);
    expect(io.lines.at(-1)).toBe('audit verify: every chain, signed head and cross-check holds');
  });

  it('a garbled signer identity.json is a finding naming the file, not a crash', async () => {
    const file = path.join(dir, 'signers', 'signer2', 'identity.json');
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 40));
    const io = capture();
    expect(await auditVerify(dir, io)).toBe(1);
    expect(io.text()).toContain(`signer2: [unreadable] ${file}: not valid JSON (`);
    expect(io.text()).toMatch(/signer1\s+ok/);
  });

  it('exits 1 naming the party, entry and fault of an edited signer log', async () => {
    const file = signerAuditPath(dir, 'signer2');
    const lines = readFileSync(file, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes('"request":"req-1"'));
    lines[i] = lines[i]!.replace('"durationMs":12', '"durationMs":13');
    writeFileSync(file, lines.join('\n'));
    const io = capture();
    expect(await auditVerify(dir, io)).toBe(1);
    expect(io.text()).toMatch(/^signer2\s+FAILED/m);
    expect(io.text()).toContain(`  signer2 entry ${i}: [edited] hash mismatch at seq ${i}:`);
    // The gateway recorded that entry's hash too.
    expect(io.text()).toContain(`signer2 entry ${i}: [rewritten]`);
    expect(io.lines.at(-1)).toMatch(/^audit verify: FAILED \(\d+ errors\)$/);
  });

  it('catches a truncated signer log through the heads the gateway recorded', async () => {
    const file = signerAuditPath(dir, 'signer3');
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    // Cut back to before req-2: what is left is a valid, signed chain on its own.
    const keep = lines.findIndex((l) => l.includes('"request":"req-2"'));
    writeFileSync(file, lines.slice(0, keep).join('\n') + '\n');
    const io = capture();
    expect(await auditVerify(dir, io)).toBe(1);
    expect(io.text()).toMatch(new RegExp(`signer3 entry ${keep}: \\[truncated\\] ${file} ends at seq ${keep - 1}, but gateway \\(entry \\d+\\) recorded its entry`));
    expect(io.text()).toMatch(/gateway entry \d+: \[missing-signer-entry\] request req-2: .*signer3's log has no entry/);
  });

  it('exits 1 when a signer pins another gateway identity, or a log is missing', async () => {
    json(path.join(dir, 'signers', 'signer1', 'config.json'), { gateway: exportPublicIdentity(identity('impostor')) });
    let io = capture();
    expect(await auditVerify(dir, io)).toBe(1);
    expect(io.text()).toMatch(/gateway: \[wrong-party\] signer1's config names a different identity \(\w+…\) than signer2's config and signer3's config/);
    expect(io.text()).toMatch(/^gateway\s+ok/m);

    dir = await makeCluster();
    writeFileSync(gatewayAuditPath(dir), '');
    io = capture();
    expect(await auditVerify(dir, io)).toBe(1);
    expect(io.text()).toContain('gateway: [removed] the log holds no valid entry');
  });

  it('exits 2 when the directory is not a cluster', async () => {
    const io = capture();
    expect(await auditVerify(path.join(dir, 'nope'), io)).toBe(2);
    expect(io.text()).toMatch(/^ERR audit verify: .*nope does not exist$/);
    expect(await auditVerify(tempDir(), capture())).toBe(2);
  });
});

describe('mpchsm audit show', () => {
  it('prints a table for people, filtered by key', async () => {
    const io = capture();
    expect(await auditShow(dir, { key: KEY_B, json: false }, io)).toBe(0);
    expect(io.lines[0]).toMatch(/^TIME\s+PARTY\s+SEQ\s+REQUEST\s+OPERATION\s+PRINCIPAL\s+KEY\s+SIGNERS\s+OUTCOME$/);
    const rows = io.lines.slice(1);
    expect(rows.map((r) => r.split(/\s+/).slice(1, 2).concat(r.split(/\s+/)[3]!))).toEqual([
      ['gateway', 'req-2'],
      ['signer2', 'req-2'],
      ['signer3', 'req-2'],
      ['gateway', 'req-4'],
    ]);
    expect(rows.find((r) => r.includes(' gateway ') && r.includes('req-2'))).toMatch(/Sign\s+app@127\.0\.0\.1:50000\s+0d4c6a62-\S+\s+signer2,signer3\s+ok \(signature\)$/);
    expect(rows.at(-1)).toMatch(/refused: principal app may not use this key$/);
    expect(io.text()).not.toContain(KEY_A);
  });

  it('prints JSON lines for machines', async () => {
    const io = capture();
    expect(await auditShow(dir, { json: true }, io)).toBe(0);
    const entries = io.lines.map((l) => JSON.parse(l));
    expect(new Set(entries.map((e) => e.party))).toEqual(new Set(['gateway', ...SIGNERS]));
    expect(entries.filter((e) => e.kind === 'open')).toHaveLength(4);
    expect(entries.filter((e) => e.kind === 'event' && e.request === 'req-1').map((e) => e.party).sort()).toEqual(['gateway', 'signer1', 'signer2']);
  });
});

describe('mpchsm doctor', () => {
  it('a garbled operator.json is a finding naming the file and exit 1', async () => {
    const file = path.join(dir, 'signers', 'signer3', 'operator.json');
    writeFileSync(file, '{"operator": ');
    const io = capture();
    expect(await doctor(dir, { strict: false }, io)).toBe(1);
    expect(io.text()).toContain(`[damaged-file] ${file}: not valid JSON (`);
  });

  let servers: http.Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    servers = [];
  });

  it('reports the dev layout as a single administrative domain; --strict fails', async () => {
    const io = capture();
    expect(await doctor(dir, { strict: false }, io)).toBe(0);
    const text = io.text();
    expect(text).toMatch(/3 signers, threshold 2, 0 reachable/);
    for (const code of ['operator-secrets-together', 'same-host', 'same-process-user', 'same-data-owner', 'software-sealing', 'too-few-reachable', 'unknown-operator', 'shared-operator'])
      expect(text).toContain(`[${code}]`);
    expect(text).not.toContain('[shared-operator-secret]');
    expect(text).toMatch(/verdict: this deployment is a SINGLE ADMINISTRATIVE DOMAIN: .*every signer's operator secret is in .*operators/);
    // Secrets are compared, never shown (nor credentials from principals.json).
    expect(text).not.toMatch(/operator-secret-of|not-printed-ever/);
    expect(await doctor(dir, { strict: true }, capture())).toBe(1);
  });

  it('flags signers that share an operator, secret, or an administrator who operates one', async () => {
    const op = (name: string, operator: string) => json(path.join(dir, 'signers', name, 'operator.json'), { operator });
    op('signer1', 'alice');
    op('signer2', 'alice');
    op('signer3', 'admin2');
    writeFileSync(path.join(dir, 'operators', 'signer2.secret'), 'operator-secret-of-signer1');
    const io = capture();
    expect(await doctor(dir, { strict: true }, io)).toBe(1);
    const text = io.text();
    expect(text).toContain('[shared-operator] signer1 and signer2 are run by the same operator (alice)');
    expect(text).toContain('[shared-operator-secret] signer1 and signer2 are unlocked by the same operator secret');
    expect(text).toContain('[admin-is-operator] admin2 is a key administrator and also operates signer3');
    expect(text).not.toContain('[unknown-operator]');
  });

  it('does not flag distinct declared operators, and counts reachable signers against the threshold', async () => {
    SIGNERS.forEach((name, i) => json(path.join(dir, 'signers', name, 'operator.json'), { operator: `op${i}` }));
    // signer1 answers as itself, signer2 answers with someone else's identity, signer3 is down.
    const cfgFile = path.join(dir, 'gateway', 'config.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
    const answers = [ids.signer1.fingerprint, identity('other').fingerprint];
    for (const [i, fp] of answers.entries()) {
      const s = http.createServer((_, res) => res.end(JSON.stringify({ fingerprint: fp })));
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      servers.push(s);
      cfg.signers[i].url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    }
    json(cfgFile, cfg);
    const cluster = JSON.parse(readFileSync(path.join(dir, 'cluster.json'), 'utf8'));
    delete cluster.signers;
    json(path.join(dir, 'cluster.json'), cluster);

    const io = capture();
    expect(await doctor(dir, { strict: false }, io)).toBe(0);
    const text = io.text();
    expect(text).not.toMatch(/\[(shared-operator|unknown-operator|too-few-reachable)\]/);
    expect(text).toMatch(/2 reachable/);
    expect(text).toContain('[identity-mismatch] signer2 answers with a different identity than the gateway pinned');
    expect(text).toContain('SINGLE ADMINISTRATIVE DOMAIN');
  });

  it('exits 2 when it cannot read the directory', async () => {
    const io = capture();
    expect(await doctor(path.join(dir, 'missing'), { strict: false }, io)).toBe(2);
    expect(io.text()).toMatch(/^ERR doctor: .*missing does not exist$/);
  });
});
