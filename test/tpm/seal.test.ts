// Signers sealed to TPMs (`mpchsm up --seal swtpm`): no passphrase anywhere, a key survives a
// restart, a store moved to another TPM does not open, and a store put back from before a refresh
// is refused by its TPM's rollback counter.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TPM_SEALER_KIND } from '../../contract/io/seal.js';
import { startSwtpm, stopSwtpm, swtpmTcti } from '../../cli/swtpm.js';
import type { TestCluster } from '../helpers/cluster.js';
import { approve, auditEntries, createKey, gatewayCall, gatewayIdentity, publicKeyOf, refusal, signerClients, signsAndVerifies } from '../policy-cluster/helpers.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { activateCredentials, attestationKeyPath } from '../../signers/node/tpm/activation.js';
import { withTpm } from '../../signers/node/tpm/tools.js';
import { forgeQuote } from './forge.js';
import { exportPublicIdentity, identityFromSecrets } from '../../contract/identity/identity.js';
import { haveSwtpm, NO_SWTPM, startSwtpmCluster } from './helpers.js';
import { mpchsmIn } from '../backup/run.js';

let tc: TestCluster;
/** A key made once the founders were activated, used again when the gateway lies. */
let madeKey: string;

/** Stops the swtpms a test started itself, beside `up`'s. */
async function stopSwtpms(t: TestCluster): Promise<void> {
  for (const name of readdirSync(path.join(t.dir, 'swtpm'))) await stopSwtpm(path.join(t.dir, 'swtpm', name));
}

beforeAll(async () => {
  if (haveSwtpm) tc = await startSwtpmCluster();
}, 300_000);

afterAll(async () => {
  // signer2, restored and started by `signer start` (not by `up`), is stopped as it was started.
  if (tc) await tc.mpchsm('signer', 'stop', '--dir', path.join(tc.dir, 'signers', 'signer2')).catch(() => undefined);
  await tc?.destroy();
});

describe.skipIf(!haveSwtpm)(`signers sealed to software TPMs (${NO_SWTPM} otherwise)`, () => {
  it('seals each of three signers to its own swtpm, with no operator passphrase', () => {
    for (const name of ['signer1', 'signer2', 'signer3']) {
      const header = JSON.parse(readFileSync(path.join(tc.dir, 'signers', name, 'store', 'sealer.json'), 'utf8'));
      expect(header.kind).toBe(TPM_SEALER_KIND);
      expect(header.tcti).toMatch(/^swtpm:host=127\.0\.0\.1,port=\d+$/);
      expect(existsSync(path.join(tc.dir, 'operators', `${name}.secret`))).toBe(false);
      expect(JSON.parse(readFileSync(path.join(tc.dir, 'signers', name, `${name}.signer.json`), 'utf8')).Seal).toBe('tpm');
    }
    // Founded under require_attestation: every signer verified every founding signer's quote before it started.
    expect(JSON.parse(readFileSync(path.join(tc.dir, 'genesis.json'), 'utf8')).Genesis.Governance.requireAttestation).toBe(true);
  });

  it('the founding signers answered each other\'s credentials through the gateway at start, each checking its own, before any key was made', async () => {
    const health = (await (await fetch(`${tc.endpoint}/health`)).json()) as { activation?: string };
    expect(health.activation).toBe('activated');
    const founders = ['signer1', 'signer2', 'signer3'];
    for (const name of founders) {
      const confirmed = auditEntries(tc, name).filter((e) => e.op === 'admission.confirm' && e.outcome === 'ok').map((e) => (e.detail as { signer: string }).signer);
      expect(confirmed.sort(), name).toEqual(founders.filter((f) => f !== name));
    }
    // Activated once: a gateway asking again gets no credential.
    const signers = signerClients(tc, await gatewayIdentity(tc));
    try {
      for (const signer of signers) expect((await signer.call(signerRoutes.admission.activation, { name: signer.name === 'signer1' ? 'signer2' : 'signer1', challenge: randomBytes(32).toString('hex') })).credential).toBeUndefined();
    } finally {
      for (const c of signers) c.close();
    }
  }, 60_000);

  it('doctor names each swtpm a software TPM, from the files and from the signed reports, never hardware', async () => {
    const r = await tc.mpchsmStatus('doctor', '--dir', tc.dir);
    for (const name of ['signer1', 'signer2', 'signer3']) {
      expect(r.out).toMatch(new RegExp(`\\[software-tpm\\] ${name}'s share store is sealed to a software TPM \\(swtpm, EK issued by CN=swtpm-localca`));
    }
    expect(r.out).toMatch(/tpm2\/sealed-key\+xchacha20poly1305; software TPM/); // the signed reports' table
    expect(r.out).toMatch(/TPM quote: software TPM \(swtpm/); // each public file's attestation, verified by doctor
    expect(r.out).not.toMatch(/hardware TPM/);
    // Each signer's PCRs, read for its signed report, are those its attestation quoted at init.
    expect(r.out).not.toMatch(/pcr-changed/);
  }, 120_000);

  it('doctor reports a signer whose quoted PCRs changed since its attestation, from its signed report', async () => {
    const tcti = JSON.parse(readFileSync(path.join(tc.dir, 'signers', 'signer1', 'store', 'sealer.json'), 'utf8')).tcti as string;
    // What a changed boot chain does to PCR 7; the swtpm's next start (the next `up`) resets it.
    await withTpm(tcti, (tpm) => tpm.run('pcrextend', [`7:sha256=${'ab'.repeat(32)}`]));
    const r = await tc.mpchsmStatus('doctor', '--dir', tc.dir);
    expect(r.out).toMatch(/\[pcr-changed\] signer1's PCRs sha256:0,1,2,3,4,5,6,7 read now \(digest [0-9a-f]{16}…\) are not those its attestation quoted/);
    expect(r.out).not.toMatch(/\[pcr-changed\] signer[23]/);
  }, 120_000);

  it('a key made and used through KMS still signs after the cluster restarts', async () => {
    const keyId = (madeKey = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' }));
    const pub = await publicKeyOf(tc, keyId);
    expect(await signsAndVerifies(tc, keyId, pub, 'ED25519_SHA_512', Buffer.from('before'))).toBe(true);
    await tc.down();
    await tc.up();
    expect(await signsAndVerifies(tc, keyId, pub, 'ED25519_SHA_512', Buffer.from('after'))).toBe(true);
  }, 240_000);

  it('signer backup of a TPM-sealed signer reads no passphrase, and the backup verifies against the cluster', async () => {
    await createKey(tc, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    const work = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-tpm-backup-'));
    try {
      const custodian = path.join(work, 'custodian');
      expect((await mpchsmIn('custodian passphrase', 'custodian', 'init', '--dir', custodian)).code).toBe(0);
      const out = path.join(work, 'signer1.backup');
      // Nothing on standard input: a TPM-sealed store is opened by its TPM alone.
      const made = await mpchsmIn('', 'signer', 'backup', '--dir', path.join(tc.dir, 'signers', 'signer1'), '--custodian', path.join(custodian, 'custodian.json'), '--out', out, '--json');
      expect(made.code, made.stderr).toBe(0);
      expect(JSON.parse(made.stdout).Shares).toBeGreaterThan(0);
      const verified = await mpchsmIn('custodian passphrase', 'backup', 'verify', out, '--custodian-dir', custodian, '--dir', tc.dir, '--json');
      expect(JSON.parse(verified.stdout).Verdict, verified.stdout + verified.stderr).toBe('verified');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 120_000);

  it('a store copied to another TPM does not open, and says why', async () => {
    await tc.down();
    const copy = path.join(os.tmpdir(), `mpchsm-tpm-copy-${process.pid}`);
    const state = `${copy}-swtpm`;
    try {
      cpSync(path.join(tc.dir, 'signers', 'signer1'), copy, { recursive: true });
      rmSync(path.join(copy, 'signer.pid'), { force: true });
      // The other host's TPM: its own swtpm, named by `signer start --tcti` over the copied header's.
      const port = tc.port + 290;
      await startSwtpm(state, port);
      const r = await tc.mpchsmStatus('signer', 'start', '--dir', copy, '--genesis', path.join(tc.dir, 'genesis.json'), '--tcti', swtpmTcti(port));
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(new RegExp(`does not load on the TPM at swtpm:host=127\\.0\\.0\\.1,port=${port}: this store was sealed to another TPM`));
    } finally {
      await stopSwtpm(state);
      rmSync(copy, { recursive: true, force: true });
      rmSync(state, { recursive: true, force: true });
      await tc.up();
    }
  }, 240_000);

  it('a store put back from before a refresh refuses to start, naming its epoch and the counter\'s', async () => {
    const keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
    const store = path.join(tc.dir, 'signers', 'signer1', 'store');
    const old = `${store}.old`;
    await tc.down();
    cpSync(store, old, { recursive: true, preserveTimestamps: true });
    await tc.up();
    const refreshed = JSON.parse((await tc.mpchsm('key', 'refresh', keyId, '--as', 'admin1', '--dir', tc.dir, '--json')).stdout);
    expect(refreshed).toBeTruthy();
    await tc.down();
    const current = `${store}.current`;
    renameSync(store, current);
    renameSync(old, store);
    try {
      // `signer start` alone, as an operator would, on signer1's own swtpm (up's business otherwise).
      const port = Number(/port=(\d+)/.exec(JSON.parse(readFileSync(path.join(store, 'sealer.json'), 'utf8')).tcti)![1]);
      await startSwtpm(path.join(tc.dir, 'swtpm', 'signer1'), port);
      const r = await tc.mpchsmStatus('signer', 'start', '--dir', path.join(tc.dir, 'signers', 'signer1'), '--genesis', path.join(tc.dir, 'genesis.json'));
      expect(r.code).not.toBe(0);
      const m = /at epoch (\d+) but the TPM's rollback counter 0x[0-9a-f]+ is at epoch (\d+)/.exec(r.out);
      expect(m, r.out).not.toBeNull();
      expect(BigInt(m![1]!)).toBeLessThan(BigInt(m![2]!));
    } finally {
      await stopSwtpms(tc);
      rmSync(store, { recursive: true, force: true });
      renameSync(current, store);
    }
    await tc.up();
    const pub = await publicKeyOf(tc, keyId);
    expect(await signsAndVerifies(tc, keyId, pub, 'ED25519_SHA_512', Buffer.from('after the refusal'))).toBe(true);
  }, 300_000);

  it('signer add: the newcomer\'s quote travels in its AddSigner and every signer admits it; another identity\'s quote is refused by every signer', async () => {
    const proposed = JSON.parse((await tc.mpchsm('signer', 'add', '--as', 'admin1', '--dir', tc.dir, '--json')).stdout);
    expect(proposed.Proposal.parameters.Attestation.kind).toBe('tpm2-quote');
    const done = await approve(tc, proposed.Proposal.id, 'admin2');
    expect(done.Status).toBe('Executed');
    for (const s of done.Signers ?? []) expect(s, `signer ${s.signer}`).toMatchObject({ applied: true });
    // Admitted only after signer4's swtpm answered each signer's credential to its EK and AK.
    expect((done.Result as { Signer: unknown }).Signer, JSON.stringify(done.Result)).toMatchObject({ Name: 'signer4', Admitted: true });
    for (const name of ['signer1', 'signer2', 'signer3']) {
      expect(auditEntries(tc, name).some((e) => e.op === 'admission.activation' && e.outcome === 'ok'), name).toBe(true);
      expect(auditEntries(tc, name).some((e) => e.op === 'admission.package' && (e.detail as { activated?: boolean } | undefined)?.activated === true), name).toBe(true);
    }
    // An administrator's proposal for signer9 carrying signer4's (genuine) quote: not made for signer9's identity.
    const stranger = exportPublicIdentity(identityFromSecrets('signer9', randomBytes(32), randomBytes(32)));
    const asked = await gatewayCall(tc, 'admin1', 'MpcHsm.AddSigner', { Name: 'signer9', Id: 9, Identity: stranger, Endpoint: 'https://127.0.0.1:9', Attestation: proposed.Proposal.parameters.Attestation });
    const id = (asked.body.Proposal as { id: string }).id;
    const approveAs = (as: string) => approve(tc, id, as).catch((e: { stdout?: string; stderr?: string }) => ({ Status: 'refused', out: `${e.stdout}${e.stderr}` }));
    await approveAs('admin1');
    const refused = await approveAs('admin2');
    expect(JSON.stringify(refused)).toMatch(/signer9's attestation is refused: the TPM quote does not verify: it was made for another identity/);
    const described = (await gatewayCall(tc, 'auditor', 'MpcHsm.DescribeCluster', {})).body as { Signers: { Name: string; State: string }[] };
    expect(described.Signers.find((s) => s.Name === 'signer9')?.State).not.toBe('Active');
  }, 300_000);

  it('signer restore under require_attestation: a RestoreSigner whose new identity carries no quote is refused by every signer, whatever the gateway relays', async () => {
    const clusterId = JSON.parse(readFileSync(path.join(tc.dir, 'genesis.json'), 'utf8')).Genesis.ClusterId as string;
    const replacement = exportPublicIdentity(identityFromSecrets('signer2', randomBytes(32), randomBytes(32)));
    const backup = { ClusterId: clusterId, Created: new Date().toISOString(), Sha256: '0'.repeat(64), Custodian: '1'.repeat(64), Shares: [] };
    const asked = await gatewayCall(tc, 'admin1', 'MpcHsm.RestoreSigner', { Name: 'signer2', Id: 2, Identity: replacement, Endpoint: 'https://127.0.0.1:9', Backup: backup });
    const id = (asked.body.Proposal as { id: string }).id;
    const approveAs = (as: string) => approve(tc, id, as).catch((e: { stdout?: string; stderr?: string }) => ({ Status: 'refused', out: `${e.stdout}${e.stderr}` }));
    await approveAs('admin1');
    const refused = await approveAs('admin2');
    expect(JSON.stringify(refused)).toMatch(/signer2 carries no attestation, and the governance requires one/);
    const described = (await gatewayCall(tc, 'auditor', 'MpcHsm.DescribeCluster', {})).body as { Signers: { Name: string; State: string }[] };
    expect(described.Signers.find((s) => s.Name === 'signer2')?.State).toBe('Active');
  }, 300_000);

  it('signer restore --seal tpm: a lost signer restored on its host\'s TPM carries a quote, answers every signer\'s credential and is admitted', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-tpm-restore-'));
    const S = path.join(tc.dir, 'signers', 'signer2');
    try {
      const custodian = path.join(work, 'custodian');
      expect((await mpchsmIn('custodian passphrase', 'custodian', 'init', '--dir', custodian)).code).toBe(0);
      const backup = path.join(work, 'signer2.backup');
      const made = await mpchsmIn('', 'signer', 'backup', '--dir', S, '--custodian', path.join(custodian, 'custodian.json'), '--out', backup, '--json');
      expect(made.code, made.stderr).toBe(0);
      const tcti = JSON.parse(readFileSync(path.join(S, 'store', 'sealer.json'), 'utf8')).tcti as string;
      await tc.mpchsm('signer', 'stop', '--dir', S);
      renameSync(S, path.join(work, 'signer2.lost'));
      // Only the custodian's passphrase on standard input: the new store is sealed to the TPM.
      const r = await mpchsmIn('custodian passphrase', 'signer', 'restore', '--dir', S, '--from', backup, '--custodian-dir', custodian, '--seal', 'tpm', '--tcti', tcti, '--json');
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(JSON.parse(readFileSync(path.join(S, 'store', 'sealer.json'), 'utf8')).kind).toBe(TPM_SEALER_KIND);
      const file = path.join(S, 'signer2.restore.json');
      expect(JSON.parse(readFileSync(file, 'utf8')).Attestation.kind).toBe('tpm2-quote');
      const started = await mpchsmIn('', 'signer', 'start', '--dir', S, '--genesis', path.join(tc.dir, 'genesis.json'), '--detach', '--json');
      expect(started.code, started.stderr + started.stdout).toBe(0);
      const proposed = JSON.parse((await tc.mpchsm('signer', 'rejoin', file, '--as', 'admin1', '--dir', tc.dir, '--json')).stdout) as { Proposal?: { id: string }; proposal?: string };
      const done = await approve(tc, proposed.Proposal?.id ?? proposed.proposal!, 'admin2');
      expect(done.Status, JSON.stringify(done)).toBe('Executed');
      expect((done.Result as { Signer: unknown }).Signer, JSON.stringify(done.Result)).toMatchObject({ Name: 'signer2', Admitted: true });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 300_000);

  it('credential activation: a newcomer pairing another TPM\'s EK certificate with an AK of its own passes the quote check and is refused by every signer, whatever the gateway answers', async () => {
    // signer1's genuine (public) attestation, and a software AK whose quote names signer5's identity under signer1's EK.
    const genuine = JSON.parse(readFileSync(path.join(tc.dir, 'signers', 'signer1', 'signer1.signer.json'), 'utf8')).Attestation;
    const secrets = identityFromSecrets('signer5', randomBytes(32), randomBytes(32));
    const forged = forgeQuote(genuine, secrets.fingerprint);
    const asked = await gatewayCall(tc, 'admin1', 'MpcHsm.AddSigner', { Name: 'signer5', Id: 5, Identity: exportPublicIdentity(secrets), Endpoint: 'https://127.0.0.1:9', Attestation: forged });
    const id = (asked.body.Proposal as { id: string }).id;
    await approve(tc, id, 'admin1').catch(() => undefined);
    const done = await approve(tc, id, 'admin2');
    // The quote verifies at every signer, which pins signer5 awaiting its TPM's answer; the admission fails.
    for (const s of done.Signers ?? []) expect(s, `signer ${s.signer}`).toMatchObject({ applied: true });
    expect((done.Result as { Signer: unknown }).Signer).toMatchObject({ Name: 'signer5', Admitted: false });
    // Acting as the gateway: each signer makes a credential; the credential does not activate on
    // another TPM (signer4's, with its AK); no answer, or one the gateway makes up, is refused.
    const signers = signerClients(tc, await gatewayIdentity(tc));
    try {
      for (const signer of signers) {
        const challenge = randomBytes(32).toString('hex');
        const { credential } = await signer.call(signerRoutes.admission.activation, { name: 'signer5', challenge });
        expect(credential, signer.name).toBeDefined();
        const s4 = path.join(tc.dir, 'signers', 'signer4');
        const tcti = JSON.parse(readFileSync(path.join(s4, 'store', 'sealer.json'), 'utf8')).tcti as string;
        await expect(activateCredentials(tcti, attestationKeyPath(s4), [credential!])).rejects.toThrow(/does not activate/);
        expect((await refusal(signer.call(signerRoutes.admission.package, { name: 'signer5', challenge }))).message).toMatch(/did not answer this signer's credential/);
        const again = randomBytes(32).toString('hex');
        await signer.call(signerRoutes.admission.activation, { name: 'signer5', challenge: again });
        const invented = randomBytes(32).toString('hex');
        expect((await refusal(signer.call(signerRoutes.admission.package, { name: 'signer5', challenge: again, proof: invented }))).message).toMatch(/is wrong: its attestation key is not in the TPM of its endorsement key/);
        // The same answer again: the credential was spent.
        expect((await refusal(signer.call(signerRoutes.admission.package, { name: 'signer5', challenge: again, proof: invented }))).message).toMatch(/no credential for signer5's challenge is outstanding/);
      }
    } finally {
      for (const c of signers) c.close();
    }
    const described = (await gatewayCall(tc, 'auditor', 'MpcHsm.DescribeCluster', {})).body as { Signers: { Name: string; State: string }[] };
    expect(described.Signers.find((s) => s.Name === 'signer5')?.State).not.toBe('Active');
  }, 300_000);

  it('a signer pinned but not activated (signer5 above) is reshared no key: a lying gateway asking for it is refused', async () => {
    const signers = signerClients(tc, await gatewayIdentity(tc));
    try {
      for (const signer of signers.filter((c) => c.name === 'signer1' || c.name === 'signer3')) {
        const asked = signer.call(signerRoutes.reshare.start, { session: `reshare-${randomBytes(8).toString('hex')}`, keyId: madeKey, participants: [1, 2, 3, 4, 5], threshold: 2 });
        expect((await refusal(asked)).message, signer.name).toMatch(new RegExp(`access denied: key ${madeKey} is not reshared to signer5 before its TPM answered this signer's credential`));
      }
    } finally {
      for (const c of signers) c.close();
    }
  }, 60_000);
});
