// Protocol aborts by signer (gateway/metrics.ts, from planner.ts): a signer whose partial does not
// verify is counted once against it, under bad-partial, whether a spare stands in within the phase
// or its failure ends the attempt too; a signer's refusal on policy grounds is no abort. The
// signers are in-process stand-ins: what is tested is the planner's attribution and the counter.
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../gateway/metrics.js';
import { BadPartialError, Planner } from '../../gateway/planner.js';
import { SignerRefusedError, type SignerClient } from '../../gateway/signer-client.js';
import { Scrape } from './scrape.js';

const ABORTS = 'mpchsm_gateway_protocol_aborts_total';

/** Stand-ins for `ids`, a planner telling a fresh GatewayMetrics of its aborts, and a scrape of it. */
function setup(ids: number[]) {
  const clients = new Map(ids.map((id) => [id, { id, name: `signer${id}`, probe: async () => ({ answered: true, healthy: true, detail: '' }) } as unknown as SignerClient]));
  const metrics = new GatewayMetrics({ reachability: () => [], threshold: 2, auditHead: () => ({ seq: 0 }) });
  const planner = new Planner(clients, { quorumWaitMs: 4000, sessionsInFlight: 4 }, undefined, (c, reason) => metrics.protocolAbort(c.name, reason));
  return { planner, scrape: async () => new Scrape(await metrics.registry.metrics()) };
}

/** A phase where signer `bad` answers a partial that does not verify, the others a good one. */
const phase = (bad: number) => async (c: SignerClient) => {
  if (c.id === bad) throw new BadPartialError(c.name, `bad partial from ${c.name}`);
  return c.id;
};

describe('protocol aborts by signer', () => {
  it('a bad partial a spare makes up for is counted once, against its signer', async () => {
    const { planner, scrape } = setup([1, 2, 3]);
    for (let i = 0; i < 12; i++) await planner.run([1, 2, 3], 2, (plan) => plan.gather(phase(2)));
    planner.close();
    const s = await scrape();
    expect(s.value(ABORTS, { signer: 'signer2', reason: 'bad-partial' })).toBeGreaterThan(0);
    expect(s.labelValues(ABORTS, 'signer')).toEqual(new Set(['signer2']));
  });

  it('a bad partial that ends the phase and the attempt is counted once, not twice', async () => {
    const { planner, scrape } = setup([1, 2]);
    await expect(planner.run([1, 2], 2, (plan) => plan.gather(phase(2)))).rejects.toThrow();
    planner.close();
    expect((await scrape()).value(ABORTS, { signer: 'signer2', reason: 'bad-partial' })).toBe(1);
  });

  it("a signer's refusal on policy grounds is no abort", async () => {
    const { planner, scrape } = setup([1, 2]);
    const refused = async (c: SignerClient) => {
      throw new SignerRefusedError(c.name, 403, 'access-denied', 'access denied: no');
    };
    await expect(planner.run([1, 2], 2, (plan) => plan.gather(refused))).rejects.toThrow(/access denied/);
    planner.close();
    expect((await scrape()).sum(ABORTS)).toBe(0);
  });
});
