// DKLs23 presignatures on a real cluster: KMS Sign takes one round once the gateway holds
// presignatures (seen in the signers' audit entries), and a presignature is never used twice —
// not by two racing requests, not after a kill -9 between its consumption and the partial, not
// after a signer's store is restored from a copy — nor for another key, signer set or digest
// than the client asked, whatever a lying gateway sends (it calls the signers directly here).
import { createHash, createPublicKey, randomUUID, verify } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../cli/processes.js';
import { startParty } from '../../cli/party-process.js';
import { relayRounds } from '../../gateway/relay.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import { openEnvelope } from '../../contract/identity/envelope.js';
import type { IdentitySecrets } from '../../contract/identity/identity.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { ecdsaCombine } from '../../signers/protocols/ecdsa/index.js';
import type { Message } from '../../signers/protocols/common.js';
import { copyLiveDir, startCluster, type TestCluster } from '../helpers/cluster.js';
import { appRequest, auditEntries, createKey, gatewayIdentity, kms, publicKeyOf, refusal, signerClients } from '../policy-cluster/helpers.js';

let tc: TestCluster;
let identity: IdentitySecrets;
let signers: SignerClient[];
let ec: string;
let ec384: string;
const publicKeys: Record<string, Uint8Array> = {};
/** The signers the gateway signed with in one round (before any test called them directly). */
const gatewaySet: string[] = [];

const sha256 = (m: Uint8Array) => createHash('sha256').update(m).digest();
const closeClients = () => signers?.forEach((c) => c.close());

beforeAll(async () => {
  tc = await startCluster();
  identity = await gatewayIdentity(tc);
  signers = signerClients(tc, identity);
  ec = await createKey(tc, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
  ec384 = await createKey(tc, { KeySpec: 'ECC_NIST_P384', KeyUsage: 'SIGN_VERIFY' });
  for (const k of [ec, ec384]) publicKeys[k] = await publicKeyOf(tc, k);
}, 180_000);

afterAll(async () => {
  closeClients();
  await tc?.destroy();
});

/** Down and up again (every process restarts; ports and directories stay); fresh clients. */
async function restart(between?: () => void): Promise<void> {
  closeClients();
  await tc.down();
  between?.();
  await tc.up();
  signers = signerClients(tc, identity);
}

/** SIGKILLs one signer and starts it again, the gateway and the others running on (cluster.json follows). */
async function restartSigner(name: string): Promise<void> {
  const cluster = tc.cluster();
  const entry = cluster.signers.find((s) => s.name === name)!;
  try {
    process.kill(entry.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  for (let k = 0; k < 100 && isAlive(entry.pid); k++) await sleep(50);
  const started = await startParty({ kind: 'signer', dir: path.join(tc.dir, 'signers', name), secret: readFileSync(path.join(tc.dir, 'operators', `${name}.secret`), 'utf8'), detach: true, logFile: path.join(tc.dir, 'logs', `${name}.log`), genesis: path.join(tc.dir, 'genesis.json') });
  entry.pid = started.child.pid!;
  writeFileSync(path.join(tc.dir, 'cluster.json'), JSON.stringify(cluster, null, 2));
}

/** KMS Sign as the application, verified with node:crypto. */
async function kmsSigns(keyId: string, algorithm: 'ECDSA_SHA_256' | 'ECDSA_SHA_384' = 'ECDSA_SHA_256'): Promise<void> {
  const message = Buffer.from(`presigned ${randomUUID()}`);
  const r = await kms(tc, 'app').send(new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm }));
  const key = createPublicKey({ key: Buffer.from(publicKeys[keyId]!), format: 'der', type: 'spki' });
  expect(verify(algorithm === 'ECDSA_SHA_256' ? 'sha256' : 'sha384', message, key, r.Signature!)).toBe(true);
}

/** Partials a signer released with a presignature for `keyId`, by its audit log. */
const presignedReleases = (keyId: string, signer = 'signer1') => auditEntries(tc, signer).filter((e) => e.keyId === keyId && e.algorithm === 'ecdsa-dkls23-presigned' && e.outcome === 'ok');

/** A presigning session run by hand with `chosen` (as a gateway, honest or not, does); the ids. */
async function presign(keyId: string, chosen: SignerClient[], count: number): Promise<string[]> {
  const answers = await relayRounds(chosen, signerRoutes.ecdsa.presign, { session: randomUUID(), keyId, signers: chosen.map((c) => c.id), count }, 2);
  return answers[0]!.presignatures!.map((p) => p.id);
}

/** The application's genuine, signed request to sign `message` with `keyId`, as `use`. */
async function useFor(keyId: string, message: Uint8Array) {
  const body = { KeyId: keyId, Message: Buffer.from(message).toString('base64'), MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' };
  return { operation: 'Sign', algorithm: 'ECDSA_SHA_256', messageType: 'RAW', payload: body.Message, evidence: await appRequest(tc, 'TrentService.Sign', body) };
}

/** One presigned call: `message` is what the client signed, `digest` what the gateway says is signed (by default, its hash). */
async function presignedCall(c: SignerClient, o: { session?: string; keyId: string; id: string; signers: number[]; message: Uint8Array; digest?: Uint8Array }) {
  const body = { session: o.session ?? randomUUID(), keyId: o.keyId, presignature: o.id, signers: o.signers, digest: Buffer.from(o.digest ?? sha256(o.message)).toString('hex'), use: await useFor(o.keyId, o.message) };
  return c.call(signerRoutes.ecdsa.sign.presigned, body);
}

/** The round-3 broadcast in a signer's answer, opened as the gateway opens it. */
function round3(c: SignerClient, keyId: string, session: string, outbound: { from: number; to: number | 'all'; envelope: never }[]): Message {
  const m = outbound.find((o) => o.from === c.id && o.to === 'all')!;
  const payload = openEnvelope(m.envelope, identity, c.entry.identity, { purpose: `ecdsa-sign:${keyId}`, session, round: 3, from: c.id, to: 'all' });
  return { session, round: 3, from: c.id, to: 'all', payload: JSON.parse(Buffer.from(payload).toString('utf8')) };
}

const publicPoint = (keyId: string) => Buffer.from(JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${keyId}.json`), 'utf8')).ecdsa.publicKey, 'hex');

describe('DKLs23 presignatures on a real cluster', () => {
  it('KMS Sign on P-256 and P-384 takes the one-round path once presignatures are held, verified with node:crypto', async () => {
    for (const [keyId, alg] of [[ec, 'ECDSA_SHA_256'], [ec384, 'ECDSA_SHA_384']] as const) {
      const before = ['signer1', 'signer2', 'signer3'].reduce((n, s) => n + presignedReleases(keyId, s).length, 0);
      // The first signature takes three rounds and starts presigning in the background.
      for (let k = 0; k < 12; k++) {
        await kmsSigns(keyId, alg);
        if (['signer1', 'signer2', 'signer3'].reduce((n, s) => n + presignedReleases(keyId, s).length, 0) > before) break;
        await sleep(400);
      }
      const after = ['signer1', 'signer2', 'signer3'].reduce((n, s) => n + presignedReleases(keyId, s).length, 0);
      expect(after, `${alg}: a signature was made with a presignature`).toBeGreaterThan(before);
    }
    gatewaySet.push(...['signer1', 'signer2', 'signer3'].filter((s) => presignedReleases(ec, s).length > 0));
  }, 120_000);

  it('a lying gateway: another key or signer set, a digest the client did not sign, different digests at two signers', async () => {
    const [s1, s2, s3] = signers as [SignerClient, SignerClient, SignerClient];
    const ids = await presign(ec, [s1, s2], 6);
    const message = Buffer.from('pay 10 to bob');
    // Honest use first: both signers, one digest, a signature that verifies.
    const session = randomUUID();
    const answers = await Promise.all([s1, s2].map((c) => presignedCall(c, { session, keyId: ec, id: ids[0]!, signers: [1, 2], message })));
    const sig = ecdsaCombine({ curve: 'p256', publicKey: publicPoint(ec), session, signers: [1, 2], digest: sha256(message) }, answers.map((a, i) => round3([s1, s2][i]!, ec, session, a.outbound as never)));
    expect(sig.length).toBe(64);
    // For another key: refused, and the presignature is gone.
    expect((await refusal(presignedCall(s1, { keyId: ec384, id: ids[1]!, signers: [1, 2], message }))).code).toBe('bad-request');
    expect((await refusal(presignedCall(s1, { keyId: ec, id: ids[1]!, signers: [1, 2], message }))).code).toBe('not-preprocessed');
    // For another signer set.
    expect((await refusal(presignedCall(s1, { keyId: ec, id: ids[2]!, signers: [1, 3], message }))).code).toBe('wrong-participants');
    expect((await refusal(presignedCall(s3, { keyId: ec, id: ids[3]!, signers: [1, 2], message }))).code).toBe('not-preprocessed');
    // A digest the client did not sign: the signer's policy refuses it.
    expect((await refusal(presignedCall(s1, { keyId: ec, id: ids[4]!, signers: [1, 2], message, digest: sha256(Buffer.from('pay 1000 to mallory')) }))).code).toBe('access-denied');
    // Two genuine requests, one digest to each signer with the same presignature: no signature.
    const split = randomUUID();
    const other = Buffer.from('pay 20 to carol');
    const a = await presignedCall(s1, { session: split, keyId: ec, id: ids[5]!, signers: [1, 2], message });
    const b = await presignedCall(s2, { session: split, keyId: ec, id: ids[5]!, signers: [1, 2], message: other });
    const partials = [round3(s1, ec, split, a.outbound as never), round3(s2, ec, split, b.outbound as never)];
    for (const m of [message, other]) expect(() => ecdsaCombine({ curve: 'p256', publicKey: publicPoint(ec), session: split, signers: [1, 2], digest: sha256(m) }, partials)).toThrow(/different R/);
  }, 120_000);

  it('two requests racing for the last presignature: exactly one partial is released', async () => {
    const [s1, s2] = signers as [SignerClient, SignerClient];
    const [id] = await presign(ec, [s1, s2], 1);
    const sessions: string[] = [randomUUID(), randomUUID()];
    const settled = await Promise.allSettled(sessions.map((session) => presignedCall(s1, { session, keyId: ec, id: id!, signers: [1, 2], message: Buffer.from(`race ${session}`) })));
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
    const lost = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult;
    expect((lost.reason as { code: string }).code).toBe('not-preprocessed');
    expect(auditEntries(tc, 'signer1').filter((e) => sessions.includes(e.session as string) && e.outcome === 'ok')).toHaveLength(1);
  }, 60_000);

  it('kill -9 between consumption and partial: the same presignature is refused after the restart; the gateway falls back and goes on', async () => {
    // The victim: a signer the gateway signs with in one round (its pool holds presignatures with it).
    const victim = gatewaySet[0]!;
    const other = signers.find((c) => c.name !== victim)!;
    const target = signers.find((c) => c.name === victim)!;
    const pair = [other, target].sort((a, b) => a.id - b.id);
    const ids = pair.map((c) => c.id);
    const [id] = await presign(ec, pair, 1);
    const message = Buffer.from('killed in flight');
    const session = randomUUID();
    await presignedCall(other, { session, keyId: ec, id: id!, signers: ids, message });
    process.kill(tc.cluster().signers.find((s) => s.name === victim)!.pid, 'SIGSTOP');
    const inFlight = presignedCall(target, { session, keyId: ec, id: id!, signers: ids, message }).catch((e: unknown) => e);
    await sleep(300);
    await restartSigner(victim);
    await inFlight;
    // The same call again, with a fresh signature on the client's request.
    for (const c of pair) expect((await refusal(presignedCall(c, { keyId: ec, id: id!, signers: ids, message }))).code).toBe('not-preprocessed');
    // The gateway still holds ids of presignatures the victim lost: refused, it drops them and signs in three rounds.
    // (Each request orders the signers at random, and the victim is asked last until its probe re-admits it.)
    const log = path.join(tc.dir, 'logs', 'gateway.log');
    const fellBack = () => existsSync(log) && readFileSync(log, 'utf8').includes('a presignature was not held');
    for (let k = 0; k < 20 && !fellBack(); k++) {
      await kmsSigns(ec);
      await sleep(200);
    }
    expect(fellBack()).toBe(true);
    await kmsSigns(ec);
  }, 120_000);

  it('a store restored from a copy brings back no presignature', async () => {
    // The gateway holds presignatures for the key (the first test), and so does this caller.
    await kmsSigns(ec);
    const [s1, s2] = signers as [SignerClient, SignerClient];
    const ids = await presign(ec, [s1, s2], 8);
    const copy = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-signer-copy-'));
    const dir = path.join(tc.dir, 'signers', 'signer1');
    try {
      copyLiveDir(dir, copy);
      // Two of them used before the restore.
      for (const id of ids.slice(0, 2)) await presignedCall(s1, { keyId: ec, id, signers: [1, 2], message: Buffer.from(id) });
      await restart(() => {
        rmSync(dir, { recursive: true, force: true });
        cpSync(copy, dir, { recursive: true });
      });
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
    for (const id of ids) expect((await refusal(presignedCall(signers[0]!, { keyId: ec, id, signers: [1, 2], message: Buffer.from(id) }))).code).toBe('not-preprocessed');
    await kmsSigns(ec);
    await kmsSigns(ec384, 'ECDSA_SHA_384');
  }, 180_000);
});
