// Removing a signer under the administrators' quorum (issue #7) on a real cluster: proposed with
// `mpchsm signer remove`, executed on the second approval; every remaining signer retires it,
// the Ed25519, P-256 and RSA keys are reshared among the remaining two (new share bytes, the same
// public keys), so the removed signer's shares no longer count. A compromised gateway can
// neither reshare without an approved removal nor to another set, nor relay the removed
// signer's envelopes.
import { randomUUID } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../../gateway/config.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import { sealEnvelope } from '../../contract/identity/envelope.js';
import { loadIdentity } from '../../contract/identity/identity.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { decodeRecord } from '../../signers/node/key-records.js';
import type { TestCluster } from '../helpers/cluster.js';
import { appRequest, approve, auditEntries, createKey, createKeyTrio, gatewayCall, publicKeyOf, refusal, signerRecord, signsAndVerifies, startWithSigners, stopWithSigners } from './helpers.js';

let tc: TestCluster;
let signers: SignerClient[];
const keys: Record<'ed' | 'ec' | 'rsa', string> = { ed: '', ec: '', rsa: '' };
const publicKeys: Record<string, Uint8Array> = {};
const sharesBefore: Record<string, string> = {};
const msg = Buffer.from('signed after signer3 left');

const shareOf = (signer: string, keyId: string) => signerRecord(tc, signer, async (s) => Buffer.from((await s.get(`key.${keyId}`))!).toString('latin1'));
/** The parties a stored share's key is shared among, read as the signer reads the record. */
const participantsOf = (stored: string) => {
  const held = decodeRecord(Buffer.from(stored, 'latin1'));
  return 'rsa' in held ? held.rsa.params.participants : held.ec.participants;
};

const signAndVerify = (keyId: string, algorithm: 'ED25519_SHA_512' | 'ECDSA_SHA_256' | 'RSASSA_PSS_SHA_256') => signsAndVerifies(tc, keyId, publicKeys[keyId]!, algorithm, msg);

const reshareStart = (c: SignerClient, keyId: string, participants: number[], dealers?: number[]) =>
  c.call(signerRoutes.reshare.start, { session: randomUUID(), keyId, participants, threshold: 2, ...(dealers ? { dealers } : {}) });

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  const made = await createKeyTrio(tc);
  Object.assign(keys, made.keys);
  Object.assign(publicKeys, made.publicKeys);
  for (const s of ['signer1', 'signer2']) for (const k of Object.values(keys)) sharesBefore[`${s}/${k}`] = await shareOf(s, k);
}, 240_000);

afterAll(() => stopWithSigners(tc, signers));

describe('RemoveSigner', () => {
  it('a compromised gateway cannot reshare a key away from a holder without an approved removal', async () => {
    const e = await refusal(reshareStart(signers[0]!, keys.ec, [1, 2]));
    expect(e.message).toContain('3 would be dropped without an approved removal');
  });

  it('a compromised gateway cannot name as dealers a party that holds no share, or one that does not stay', async () => {
    // Refused before any refresh authority is asked for: nothing is spent on it.
    for (const k of [keys.ec, keys.rsa])
      expect((await refusal(reshareStart(signers[0]!, k, [1, 2, 3], [1, 4]))).message).toContain('dealt only by old holders that stay (1, 2, 3)');
  });

  it('is proposed, pending until a second administrator approves, then executed with the keys reshared', async () => {
    const proposed = JSON.parse((await tc.mpchsm('signer', 'remove', 'signer3', '--as', 'admin1', '--dir', tc.dir, '--json')).stdout);
    expect(proposed.Status).toBe('Pending');
    expect(proposed.Approvals).toEqual(['admin1']);
    const done = await approve(tc, proposed.Proposal.id, 'admin2');
    expect(done.Status).toBe('Executed');
    for (const s of done.Signers ?? []) expect(s, `signer ${s.signer}`).toMatchObject({ applied: true });
    const result = done.Result as { Reshared: { KeyId: string; Holders: number[] }[]; Failed: unknown[] };
    expect(result.Failed).toEqual([]);
    expect(result.Reshared.map((r) => r.KeyId).sort()).toEqual(Object.values(keys).sort());
    for (const r of result.Reshared) expect(r.Holders).toEqual([1, 2]);
  }, 120_000);

  it('keeps every public key and signature working, with new share bytes at the remaining signers', async () => {
    for (const id of Object.values(keys)) expect(await publicKeyOf(tc, id)).toEqual(publicKeys[id]);
    expect(await signAndVerify(keys.ed, 'ED25519_SHA_512')).toBe(true);
    expect(await signAndVerify(keys.ec, 'ECDSA_SHA_256')).toBe(true);
    expect(await signAndVerify(keys.rsa, 'RSASSA_PSS_SHA_256')).toBe(true);
    for (const s of ['signer1', 'signer2'])
      for (const k of Object.values(keys)) {
        const after = await shareOf(s, k);
        expect(after, `${s}'s share of ${k}`).not.toEqual(sharesBefore[`${s}/${k}`]);
        expect([...participantsOf(after)]).toEqual([1, 2]);
      }
    // New keys are made by the remaining signers alone.
    const fresh = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
    publicKeys[fresh] = await publicKeyOf(tc, fresh);
    expect(await signAndVerify(fresh, 'ED25519_SHA_512')).toBe(true);
  }, 120_000);

  it('is audited at the gateway and at every remaining signer; status shows the signer retired', async () => {
    const gw = auditEntries(tc, 'gateway');
    expect(gw.some((e) => e.op === 'RemoveSigner' && e.outcome === 'ok')).toBe(true);
    for (const k of Object.values(keys)) expect(gw.some((e) => e.op === 'ReshareKey' && e.keyId === k && e.outcome === 'ok' && e.output === 'key')).toBe(true);
    for (const s of ['signer1', 'signer2']) {
      const log = auditEntries(tc, s);
      expect(log.some((e) => e.op === 'policy.RemoveSigner' && e.outcome === 'ok')).toBe(true);
      for (const k of Object.values(keys)) expect(log.some((e) => e.op === 'reshare.adopt' && e.keyId === k && e.outcome === 'ok')).toBe(true);
    }
    expect((await tc.mpchsm('audit', 'verify', '--dir', tc.dir)).stdout).not.toMatch(/error/i);
    const status = JSON.parse((await tc.mpchsm('status', '--dir', tc.dir, '--json')).stdout) as { processes: { name: string; state: string }[] };
    expect(status.processes.find((p) => p.name === 'signer3')?.state).toBe('retired');
  });

  it('refuses a removal that would leave fewer signers than the threshold', async () => {
    const r = await gatewayCall(tc, 'admin1', 'MpcHsm.RemoveSigner', { Name: 'signer2' });
    expect(r.status).toBe(400);
    expect(r.body.__type).toBe('ValidationException');
  });

  it('a compromised gateway cannot reshare to another set, nor relay the removed signer', async () => {
    // The old set plus the removed signer, and a reshare with nothing retired in it any more.
    expect((await refusal(reshareStart(signers[0]!, keys.rsa, [1, 2, 3]))).message).toContain('not to 3');
    expect((await refusal(reshareStart(signers[0]!, keys.ec, [1, 2, 3]))).message).toContain('not to 3');
    expect((await refusal(reshareStart(signers[1]!, keys.ed, [2]))).message).toContain('1 would be dropped');
    // An application's genuine request to sign, in a session that includes the removed signer.
    const body = { KeyId: keys.ec, Message: msg.toString('base64'), MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' };
    const use = { operation: 'Sign', algorithm: 'ECDSA_SHA_256', messageType: 'RAW', payload: msg.toString('base64'), evidence: await appRequest(tc, 'TrentService.Sign', body) };
    const digest = Buffer.from(sha256(msg)).toString('hex');
    expect((await refusal(signers[0]!.call(signerRoutes.ecdsa.sign.start, { session: randomUUID(), keyId: keys.ec, signers: [1, 3], digest, use }))).message).toContain('not an active signer');
    // A genuine envelope from signer3, relayed into a session the remaining signers run.
    const session = randomUUID();
    await signers[0]!.call(signerRoutes.ecdsa.sign.start, { session, keyId: keys.ec, signers: [1, 2], digest, use });
    const signer3 = await signerRecord(tc, 'signer3', (s) => loadIdentity(s));
    const signer1 = loadGatewayConfig(path.join(tc.dir, 'gateway')).signers.find((s) => s.id === 1)!.identity;
    const envelope = sealEnvelope({ purpose: `ecdsa-sign:${keys.ec}`, session, round: 1, from: 3, to: 1, payload: Buffer.from('{}') }, signer3, signer1);
    const e = await refusal(signers[0]!.call(signerRoutes.ecdsa.sign.step, { session, inbound: [{ from: 3, to: 1, envelope }] }));
    expect(e.message).toContain('unknown-sender');
    // A removal forwarded without approvals (last: the signer consumes the change number).
    const gap = await refusal(signers[0]!.call(signerRoutes.policy.apply, { seq: 1e12, keyId: randomUUID(), operation: 'EnableKey', parameters: {} }));
    const seq = Number(/expected change (\d+)/.exec(gap.message)![1]);
    const unapproved = await refusal(signers[0]!.call(signerRoutes.policy.apply, { seq, operation: 'RemoveSigner', parameters: { Name: 'signer2' }, principal: 'admin1' }));
    expect(unapproved.message).toContain('mpchsm:RemoveSigner needs approval by 2 of the 3 administrators');
  });
});

describe('mpchsm signer remove', () => {
  it('refuses an unknown signer before anyone approves', async () => {
    const r = await gatewayCall(tc, 'admin1', 'MpcHsm.RemoveSigner', { Name: 'signer9' });
    expect(r.body.__type).toBe('NotFoundException');
  });
});
