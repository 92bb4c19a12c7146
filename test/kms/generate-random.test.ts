// GenerateRandom built from t signers' contributions (gateway/random.ts), against a real cluster:
// through @aws-sdk/client-kms an application gets exactly the bytes it asked for, key
// administrators and auditors are refused by their role ceilings, and the audit logs of the
// gateway and of the signers it names agree (audit/crosscheck.ts). Then a compromised gateway
// (the test holds its identity and calls the signers itself): each signer contributes only for
// a client's own signed GenerateRandom of exactly that size, once, and records what it released.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { GenerateRandomCommand, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossCheck } from '../../audit/crosscheck.js';
import { readLog } from '../../audit/verify.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { combineContributions } from '../../gateway/random.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import type { TestCluster } from '../helpers/cluster.js';
import { appRequest, auditEntries, refusal, startWithSigners, stopWithSigners } from '../policy-cluster/helpers.js';
import { awsError, kmsClient } from './kms-client.js';

const LONG = 180_000;
let tc: TestCluster;
let signers: SignerClient[] = [];
let app: KMSClient;

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  app = kmsClient(tc, 'app');
}, LONG);

afterAll(async () => {
  await stopWithSigners(tc, signers);
}, LONG);

const random = (n: number) => app.send(new GenerateRandomCommand({ NumberOfBytes: n }));
type Entry = Record<string, unknown> & { request: string; seq: number; principal?: { name: string }; signers?: { name: string }[] };

describe('combining contributions', () => {
  const c = (id: number, fill: number) => ({ id, contribution: new Uint8Array(32).fill(fill) });

  it('is HKDF over the contributions in signer-id order, bound to the session, of the length asked', () => {
    const s = randomUUID();
    const out = combineContributions(s, [c(1, 1), c(3, 3)], 64);
    expect(out).toHaveLength(64);
    expect(combineContributions(s, [c(3, 3), c(1, 1)], 64)).toEqual(out);
    expect(combineContributions(randomUUID(), [c(1, 1), c(3, 3)], 64)).not.toEqual(out);
    expect(combineContributions(s, [c(1, 1), c(3, 4)], 64)).not.toEqual(out);
    expect(combineContributions(s, [c(1, 1), c(3, 3)], 32)).not.toEqual(out.subarray(0, 32));
  });
});

describe('GenerateRandom through the KMS API', () => {
  it('an application gets exactly the bytes it asked for, 1 to 1024; two calls differ', async () => {
    for (const n of [1, 32, 1024]) expect((await random(n)).Plaintext, `${n} bytes`).toHaveLength(n);
    const [a, b] = [(await random(32)).Plaintext!, (await random(32)).Plaintext!];
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it('key administrators and auditors are refused by their role ceilings; sizes and CustomKeyStoreId are checked as before', async () => {
    for (const name of ['admin1', 'auditor']) {
      const e = await awsError(kmsClient(tc, name).send(new GenerateRandomCommand({ NumberOfBytes: 32 })));
      expect([e.name, e.message]).toEqual(['AccessDeniedException', expect.stringContaining('[missing: kms:GenerateRandom]')]);
    }
    for (const NumberOfBytes of [0, 1025]) expect((await awsError(random(NumberOfBytes))).name).toBe('ValidationException');
    expect((await awsError(app.send(new GenerateRandomCommand({ NumberOfBytes: 8, CustomKeyStoreId: 'cks-1234567890abcdef0' })))).name).toBe('CustomKeyStoreNotFoundException');
  });

  it('the gateway’s entry names t signers, each of which recorded its contribution for that request; the logs cross-check', async () => {
    const gateway = auditEntries(tc, 'gateway') as Entry[];
    const served = gateway.filter((e) => e.op === 'GenerateRandom' && e.outcome === 'ok');
    expect(served).toHaveLength(5);
    for (const g of served) {
      expect(g).toMatchObject({ output: 'plaintext', principal: { name: 'app' } });
      expect(g.signers).toHaveLength(tc.cluster().threshold);
      for (const s of g.signers!) {
        const mine = (auditEntries(tc, s.name) as Entry[]).filter((e) => e.request === g.request);
        expect(mine, `${s.name} for ${g.request}`).toContainEqual(
          expect.objectContaining({ op: 'random.contribute', outcome: 'ok', output: 'partial', operation: 'GenerateRandom', principal: { name: 'app' } }),
        );
      }
    }
    const logs = await Promise.all([
      readLog(path.join(tc.dir, 'gateway', 'audit.jsonl'), 'gateway'),
      ...tc.cluster().signers.map((s) => readLog(path.join(tc.dir, 'signers', s.name, 'audit.jsonl'), s.name)),
    ]);
    expect(crossCheck(logs[0]!, logs.slice(1)).filter((f) => f.severity !== 'info')).toEqual([]);
  });
});

describe('a lying gateway, at real signers', () => {
  const contribute = (c: SignerClient, numberOfBytes: number, evidence: unknown, session = randomUUID()) => c.call(signerRoutes.random.contribute, { session, numberOfBytes, evidence });
  const ask = (n: number, as = 'app') => appRequest(tc, 'TrentService.GenerateRandom', { NumberOfBytes: n }, as);

  it('a client’s request is served once by each signer, which records the release; the same request again is refused', async () => {
    const evidence = await ask(32);
    const session = randomUUID();
    const first = await contribute(signers[0]!, 32, evidence, session);
    expect(first.contribution).toMatch(/^[0-9a-f]{64}$/);
    const released = (auditEntries(tc, signers[0]!.name) as Entry[]).find((e) => e.request === session);
    expect(released).toMatchObject({ op: 'random.contribute', outcome: 'ok', output: 'partial', operation: 'GenerateRandom', principal: { name: 'app' }, evidenceHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(released?.keyId).toBeUndefined();
    expect(first.audit?.seq).toBe(released?.seq);
    // A second contribution for the same request would let the gateway choose between outputs.
    for (const s of [session, randomUUID()]) expect((await refusal(contribute(signers[0]!, 32, evidence, s))).message).toMatch(/already used \(replay\)/);
    // Each signer spends the request for itself.
    expect((await contribute(signers[1]!, 32, evidence)).contribution).not.toBe(first.contribution);
  });

  it('the same request twice at once: one contribution, one refusal', async () => {
    const evidence = await ask(64);
    const both = await Promise.allSettled([contribute(signers[2]!, 64, evidence), contribute(signers[2]!, 64, evidence)]);
    expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = both.find((r) => r.status === 'rejected');
    expect(String((refused as PromiseRejectedResult | undefined)?.reason)).toMatch(/already used \(replay\)/);
  });

  it('no evidence, a signed request for another operation, another size or a tampered body: refused by every signer, and recorded', async () => {
    const sign = await appRequest(tc, 'TrentService.Sign', { KeyId: randomUUID(), Message: Buffer.from('m').toString('base64'), SigningAlgorithm: 'ED25519_SHA_512' });
    const forSixteen = await ask(16);
    const tampered = { ...(await ask(16)), body: Buffer.from('{"NumberOfBytes":1024}').toString('base64') };
    const cases: [number, unknown, RegExp][] = [
      [32, undefined, /malformed request: evidence/],
      [32, null, /malformed evidence/],
      [32, sign, /is TrentService\.Sign, not TrentService\.GenerateRandom/],
      [1024, forSixteen, /the client asked for 16 bytes, not 1024/],
      [1024, tampered, /does not verify|does not match the body/],
    ];
    for (const [n, evidence, why] of cases)
      for (const c of signers) {
        const session = randomUUID();
        expect((await refusal(contribute(c, n, evidence, session))).message, c.name).toMatch(why);
        expect((auditEntries(tc, c.name) as Entry[]).find((e) => e.request === session), c.name).toMatchObject({ op: 'random.contribute', outcome: 'refused', output: 'none' });
      }
  });

  it('a key administrator’s own signed GenerateRandom is refused by every signer’s role ceilings', async () => {
    const evidence = await ask(32, 'admin1');
    for (const c of signers) expect((await refusal(contribute(c, 32, evidence))).message, c.name).toMatch(/principal admin1 is not allowed kms:GenerateRandom/);
  });
});
