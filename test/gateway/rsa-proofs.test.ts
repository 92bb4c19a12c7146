// The gateway's threshold-RSA session (gateway/rsa.ts): partials come without their proofs; only
// when the combination does not verify does it ask the same signers again, with proofs, to name
// the bad one, and the planner then signs without it. The signers are in-process stand-ins that
// compute real partials (one from a wrong share): what is tested is the coordinator's path, not
// the transport (test/policy-cluster/ has real signer processes).
import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ClusterSessions } from '../../gateway/coordinator.js';
import type { KeyRecord } from '../../gateway/keys.js';
import { Planner } from '../../gateway/planner.js';
import { RsaCoordinator } from '../../gateway/rsa.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import { dealRsa } from '../../signers/protocols/rsa/deal.js';
import { encodePublicParams } from '../../signers/protocols/rsa/key.js';
import { rsaPartial } from '../../signers/protocols/rsa/partial.js';
import { seededRng } from '../helpers/rng.js';

const rng = seededRng('rsa-proofs');
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const deal = dealRsa({ pkcs8Pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, participants: [1, 2, 3], threshold: 2 }, rng);
const publicKey = createPublicKey({ key: Buffer.from(deal.publicKey.spki), format: 'der', type: 'spki' });
const key = { keyId: 'rsa-proofs', holders: [1, 2, 3], threshold: 2, rsa: encodePublicParams(deal.params) } as unknown as KeyRecord;

/** Three signers answering rsa.partial with real partials; `wrong` ones use share + 1. */
function signers(wrong: number[]) {
  const calls: { id: number; prove: boolean | undefined }[] = [];
  const clients = new Map(
    [1, 2, 3].map((id) => {
      const share = deal.shares.find((s) => s.id === id)!;
      const used = wrong.includes(id) ? { ...share, s: share.s + 1n } : share;
      const call = async (_route: unknown, body: { request: unknown; prove?: boolean }) => {
        calls.push({ id, prove: body.prove });
        return { partial: rsaPartial(deal.params, used, body.request, rng, body.prove ?? true) };
      };
      return [id, { id, name: `signer${id}`, call, probe: async () => ({ healthy: true, detail: '' }) } as unknown as SignerClient];
    }),
  );
  const warnings: string[] = [];
  const planner = new Planner(clients, { quorumWaitMs: 4000, sessionsInFlight: 4 });
  const sessions: ClusterSessions = {
    config: { threshold: 2 },
    runSession: (k, session) => planner.run(k.holders, k.threshold, session, (what) => warnings.push(what)),
    generate: () => Promise.reject(new Error('not in this test')),
  };
  return { rsa: new RsaCoordinator(sessions, clients, pino({ level: 'silent' })), calls, warnings, close: () => planner.close() };
}

const sign = (rsa: RsaCoordinator, message: string) =>
  rsa.sign(key, { keyId: key.keyId, algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', messageType: 'DIGEST', message: createHash('sha256').update(message).digest() }, { signers: [] });

describe('threshold RSA at the gateway: proofs only when the combination fails', () => {
  it('honest signers are asked once each, without proofs', async () => {
    const s = signers([]);
    const signature = await sign(s.rsa, 'honest');
    expect(verify('sha256', Buffer.from('honest'), publicKey, signature)).toBe(true);
    expect(s.calls).toHaveLength(2);
    expect(s.calls.every((c) => c.prove === false)).toBe(true);
    s.close();
  });

  it('a signer with a wrong share: its proof is asked for and fails, it is named, and the signature is made without it', async () => {
    const s = signers([2]);
    // The planner picks signers at random: ten signatures meet signer2 with certainty but for (1/3)^10.
    for (let i = 0; i < 10; i++) {
      const signature = await sign(s.rsa, `message ${i}`);
      expect(verify('sha256', Buffer.from(`message ${i}`), publicKey, signature), `signature ${i}`).toBe(true);
    }
    const proofRounds = s.calls.filter((c) => c.prove === true);
    expect(proofRounds.some((c) => c.id === 2)).toBe(true);
    expect(s.warnings.some((w) => /signer2/.test(w) && /proof of correctness does not verify/.test(w))).toBe(true);
    s.close();
  });
});
