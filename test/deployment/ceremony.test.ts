// The deployment ceremony of shared/CONTRACT.md ("Deployment across hosts") with each party as
// its own Linux user, in its own 0700 directory, on its own loopback address: three signer
// operators, the gateway's operator, two founding administrators, an application and an
// auditor. The test (root) stands in for email only: it copies public files (*.json, the genesis
// passed from administrator to administrator) between their directories, never a secret. Then
// an application admitted by `principal request` → `propose` → `approve` signs through the KMS
// API (HTTPS, the SDK trusting the gateway's certificate) and the PKCS#11 module, and the
// auditor's `doctor` reports the separation. Creating users needs root (as in CI).
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { CreateKeyCommand, GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../cli/env-file.js';
import { entry } from '../../cli/layout.js';
import { isAlive, stopPid } from '../../cli/processes.js';
import { DEFAULT_SCRYPT, SEALER_HEADER_FILE } from '../../contract/io/seal.js';
import { repoRoot } from '../helpers/cluster.js';
import { freePort, makeCertificate, mpchsm, mpchsmJson, runProcess, type RunAs } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const LONG = 300_000;

type Role = 'signer1' | 'signer2' | 'signer3' | 'gateway' | 'admin1' | 'admin2' | 'app' | 'auditor';
const ROLES: Role[] = ['signer1', 'signer2', 'signer3', 'gateway', 'admin1', 'admin2', 'app', 'auditor'];
const SIGNERS = ['signer1', 'signer2', 'signer3'] as const;
const ADDRESS: Record<(typeof SIGNERS)[number] | 'gateway', string> = { signer1: '127.0.0.2', signer2: '127.0.0.3', signer3: '127.0.0.4', gateway: '127.0.0.5' };

describe.skipIf(!isRoot)('the ceremony, each party its own Linux user (needs root to create the users; skipped otherwise)', () => {
  const tag = Math.random().toString(16).slice(2, 8);
  const user = (r: Role) => `mpc${tag}-${r}`;
  let base: string;
  const party = {} as Record<Role, RunAs & { user: string }>;
  const dir = (r: Role) => party[r].home;
  const passphrase = (r: Role) => `passphrase of ${r}'s operator, ${tag}\n`;
  const pids = new Set<number>();
  const made: string[] = [];
  /** Directories made traversable by others for the test, with their modes to restore. */
  const opened: [string, number][] = [];
  /** Root's stand-in for email: a public file from one party's directory into another's, owned by the recipient. */
  const send = (from: string, to: Role, name = path.basename(from)): string => {
    expect(from.endsWith('.json'), `only public *.json files travel: ${from}`).toBe(true);
    const dest = path.join(dir(to), name);
    copyFileSync(from, dest);
    chownSync(dest, party[to].uid, party[to].gid);
    chmodSync(dest, 0o644);
    return dest;
  };
  const ok = (r: { code: number | null; stdout: string; stderr: string }, what: string) => expect(r.code, `${what}: ${r.stderr}${r.stdout}`).toBe(0);
  const env = (r: Role, name: string = r) => parseEnvFile(readFileSync(path.join(dir(r), `${name}.env`), 'utf8'));
  let genesis: string;
  let keyId: string;
  const agents: https.Agent[] = [];
  /** A KMS client with `r`'s credentials that trusts exactly the certificate its env file names. */
  function kms(r: Role): KMSClient {
    const e = env(r);
    expect(e.MPCHSM_KMS_ENDPOINT).toMatch(/^https:\/\/127\.0\.0\.5:\d+$/);
    const httpsAgent = new https.Agent({ ca: readFileSync(e.AWS_CA_BUNDLE!) });
    agents.push(httpsAgent);
    return new KMSClient({
      endpoint: e.MPCHSM_KMS_ENDPOINT,
      region: e.AWS_REGION,
      credentials: { accessKeyId: e.AWS_ACCESS_KEY_ID!, secretAccessKey: e.AWS_SECRET_ACCESS_KEY! },
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({ httpsAgent, requestTimeout: 60_000 }),
    });
  }

  beforeAll(() => {
    // The parties' users run node on the package's dist/ and load its module: every directory
    // above it must let them through (a checkout under /root does not). Test-only, undone in afterAll.
    for (let d = repoRoot; d !== path.dirname(d); d = path.dirname(d)) {
      const mode = statSync(d).mode & 0o7777;
      if ((mode & 0o001) === 0) {
        chmodSync(d, mode | 0o001);
        opened.push([d, mode]);
      }
    }
    for (const f of [path.join(repoRoot, 'dist', 'cli', 'main.js'), entry.pkcs11Module])
      if ((statSync(f).mode & 0o004) === 0) throw new Error(`${f} is not readable by other users: the parties cannot run the package`);
    base = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-test-ceremony-'));
    chmodSync(base, 0o755); // traversable, so each user reaches its own 0700 directory
    for (const r of ROLES) {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '--user-group', user(r)], { stdio: 'pipe', timeout: 30_000 });
      made.push(user(r));
      const uid = Number(execFileSync('id', ['-u', user(r)], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', user(r)], { encoding: 'utf8' }).trim());
      const home = path.join(base, r);
      mkdirSync(home, { mode: 0o700 });
      chownSync(home, uid, gid);
      party[r] = { uid, gid, home, user: user(r) };
    }
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) a.destroy();
    if (party.gateway) await mpchsm(['gateway', 'stop', '--dir', dir('gateway')], { as: party.gateway }).catch(() => undefined);
    for (const s of SIGNERS) if (party[s]) await mpchsm(['signer', 'stop', '--dir', dir(s)], { as: party[s] }).catch(() => undefined);
    // Whatever a failed step left running, by the pids the starts reported.
    for (const pid of pids) if (isAlive(pid)) await stopPid(pid);
    for (const u of made) {
      try {
        execFileSync('userdel', [u], { stdio: 'pipe', timeout: 30_000 });
      } catch (e) {
        console.error(`userdel ${u}: ${(e as Error).message}`);
      }
    }
    for (const [d, mode] of opened) chmodSync(d, mode);
    if (base) rmSync(base, { recursive: true, force: true });
  }, 120_000);

  it('each party makes its own secrets in its own directory; the genesis goes from administrator to administrator', async () => {
    for (const a of ['admin1', 'admin2'] as const) ok(await mpchsm(['admin', 'init', '--dir', dir(a), '--name', a], { as: party[a] }), `admin init ${a}`);
    for (const s of SIGNERS) {
      const listen = `${ADDRESS[s]}:${await freePort(ADDRESS[s])}`;
      ok(await mpchsm(['signer', 'init', '--dir', dir(s), '--name', s, '--listen', listen], { as: party[s], input: passphrase(s) }), `signer init ${s}`);
    }
    // The gateway's operator brings a certificate for its address; the key stays in its directory.
    const tlsDir = path.join(dir('gateway'), 'tls-in');
    mkdirSync(tlsDir, { mode: 0o700 });
    const tls = makeCertificate(tlsDir, ADDRESS.gateway);
    for (const f of [tlsDir, tls.cert, tls.key]) chownSync(f, party.gateway.uid, party.gateway.gid);
    const [kmsPort, p11Port] = [await freePort(ADDRESS.gateway), await freePort(ADDRESS.gateway)];
    const gw = await mpchsmJson(
      ['gateway', 'init', '--dir', dir('gateway'), '--listen', `${ADDRESS.gateway}:${kmsPort}`, '--p11-listen', `${ADDRESS.gateway}:${p11Port}`, '--tls-cert', tls.cert, '--tls-key', tls.key],
      { as: party.gateway, input: passphrase('gateway') },
    );
    expect(gw.Kms).toBe(`https://${ADDRESS.gateway}:${kmsPort}`);

    // A passphrase a person typed is stretched at the default cost (up's drawn secrets are not: cluster/cluster).
    for (const r of [...SIGNERS, 'gateway'] as const) {
      expect(JSON.parse(readFileSync(path.join(dir(r), 'store', SEALER_HEADER_FILE), 'utf8')).kdf, r).toMatchObject(DEFAULT_SCRYPT);
    }

    // Every secret stays in its owner's directory, unreadable by the others.
    for (const r of ['signer1', 'signer2', 'signer3', 'gateway', 'admin1', 'admin2'] as const) {
      const st = statSync(dir(r));
      expect([st.mode & 0o777, st.uid]).toEqual([0o700, party[r].uid]);
    }

    // admin1 gathers the public files and creates the genesis; each administrator signs it in turn.
    const inbox = [send(path.join(dir('gateway'), 'gateway.json'), 'admin1'), ...SIGNERS.map((s) => send(path.join(dir(s), `${s}.signer.json`), 'admin1'))];
    const admin2File = send(path.join(dir('admin2'), 'admin2.admin.json'), 'admin1');
    const created = await mpchsmJson(
      ['genesis', 'create', '--threshold', '2', '--gateway', inbox[0]!, ...inbox.slice(1).flatMap((f) => ['--signer', f]), '--admin', path.join(dir('admin1'), 'admin1.admin.json'), '--admin', admin2File, '--out', path.join(dir('admin1'), 'genesis.json')],
      { as: party.admin1 },
    );
    expect(created.ClusterId).toMatch(/^mpchsm-/);
    const first = await mpchsmJson(['genesis', 'sign', path.join(dir('admin1'), 'genesis.json'), '--as', 'admin1', '--dir', dir('admin1')], { as: party.admin1 });
    expect(first.Missing).toEqual(['admin2']);
    const passed = send(path.join(dir('admin1'), 'genesis.json'), 'admin2');
    const second = await mpchsmJson(['genesis', 'sign', passed, '--as', 'admin2', '--dir', dir('admin2')], { as: party.admin2 });
    expect(second.Missing).toEqual([]);
    genesis = passed;
    for (const r of ['admin1', 'signer1', 'signer2', 'signer3', 'gateway', 'app', 'auditor'] as const) send(genesis, r, 'genesis.json');

    // Each administrator's env file trusts the gateway's certificate, and the module speaks TLS to it.
    const e = env('admin1');
    expect(readFileSync(e.AWS_CA_BUNDLE!, 'utf8')).toBe(readFileSync(tls.cert, 'utf8'));
    expect(readFileSync(e.MPCHSM_PKCS11_CONF!, 'utf8')).toMatch(new RegExp(`gateway = ${ADDRESS.gateway}:${p11Port}\\n[^]*tls = on\\ntls_ca = ${e.AWS_CA_BUNDLE}`));
  }, LONG);

  /** Each operator starts its party on its copy of the genesis, detached, the passphrase on stdin. */
  async function startParties(): Promise<void> {
    for (const [r, kind] of [...SIGNERS.map((s) => [s, 'signer'] as const), ['gateway', 'gateway'] as const]) {
      const started = await mpchsmJson([kind, 'start', '--dir', dir(r), '--genesis', path.join(dir(r), 'genesis.json'), '--detach'], { as: party[r], input: passphrase(r) });
      const pid = started.Pid as number;
      pids.add(pid);
      expect(started.Url).toMatch(new RegExp(`^https://${ADDRESS[r].replace(/\./g, '\\.')}:\\d+$`));
      expect(statSync(`/proc/${pid}`).uid, `${r}'s process`).toBe(party[r].uid);
    }
  }

  it('each operator starts its own party on the genesis, detached, running as its own account on its own address', startParties, LONG);

  it('the application and the auditor ask to join; admin1 proposes, admin2 approves', async () => {
    for (const [r, role] of [['app', 'app'], ['auditor', 'auditor']] as const) {
      const req = await mpchsmJson(['principal', 'request', '--name', r, '--role', role, '--genesis', path.join(dir(r), 'genesis.json'), '--dir', dir(r)], { as: party[r] });
      expect(req.Request).toBe(path.join(dir(r), `${r}.request.json`));
      const file = send(req.Request as string, 'admin1');
      const proposed = await mpchsmJson(['principal', 'propose', file, '--as', 'admin1', '--dir', dir('admin1')], { as: party.admin1 });
      expect(proposed.proposal).toMatch(/\S/);
      // Two administrators, a majority of two: admin2's approval executes it.
      ok(await mpchsm(['approve', String(proposed.proposal), '--as', 'admin2', '--dir', dir('admin2')], { as: party.admin2 }), `approve ${r}`);
    }
  }, LONG);

  it('the application signs through the KMS API over HTTPS, the SDK trusting the gateway certificate', async () => {
    const created = await kms('admin1').send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    keyId = created.KeyMetadata!.KeyId!;
    const app = kms('app');
    const message = Buffer.from(`signed over HTTPS by ${user('app')}`);
    const { Signature } = await app.send(new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }));
    const { PublicKey } = await app.send(new GetPublicKeyCommand({ KeyId: keyId }));
    expect(verify('sha256', message, createPublicKey({ key: Buffer.from(PublicKey!), format: 'der', type: 'spki' }), Signature!)).toBe(true);
  }, LONG);

  it('the application signs through the PKCS#11 module (pkcs11-tool, as its own user, TLS to the gateway)', async () => {
    expect(keyId, 'a key from the previous step').toBeTruthy();
    const e = env('app');
    const message = Buffer.from(`signed over PKCS#11 by ${user('app')}`);
    const input = path.join(dir('app'), 'digest.bin');
    const output = path.join(dir('app'), 'signature.bin');
    writeFileSync(input, createHash('sha256').update(message).digest());
    chownSync(input, party.app.uid, party.app.gid);
    const r = await runProcess(
      'pkcs11-tool',
      ['--module', e.MPCHSM_PKCS11_MODULE!, '--login', '--pin', e.MPCHSM_PKCS11_PIN!, '--sign', '--mechanism', 'ECDSA', '--id', keyId.replace(/-/g, ''), '--input-file', input, '--output-file', output],
      { as: party.app, env: { MPCHSM_PKCS11_CONF: e.MPCHSM_PKCS11_CONF! } },
    );
    ok(r, 'pkcs11-tool --sign');
    const { PublicKey } = await kms('app').send(new GetPublicKeyCommand({ KeyId: keyId }));
    const key = createPublicKey({ key: Buffer.from(PublicKey!), format: 'der', type: 'spki' });
    expect(verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, readFileSync(output))).toBe(true);
  }, LONG);

  it("the auditor's doctor, from its own directory, reports which parties are independent", async () => {
    const r = await mpchsm(['doctor', '--genesis', path.join(dir('auditor'), 'genesis.json'), '--as', 'auditor', '--dir', dir('auditor')], { as: party.auditor });
    const out = r.stdout + r.stderr;
    // Each signer's operator, from its own signed report.
    for (const s of SIGNERS) expect(out, out).toMatch(new RegExp(`^  ${s}\\s+\\S+ \\(\\w+\\)\\s+${user(s)} \\(${party[s].uid}\\)\\s+${user(s)} \\(${party[s].uid}\\)`, 'm'));
    expect(out).not.toContain('SINGLE ADMINISTRATIVE DOMAIN');
    expect(out).not.toContain('[reported-same-operator]');
    expect(out).not.toContain('[reported-same-admin]');
    expect(out).not.toContain('[reported-gateway-operator]');
    // One machine in this test: its root still controls them all, which doctor says.
    expect(out).toMatch(/verdict: independent operators and admins among the reporting signers: .*; one host \(/);
  }, LONG);

  it("the auditor's audit verify, from its own directory, checks every signer's log", async () => {
    const r = await mpchsm(['audit', 'verify', '--genesis', path.join(dir('auditor'), 'genesis.json'), '--as', 'auditor', '--dir', dir('auditor')], { as: party.auditor });
    ok(r, 'audit verify');
  }, LONG);

  it('each operator stops its own party', async () => {
    for (const [r, kind] of [['gateway', 'gateway'], ...SIGNERS.map((s) => [s, 'signer'] as const)] as const) {
      const stopped = await mpchsmJson([kind, 'stop', '--dir', dir(r)], { as: party[r] });
      expect(stopped.Stopped, r).toBe(true);
      expect(existsSync(path.join(dir(r), `${kind}.pid`))).toBe(false);
    }
    for (const pid of pids) expect(isAlive(pid), `pid ${pid}`).toBe(false);
  }, LONG);

  it('restarted by their operators on the same genesis (the passphrase again), the parties serve the application again', async () => {
    await startParties();
    const message = Buffer.from('after a restart');
    const { Signature } = await kms('app').send(new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }));
    const { PublicKey } = await kms('app').send(new GetPublicKeyCommand({ KeyId: keyId }));
    expect(verify('sha256', message, createPublicKey({ key: Buffer.from(PublicKey!), format: 'der', type: 'spki' }), Signature!)).toBe(true);
  }, LONG);
});
