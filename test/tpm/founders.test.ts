// Founding signers under require_attestation (signers/node/genesis.ts): a cluster founded by the
// parties' own commands, each signer sealed to its own swtpm, where signer3's public file pairs
// signer1's genuine (public) EK certificate with a software attestation key (test/tpm/forge.ts).
// Its quote verifies at every signer, so the genesis is adopted; but its TPM cannot answer their
// credentials: signer1 and signer2 activate each other and never signer3, and refuse every session
// including it — whatever a lying gateway relays (invented answers, another founder's TPM's
// answer replayed, the forged founder's own refusal) and across a restart.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwtpm, stopSwtpm, swtpmTcti } from '../../cli/swtpm.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import { fingerprint, loadIdentity, parsePublicIdentity } from '../../contract/identity/identity.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { loadGatewayConfig } from '../../gateway/config.js';
import { SignerClient } from '../../gateway/signer-client.js';
import { makeCredential } from '../../signers/node/tpm/activation.js';
import { freePort, mpchsm, mpchsmJson } from '../deployment/helpers.js';
import { refusal } from '../policy-cluster/helpers.js';
import { forgeQuote } from './forge.js';
import { haveSwtpm, NO_SWTPM } from './helpers.js';

const LONG = 300_000;
const SIGNERS = ['signer1', 'signer2', 'signer3'] as const;
const GATEWAY_SECRET = 'passphrase of the gateway\n';
const { admission, dkg } = signerRoutes;

let base: string;
const dir = (name: string) => path.join(base, name);
const genesis = () => path.join(base, 'genesis.json');
let clients: SignerClient[] = [];
let gatewayPort: number;
const client = (name: string) => clients.find((c) => c.name === name)!;
const audit = (name: string) =>
  readFileSync(path.join(dir(name), 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { op: string; outcome: string; detail?: { signer?: string } });
const challenge = () => randomBytes(32).toString('hex');
const startSigner = async (name: string) => expect((await mpchsm(['signer', 'start', '--dir', dir(name), '--genesis', genesis(), '--detach'], { input: '' })).code).toBe(0);

beforeAll(async () => {
  if (!haveSwtpm) return;
  base = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-founders-'));
  for (const a of ['admin1', 'admin2']) await mpchsmJson(['admin', 'init', '--dir', dir(a), '--name', a]);
  // Each swtpm on a pair of ports (its control channel above), as activation.test.ts picks them.
  const tpmPorts = 20000 + Math.floor(Math.random() * 5000) * 8;
  await Promise.all(
    SIGNERS.map(async (name, i) => {
      const port = await freePort('127.0.0.1');
      await startSwtpm(dir(`${name}-swtpm`), tpmPorts + 2 * i);
      await mpchsmJson(['signer', 'init', '--dir', dir(name), '--name', name, '--listen', `127.0.0.1:${port}`, '--seal', 'tpm', '--tcti', swtpmTcti(tpmPorts + 2 * i)]);
    }),
  );
  // signer3's forgery: signer1's EK certificate and EK, a software AK, signer3's identity quoted.
  const file = (name: string) => path.join(dir(name), `${name}.signer.json`);
  const forged = JSON.parse(readFileSync(file('signer3'), 'utf8'));
  const genuine = JSON.parse(readFileSync(file('signer1'), 'utf8')).Attestation;
  forged.Attestation = forgeQuote(genuine, fingerprint(parsePublicIdentity(forged.Identity)));
  writeFileSync(file('signer3'), JSON.stringify(forged, null, 2));
  gatewayPort = await freePort('127.0.0.1');
  await mpchsmJson(['gateway', 'init', '--dir', dir('gateway'), '--listen', `127.0.0.1:${gatewayPort}`], { input: GATEWAY_SECRET });
  await mpchsmJson(['genesis', 'create', '--threshold', '2', '--require-attestation', '--gateway', path.join(dir('gateway'), 'gateway.json'), ...SIGNERS.flatMap((s) => ['--signer', file(s)]), '--admin', path.join(dir('admin1'), 'admin1.admin.json'), '--admin', path.join(dir('admin2'), 'admin2.admin.json'), '--out', genesis()]);
  for (const a of ['admin1', 'admin2']) await mpchsmJson(['genesis', 'sign', genesis(), '--as', a, '--dir', dir(a)]);
  // Every signer verifies every founder's quote, signer3's forgery included, and starts.
  for (const name of SIGNERS) await startSigner(name);
  expect((await mpchsm(['gateway', 'start', '--dir', dir('gateway'), '--genesis', genesis(), '--detach'], { input: GATEWAY_SECRET })).code).toBe(0);
  const store = await ShareStore.open(path.join(dir('gateway'), 'store'), GATEWAY_SECRET.trim());
  const identity = await loadIdentity(store);
  store.close();
  clients = loadGatewayConfig(dir('gateway')).signers.map((s) => new SignerClient(s, identity, 60_000));
}, LONG);

afterAll(async () => {
  for (const c of clients) c.close();
  if (!base) return;
  await mpchsm(['gateway', 'stop', '--dir', dir('gateway')]).catch(() => undefined);
  for (const name of SIGNERS) {
    await mpchsm(['signer', 'stop', '--dir', dir(name)]).catch(() => undefined);
    await stopSwtpm(dir(`${name}-swtpm`));
  }
  rmSync(base, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!haveSwtpm)(`founding signers proven by credential activation (${NO_SWTPM} otherwise)`, () => {
  it('the gateway relays at start: signer1 and signer2 activate each other, signer3 is never activated', async () => {
    // The gateway's first round, relayed at its start (gateway/activation.ts).
    const until = Date.now() + 120_000;
    const confirmed = (name: string) => audit(name).filter((e) => e.op === 'admission.confirm' && e.outcome === 'ok').map((e) => e.detail?.signer);
    while (!(confirmed('signer1').includes('signer2') && confirmed('signer2').includes('signer1') && confirmed('signer3').length === 2) && Date.now() < until) await new Promise((r) => setTimeout(r, 500));
    expect(confirmed('signer1')).toEqual(['signer2']);
    expect(confirmed('signer2')).toEqual(['signer1']);
    // Its real TPM answered signer3's credentials: signer3 takes the genuine founders.
    expect(confirmed('signer3').sort()).toEqual(['signer1', 'signer2']);
    const health = (await (await fetch(`http://127.0.0.1:${gatewayPort}/health`)).json()) as { activation?: string };
    expect(health.activation).toBe('activating');
  }, LONG);

  it('a lying gateway cannot have signer3 activated: its TPM refuses the credentials, and invented or replayed answers are refused', async () => {
    for (const verifier of ['signer1', 'signer2']) {
      const v = client(verifier);
      // Activated already: no credential for the other genuine founder.
      expect((await v.call(admission.activation, { name: verifier === 'signer1' ? 'signer2' : 'signer1', challenge: challenge() })).credential).toBeUndefined();
      // signer3's TPM does not hold signer1's EK: it cannot activate the credential.
      const c1 = challenge();
      const { credential, from } = await v.call(admission.activation, { name: 'signer3', challenge: c1 });
      expect(credential, verifier).toBeDefined();
      expect((await refusal(client('signer3').call(admission.activate, { credentials: [{ from, credential: credential! }] }))).message).toMatch(/a credential relayed is not for this TPM: credential 1 does not activate/);
      // An answer the gateway makes up, without any TPM: wrong, and the credential is spent.
      const invented = randomBytes(32).toString('hex');
      expect((await refusal(v.call(admission.confirm, { name: 'signer3', challenge: c1, proof: invented }))).message).toMatch(/signer3's answer to this signer's credential is wrong: its attestation key is not in the TPM of its endorsement key/);
      expect((await refusal(v.call(admission.confirm, { name: 'signer3', challenge: c1, proof: invented }))).message).toMatch(/no credential for signer3's challenge is outstanding/);
      // Another founder's TPM's genuine answer (signer2's, to a credential for its own EK and AK, bound to this verifier) replayed as signer3's.
      const c2 = challenge();
      await v.call(admission.activation, { name: 'signer3', challenge: c2 });
      const own = await makeCredential(JSON.parse(readFileSync(path.join(dir('signer2'), 'signer2.signer.json'), 'utf8')).Attestation);
      const { proofs } = await client('signer2').call(admission.activate, { credentials: [{ from, credential: own.credential }] });
      expect(proofs).toHaveLength(1);
      expect((await refusal(v.call(admission.confirm, { name: 'signer3', challenge: c2, proof: proofs[0]!.proof }))).message).toMatch(/signer3's answer to this signer's credential is wrong/);
    }
    expect(audit('signer1').some((e) => e.op === 'admission.confirm' && e.outcome === 'ok' && e.detail?.signer === 'signer3')).toBe(false);
  }, LONG);

  it('signer1 and signer2 take part in no session including signer3, and say why; a restart keeps it so', async () => {
    const keygen = (name: string) =>
      client(name).call(dkg.start, { session: `dkg-${randomBytes(8).toString('hex')}`, keyId: randomUUID(), suite: 'ed25519', participants: [1, 2, 3], threshold: 2 });
    for (const name of ['signer1', 'signer2']) {
      const r = await refusal(keygen(name));
      expect(r.message, name).toMatch(/access denied: this signer takes part in no session including signer3 before its TPM answered this signer's credential/);
    }
    // Restarted mid-way, signer1 still awaits signer3 (the wait is sealed in its store), and not signer2.
    expect((await mpchsm(['signer', 'stop', '--dir', dir('signer1')])).code).toBe(0);
    await startSigner('signer1');
    expect((await refusal(keygen('signer1'))).message).toMatch(/takes part in no session including signer3/);
    expect((await client('signer1').call(admission.activation, { name: 'signer2', challenge: challenge() })).credential).toBeUndefined();
    expect((await client('signer1').call(admission.activation, { name: 'signer3', challenge: challenge() })).credential).toBeDefined();
  }, LONG);
});
