// Protocol aborts by signer (gateway/metrics.ts, from planner.ts): a signer whose partial does not
// verify is counted once against it, under bad-partial, whether a spare stands in within the phase
// or its failure ends the attempt too; a signer's refusal on policy grounds is no abort. The
// signers are in-process stand-ins: what is tested is the planner's attribution and the counter.
// At a signer (signers/node/metrics.ts), a session it gives up on a peer's bad message
// (sessions.ts protocolFailure) is counted against that peer by name, an unknown party by its
// id, one that names no peer as none; another refusal is no abort.
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../gateway/metrics.js';
import { BadPartialError, Planner } from '../../gateway/planner.js';
import { SignerRefusedError, type SignerClient } from '../../gateway/signer-client.js';
import { ProtocolError } from '../../signers/protocols/common.js';
import { SignerMetrics } from '../../signers/node/metrics.js';
import { RpcError } from '../../signers/node/rpc.js';
import { protocolFailure } from '../../signers/node/sessions.js';
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

describe('protocol aborts at a signer, by the peer blamed', () => {
  it('counts each protocol-abort refusal against the peer its error names', async () => {
    const peers = new Map([
      [1, 'signer1'],
      [2, 'signer2'],
    ]);
    const metrics = new SignerMetrics({ auditHead: () => ({ seq: 0 }), state: () => undefined, peerName: (id) => peers.get(id) });
    const failing = (e: unknown) => async () => protocolFailure(e);
    const routes = metrics.instrument({
      '/v1/frost/sign': failing(new ProtocolError('bad-share', 'share does not verify', 2)),
      '/v1/dkg/round2': failing(new ProtocolError('bad-share', 'share does not verify', 7)),
      '/v1/dkg/round3': failing(new ProtocolError('malformed', 'state lost')),
      '/v1/frost/commit': async () => {
        throw new RpcError(403, 'access-denied', 'access denied: no');
      },
    });
    for (const [route, handler] of Object.entries(routes)) await expect(handler({}, {}), route).rejects.toBeInstanceOf(RpcError);
    await expect(routes['/v1/frost/sign']!({}, {})).rejects.toThrow();
    const s = new Scrape(await metrics.registry.metrics());
    const SIGNER_ABORTS = 'mpchsm_signer_protocol_aborts_total';
    expect(s.value(SIGNER_ABORTS, { peer: 'signer2' })).toBe(2);
    expect(s.value(SIGNER_ABORTS, { peer: 'party-7' })).toBe(1);
    expect(s.value(SIGNER_ABORTS, { peer: 'none' })).toBe(1);
    expect(s.sum(SIGNER_ABORTS)).toBe(4);
    expect(s.value('mpchsm_signer_calls_total', { route: '/v1/frost/commit', outcome: 'access-denied' })).toBe(1);
  });
});
