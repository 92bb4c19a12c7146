// A session the planner gives up after a bad partial still released the other signers'
// partials: the request's audit entries account for it, so the cross-check finds them.
import { describe, expect, it } from 'vitest';
import { abandonedEntries, traceSession, type Trace } from '../../gateway/cluster-outcome.js';
import type { SignerClient } from '../../gateway/signer-client.js';

const client = (name: string, id: number) => ({ name, id }) as SignerClient;
const head = (seq: number) => ({ audit: { seq, hash: 'ab'.repeat(32) } });

describe('abandoned sessions', () => {
  it('keeps a session replaced by a retry and records it as failed beside the request', () => {
    const trace: Trace = { signers: [] };
    traceSession(trace, 'session-a', [client('signer1', 1), client('signer2', 2)], [head(4), head(7)]);
    traceSession(trace, 'session-b', [client('signer1', 1), client('signer3', 3)], [head(5), head(2)]);
    expect(trace).toMatchObject({ session: 'session-b', signers: [{ name: 'signer1', entry: { seq: 5 } }, { name: 'signer3' }] });
    const entry = { request: 'session-b', op: 'Sign', keyId: 'k', digest: 'cd'.repeat(32), principal: { name: 'app' }, outcome: 'ok' as const, output: 'signature' as const, startedAt: 0 };
    expect(abandonedEntries(trace, entry)).toEqual([
      {
        ...entry,
        request: 'session-a',
        session: 'session-a',
        signers: [
          { name: 'signer1', id: 1, entry: { seq: 4, hash: 'ab'.repeat(32) } },
          { name: 'signer2', id: 2, entry: { seq: 7, hash: 'ab'.repeat(32) } },
        ],
        outcome: 'failed',
        reason: 'abandoned after a bad partial; went on as session session-b',
        output: 'none',
      },
    ]);
    expect(abandonedEntries({ session: 'x', signers: [] }, entry)).toEqual([]);
  });
});
