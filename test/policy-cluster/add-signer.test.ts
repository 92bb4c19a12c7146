// Adding a signer under the administrators' quorum (issue #7) on a real cluster: `mpchsm signer
// add` starts signer4 awaiting admission and proposes it; on the second approval every signer
// pins it, hands it its policy state (it enrols only if all agree, for its own challenge), and
// the Ed25519, P-256 and RSA keys are reshared to include it — the same public keys, signing with
// signer4 and one old signer once the others are stopped; a second newcomer proposed while
// the first was pending is admitted too. A compromised gateway (or signer)
// can neither get a state sealed to an unapproved newcomer nor enrol it with a state the active
// signers do not all hand over.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignerClient } from '../../gateway/signer-client.js';
import { sealEnvelope } from '../../contract/identity/envelope.js';
import { loadIdentity, parsePublicIdentity, type IdentitySecrets } from '../../contract/identity/identity.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import type { TestCluster } from '../helpers/cluster.js';
import { approve, auditEntries, createKey, createKeyTrio, gatewayCall, gatewayIdentity, publicKeyOf, refusal, signerRecord, signerRegistry, signsAndVerifies, startWithSigners, stopWithSigners } from './helpers.js';

let tc: TestCluster;
let signers: SignerClient[];
let newcomer: SignerClient;
let proposal = '';
let proposal5 = '';
const keys: Record<'ed' | 'ec' | 'rsa', string> = { ed: '', ec: '', rsa: '' };
const publicKeys: Record<string, Uint8Array> = {};
const msg = Buffer.from('signed with the new signer');

const signAndVerify = (keyId: string, algorithm: 'ED25519_SHA_512' | 'ECDSA_SHA_256' | 'RSASSA_PSS_SHA_256', as = 'app') => signsAndVerifies(tc, keyId, publicKeys[keyId]!, algorithm, msg, as);

const storeJson = async (signer: string, record: string) => JSON.parse(Buffer.from((await signerRecord(tc, signer, (s) => s.get(record)))!).toString('utf8'));

/** A policy state for signer4 as signers 1-3 could seal it, sealed with their real identities (signers the test plays). */
async function forgedPackages(challenge: string, alter: (state: Record<string, unknown>, from: number) => Record<string, unknown>) {
  const registry = await storeJson('signer1', 'policy.registry');
  const { chain } = await storeJson('signer1', 'policy.governance');
  const own = JSON.parse(readFileSync(path.join(tc.dir, 'signers', 'signer4', 'identity.json'), 'utf8')) as { id: number };
  const { id: _id, ...pub } = own;
  const base = { registry, chain, keys: [], aliases: {}, retired: [], admitted: [{ name: 'signer4', id: 4, identity: parsePublicIdentity(pub) }], ledger: { seq: 0, proposals: {}, nonces: {}, requests: {} } };
  const out = [];
  for (const from of [1, 2, 3]) {
    const sender: IdentitySecrets = await signerRecord(tc, `signer${from}`, (s) => loadIdentity(s));
    const payload = Buffer.from(JSON.stringify(alter(structuredClone(base), from)));
    out.push({ from, envelope: sealEnvelope({ purpose: 'signer-admission', session: `admission-${challenge}`, round: 0, from, to: 4, payload }, sender, parsePublicIdentity(pub)) });
  }
  return out;
}

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  const made = await createKeyTrio(tc);
  Object.assign(keys, made.keys);
  Object.assign(publicKeys, made.publicKeys);
}, 240_000);

afterAll(async () => {
  newcomer?.close();
  await stopWithSigners(tc, signers);
});

describe('AddSigner', () => {
  it('is proposed by `mpchsm signer add`, which starts signer4 awaiting admission', async () => {
    const proposed = JSON.parse((await tc.mpchsm('signer', 'add', '--as', 'admin1', '--dir', tc.dir, '--json')).stdout);
    expect(proposed.Status).toBe('Pending');
    expect(proposed.Approvals).toEqual(['admin1']);
    expect(proposed.Proposal.parameters).toMatchObject({ Name: 'signer4', Id: 4 });
    proposal = proposed.Proposal.id;
    const s4 = tc.cluster().signers.find((s) => s.name === 'signer4')!;
    expect(s4).toBeDefined();
    const { id: _id, ...pub } = JSON.parse(readFileSync(path.join(tc.dir, 'signers', 'signer4', 'identity.json'), 'utf8')) as { id: number };
    newcomer = new SignerClient({ name: 'signer4', id: 4, url: s4.url, identity: parsePublicIdentity(pub) }, await gatewayIdentity(tc), 10_000);
    const status = JSON.parse((await tc.mpchsm('status', '--dir', tc.dir, '--json')).stdout) as { processes: { name: string; state: string }[] };
    expect(status.processes.find((p) => p.name === 'signer4')?.state).toBe('awaiting admission');
  }, 60_000);

  it('a second signer can be proposed while signer4 is pending: signer5, pinning signers 1-3 only', async () => {
    const proposed = JSON.parse((await tc.mpchsm('signer', 'add', '--as', 'admin1', '--dir', tc.dir, '--json')).stdout);
    expect(proposed.Proposal.parameters).toMatchObject({ Name: 'signer5', Id: 5 });
    proposal5 = proposed.Proposal.id;
    const peers = JSON.parse(readFileSync(path.join(tc.dir, 'signers', 'signer5', 'config.json'), 'utf8')).peers as { id: number }[];
    expect(peers.map((p) => p.id)).toEqual([1, 2, 3, 5]);
  }, 60_000);

  it('before approval, no signer seals its state to the newcomer, and the newcomer takes no state the signers do not all hand over', async () => {
    const { challenge } = await newcomer.call(signerRoutes.admission.challenge, {});
    expect((await refusal(signers[0]!.call(signerRoutes.admission.package, { name: 'signer4', challenge }))).message).toContain('not a signer admitted by an approved AddSigner');
    // One signer (played here) hands over a state with an alias the others do not have.
    const lying = await forgedPackages(challenge, (s, from) => (from === 1 ? { ...s, aliases: { 'alias/planted': keys.ec } } : s));
    expect((await refusal(newcomer.call(signerRoutes.admission.enrol, { challenge, packages: lying }))).message).toContain('signer 2 handed over another policy state than signer 1');
    // The challenge is spent: the same packages again are stale.
    expect((await refusal(newcomer.call(signerRoutes.admission.enrol, { challenge, packages: lying }))).code).toBe('stale-challenge');
    // Two of the three active signers' states are not enough.
    const fresh = (await newcomer.call(signerRoutes.admission.challenge, {})).challenge;
    const two = (await forgedPackages(fresh, (s) => s)).slice(0, 2);
    expect((await refusal(newcomer.call(signerRoutes.admission.enrol, { challenge: fresh, packages: two }))).message).toContain('needs the state of every active signer');
    // Unanimous, but admitting another identity under signer4's name.
    const other = (await newcomer.call(signerRoutes.admission.challenge, {})).challenge;
    const stranger = signers[0]!.entry.identity;
    const wrong = await forgedPackages(other, (s) => ({ ...s, admitted: [{ name: 'signer4', id: 4, identity: stranger }] }));
    expect((await refusal(newcomer.call(signerRoutes.admission.enrol, { challenge: other, packages: wrong }))).message).toContain('did not admit this signer’s identity');
    expect(await newcomer.health()).toBe(true);
  }, 60_000);

  it('executes on the second approval: signer4 is admitted and every key is reshared to include it', async () => {
    const done = await approve(tc, proposal, 'admin2');
    expect(done.Status).toBe('Executed');
    for (const s of done.Signers ?? []) expect(s, `signer ${s.signer}`).toMatchObject({ applied: true });
    const result = done.Result as { Signer: { Name: string; Admitted: boolean }; Reshared: { KeyId: string; Holders: number[] }[]; Failed: unknown[] };
    expect(result.Signer, JSON.stringify(result.Signer)).toMatchObject({ Name: 'signer4', Admitted: true });
    expect(result.Failed).toEqual([]);
    expect(result.Reshared.map((r) => r.KeyId).sort()).toEqual(Object.values(keys).sort());
    for (const r of result.Reshared) expect(r.Holders).toEqual([1, 2, 3, 4]);
    // The newcomer holds the same principals (application secrets included) as signer1.
    const names = (r: { principals: { name: string }[] }) => r.principals.map((p) => p.name).sort();
    expect(names(await signerRegistry(tc, 'signer4'))).toEqual(names(await signerRegistry(tc, 'signer1')));
    const described = (await gatewayCall(tc, 'auditor', 'MpcHsm.DescribeCluster', {})).body as { Signers: { Name: string; State: string }[] };
    expect(described.Signers.find((s) => s.Name === 'signer4')?.State).toBe('Active');
    expect(auditEntries(tc, 'signer4').some((e) => e.op === 'admission.enrol' && e.outcome === 'ok')).toBe(true);
    const status = JSON.parse((await tc.mpchsm('status', '--dir', tc.dir, '--json')).stdout) as { signers_total: number; processes: { name: string; state: string; keys?: number }[] };
    expect(status.signers_total).toBe(5);
    expect(status.processes.find((p) => p.name === 'signer4')).toMatchObject({ state: 'healthy', keys: 3 });
    expect((await tc.mpchsm('audit', 'verify', '--dir', tc.dir)).stdout).not.toMatch(/error/i);
  }, 180_000);

  it('refuses adding the same signer again, before anyone approves', async () => {
    // signer1's identity under a new name and party id.
    const r = await gatewayCall(tc, 'admin1', 'MpcHsm.AddSigner', { Name: 'signer9', Id: 9, Identity: signers[0]!.entry.identity, Endpoint: 'https://127.0.0.1:1' });
    expect(r.body.__type).toBe('AlreadyExistsException');
    expect(r.body.message).toContain('clashes with signer signer1');
  });

  it('signer5 is admitted from the states of the signers it pins, which vouch for signer4; the keys then have five holders', async () => {
    const done = await approve(tc, proposal5, 'admin2');
    expect(done.Status).toBe('Executed');
    const result = done.Result as { Signer: { Admitted: boolean }; Reshared: { KeyId: string; Holders: number[] }[]; Failed: unknown[] };
    expect(result.Signer, JSON.stringify(result.Signer)).toMatchObject({ Admitted: true });
    expect(result.Failed).toEqual([]);
    for (const r of result.Reshared) expect(r.Holders).toEqual([1, 2, 3, 4, 5]);
    expect(result.Reshared).toHaveLength(3);
  }, 120_000);

  it('a principal added after the admission has its secret sealed to signer4 too', async () => {
    const proposed = JSON.parse((await tc.mpchsm('principal', 'add', 'app2', '--role', 'app', '--as', 'admin1', '--dir', tc.dir, '--json')).stdout);
    expect(proposed.Proposal.parameters.Secrets.map((x: { Party: number }) => x.Party)).toEqual([1, 2, 3, 4, 5]);
    const done = await approve(tc, proposed.Proposal.id, 'admin2');
    expect(done.Status).toBe('Executed');
    expect((done.Signers ?? []).map((x) => [x.signer, x.applied])).toEqual([1, 2, 3, 4, 5].map((i) => [`signer${i}`, true]));
  }, 60_000);

  it('keys, RSA included, sign with signer4 and one old signer once signers 1, 2 and 5 are stopped; new keys include the new signers', async () => {
    const fresh = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
    publicKeys[fresh] = await publicKeyOf(tc, fresh);
    expect(JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${fresh}.json`), 'utf8')).holders).toEqual([1, 2, 3, 4, 5]);
    for (const name of ['signer1', 'signer2', 'signer5']) process.kill(tc.cluster().signers.find((s) => s.name === name)!.pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await signAndVerify(keys.ed, 'ED25519_SHA_512')).toBe(true);
    expect(await signAndVerify(keys.ec, 'ECDSA_SHA_256')).toBe(true);
    expect(await signAndVerify(keys.rsa, 'RSASSA_PSS_SHA_256')).toBe(true);
    expect(await signAndVerify(fresh, 'ED25519_SHA_512')).toBe(true);
    // app2 (which the new key's default policy grants) is verified by signer3 and signer4 alone.
    expect(await signAndVerify(fresh, 'ED25519_SHA_512', 'app2')).toBe(true);
    const partials = auditEntries(tc, 'signer4').filter((e) => e.output === 'partial' && e.outcome === 'ok');
    expect(partials.map((e) => e.keyId)).toEqual(expect.arrayContaining([keys.ed, keys.ec, keys.rsa, fresh]));
  }, 120_000);
});

describe('MpcHsm.AdmitSigner', () => {
  it('refuses a signer no approved AddSigner names', async () => {
    const r = await gatewayCall(tc, 'admin1', 'MpcHsm.AdmitSigner', { Name: 'signer9' });
    expect(r.body.__type).toBe('NotFoundException');
    expect((await gatewayCall(tc, 'app', 'MpcHsm.AdmitSigner', { Name: 'signer4' })).body.__type).toBe('AccessDeniedException');
  });

  it('`mpchsm signer admit` on an admitted signer has nothing left to do', async () => {
    const r = JSON.parse((await tc.mpchsm('signer', 'admit', 'signer4', '--as', 'admin1', '--dir', tc.dir, '--json')).stdout);
    expect(r).toEqual({ Signer: { Name: 'signer4', Admitted: true }, Reshared: [], Failed: [] });
  }, 30_000);
});
