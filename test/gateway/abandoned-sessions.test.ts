// A session the planner gives up (a bad partial, a signer that failed) may have released other
// signers' partials: the request's audit entries account for it, so the cross-check finds them.
import { describe, expect, it } from 'vitest';
import { abandonedEntries } from '../../gateway/audit-intent.js';
import { askAll, traceSession, type Trace } from '../../gateway/cluster-outcome.js';
import type { SignerClient } from '../../gateway/signer-client.js';

const client = (name: string, id: number) => ({ name, id }) as SignerClient;
const head = (seq: number) => ({ audit: { seq, hash: 'ab'.repeat(32) } });
const entry = { request: 'session-c', op: 'Sign', keyId: 'k', digest: 'cd'.repeat(32), principal: { name: 'app' }, outcome: 'ok' as const, output: 'signature' as const, startedAt: 0 };

describe('abandoned sessions', () => {
  it('keeps a session a retry replaces, and one a failed signer cut short, and records them as failed beside the request', async () => {
    const trace: Trace = { signers: [] };
    const [s1, s2, s3] = [client('signer1', 1), client('signer2', 2), client('signer3', 3)];
    // session-a: every signer answered, then the planner found a bad partial.
    traceSession(trace, 'session-a', [s1, s2], await askAll(trace, 'session-a', [s1, s2], async (c) => head(c.id === 1 ? 4 : 7)));
    // session-b: signer3 failed after signer1 released its partial.
    const down = new Error('signer3 unavailable');
    await expect(askAll(trace, 'session-b', [s1, s3], async (c) => (c.id === 3 ? Promise.reject(down) : head(5)))).rejects.toBe(down);
    // Nobody answered: nothing was released.
    await expect(askAll(trace, 'session-x', [s3], () => Promise.reject(down))).rejects.toBe(down);
    traceSession(trace, 'session-c', [s1, s2], [head(6), head(8)]);
    expect(trace).toMatchObject({ session: 'session-c', signers: [{ name: 'signer1', entry: { seq: 6 } }, { name: 'signer2', entry: { seq: 8 } }] });
    const failed = { outcome: 'failed', reason: 'session abandoned; the request went on as session session-c', output: 'none' };
    const signer = (name: string, id: number, seq?: number) => ({ name, id, ...(seq === undefined ? {} : { entry: { seq, hash: 'ab'.repeat(32) } }) });
    expect(abandonedEntries(trace, entry)).toEqual([
      { ...entry, ...failed, request: 'session-b', session: 'session-b', signers: [signer('signer1', 1, 5), signer('signer3', 3)] },
      { ...entry, ...failed, request: 'session-a', session: 'session-a', signers: [signer('signer1', 1, 4), signer('signer2', 2, 7)] },
    ]);
    expect(abandonedEntries({ session: 'x', signers: [] }, entry)).toEqual([]);
  });
});
