// The gateway's write-ahead audit (gateway/audit-intent.ts): inside an audited request, the first
// call under a session starts one intent; a call that may release waits until it is durable; a
// SigV4 check or a call outside any request writes none; finish() leaves no intent open.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { crossCheck } from '../../audit/crosscheck.js';
import { AuditLog } from '../../audit/log.js';
import { readLog } from '../../audit/verify.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { AuditedRequest, beforeSignerCall } from '../../gateway/audit-intent.js';
import { identity, tempDir } from '../audit/fixtures.js';

const KEY = '6f1c1f4e-9a53-4c4e-9d0b-3e0b8f7d2a11';
const signer1 = { name: 'signer1', id: 1 };
const signer2 = { name: 'signer2', id: 2 };

async function gatewayLog() {
  const file = path.join(tempDir(), 'gateway.jsonl');
  return { file, log: await AuditLog.open(file, identity('gateway'), { checkpointIntervalMs: 0 }) };
}
const intents = async (file: string) => (await readLog(file)).lines.flatMap((l) => (l.entry.kind === 'intent' ? [l.entry] : []));

describe('write-ahead intents at the gateway', () => {
  it('writes one intent per session, durable before a call that may release leaves', async () => {
    const { file, log } = await gatewayLog();
    const request = new AuditedRequest(log, () => ({ op: 'Sign', principal: { name: 'app' }, keyId: KEY, digest: 'ab'.repeat(32) }));
    await request.run(async () => {
      expect(beforeSignerCall(signer1, signerRoutes.auth.sigv4, { session: 'c0ffee00-0000-4000-8000-000000000000', request: {} }), 'a SigV4 check').toBeUndefined();
      // The commitments release nothing: they go out while the intent is written.
      expect(beforeSignerCall(signer1, signerRoutes.frost.commit, { session: 'session-1', keyId: KEY, signers: [1, 2] })).toBeUndefined();
      expect(beforeSignerCall(signer2, signerRoutes.frost.commit, { session: 'session-1', keyId: KEY, signers: [1, 2] })).toBeUndefined();
      const ready = beforeSignerCall(signer1, signerRoutes.frost.sign, { session: 'session-1', keyId: KEY, package: {} });
      expect(ready).toBeInstanceOf(Promise);
      await ready;
      expect((await intents(file)).map((i) => [i.request, i.op, i.keyId, i.session])).toEqual([['session-1', 'Sign', KEY, 'session-1']]);
      // A cleanup under the key releases nothing and needs no intent; a second session does.
      expect(beforeSignerCall(signer1, signerRoutes.keys.forget, { keyId: KEY })).toBeUndefined();
      await beforeSignerCall(signer2, signerRoutes.rsa.partial, { keyId: KEY, session: 'session-2', request: {} });
    });
    expect((await intents(file)).map((i) => i.request)).toEqual(['session-1', 'session-2']);

    // The outcome names session-2; session-1, which no entry closes, gets a failed one naming whom it asked.
    await request.finish({ request: 'session-2', op: 'Sign', keyId: KEY, outcome: 'ok', output: 'none', startedAt: Date.now() }, { session: 'session-2' });
    await log.close();
    const events = (await readLog(file)).lines.flatMap((l) => (l.entry.kind === 'event' ? [l.entry] : []));
    expect(events.map((e) => [e.request, e.outcome, e.signers?.map((s) => s.name)])).toEqual([
      ['session-1', 'failed', ['signer1', 'signer2']],
      ['session-2', 'ok', undefined],
    ]);
    expect(crossCheck(await readLog(file), []), 'no intent left open').toEqual([]);
  });

  it('writes nothing for calls outside an audited request', async () => {
    const { file, log } = await gatewayLog();
    expect(beforeSignerCall(signer1, signerRoutes.frost.sign, { session: 'session-1', keyId: KEY, package: {} })).toBeUndefined();
    await log.close();
    expect(await intents(file)).toEqual([]);
  });
});
