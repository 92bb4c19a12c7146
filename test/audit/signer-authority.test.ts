// The signers' chains are the authority in the cross-check: entries a compromised gateway
// appends to its own log can agree with what a signer did, never re-describe or explain it.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../audit/log.js';
import { crossCheck } from '../../audit/crosscheck.js';
import { readLog } from '../../audit/verify.js';
import type { AuditEventInput, Head } from '../../audit/entry.js';
import { DIGEST, identity, signEvent, tempDir } from './fixtures.js';

const ids = { gateway: identity('gateway'), signer1: identity('signer1'), signer2: identity('signer2') };
type Signer = 'signer1' | 'signer2';
const KEY = '6f1c1f4e-9a53-4c4e-9d0b-3e0b8f7d2a11';
const OTHER_KEY = '0d4c6a62-31a5-4a8e-8a43-58b1f54f1b7e';
const EVIDENCE = 'cd'.repeat(32);

/** A signer's entry for an act, with what it read from the evidence itself. */
const signerEvent = (request: string, extra: Partial<AuditEventInput> = {}): AuditEventInput =>
  signEvent(request, {
    op: 'frost.sign',
    operation: 'Sign',
    principal: { name: 'app' },
    keyRef: 'alias/release',
    evidenceHash: EVIDENCE,
    caller: ids.gateway.fingerprint,
    output: 'partial',
    ...extra,
  });

async function cluster() {
  const dir = tempDir();
  const file = (n: keyof typeof ids) => path.join(dir, `${n}.jsonl`);
  const logs = {
    gateway: await AuditLog.open(file('gateway'), ids.gateway),
    signer1: await AuditLog.open(file('signer1'), ids.signer1),
    signer2: await AuditLog.open(file('signer2'), ids.signer2),
  };
  /** The signers act and log first; the gateway's entry (if any) names them with their heads. */
  async function act(request: string, opts: { signer?: Partial<AuditEventInput>; gateway?: Partial<AuditEventInput> | false; at?: Signer[] } = {}) {
    const at = opts.at ?? ['signer1', 'signer2'];
    const heads = new Map<Signer, Head>();
    for (const s of at) heads.set(s, await logs[s].append(signerEvent(request, opts.signer)));
    if (opts.gateway === false) return undefined;
    return logs.gateway.append(signEvent(request, { signers: at.map((name, i) => ({ name, id: i + 1, entry: heads.get(name)! })), ...opts.gateway }));
  }
  /** Change `n` as the gateway records forwarding it and each signer records applying it. */
  async function change(n: number, opts: { signer?: Partial<AuditEventInput>; gateway?: Partial<AuditEventInput> | false; at?: Signer[] } = {}) {
    const base = { operation: 'PutKeyPolicy', principal: { name: 'admin1' }, keyId: KEY, outcome: 'ok' as const, output: 'none' as const, startedAt: Date.now() };
    const g = opts.gateway === false ? undefined : await logs.gateway.append({ request: `change-${n}`, op: 'change.PutKeyPolicy', ...base, signers: [{ name: 'signer1' }, { name: 'signer2' }], ...opts.gateway });
    for (const s of opts.at ?? ['signer1', 'signer2'])
      await logs[s].append({ request: `change-${n}`, op: 'policy.PutKeyPolicy', ...base, keyRef: KEY, evidenceHash: EVIDENCE, policy: { version: 1, approvals: ['admin1', 'admin2'] }, ...opts.signer });
    return g;
  }
  const check = async () => {
    for (const l of Object.values(logs)) await l.close();
    const [gateway, ...signers] = await Promise.all((['gateway', 'signer1', 'signer2'] as const).map((n) => readLog(file(n))));
    return crossCheck(gateway!, signers);
  };
  return { logs, act, change, check };
}

const errors = (fs: Awaited<ReturnType<Awaited<ReturnType<typeof cluster>>['check']>>) => fs.filter((f) => f.severity === 'error');

describe('the signers are the authority in the cross-check', () => {
  it('honest chains pass: Sign, an abandoned session, Decrypt, key creation, an RSA partial given twice, a resharing resumed after a failure, changes', async () => {
    const c = await cluster();
    await c.act('sign-1');
    // A session the gateway gave up (a bad partial, a signer down), recorded beside the request that went on.
    await c.act('abandoned-1', { gateway: { outcome: 'failed', reason: 'session abandoned; the request went on as session sign-1', output: 'none' } });
    await c.act('decrypt-1', { signer: { op: 'rsa.partial', operation: 'Decrypt', algorithm: 'RSAES_OAEP_SHA_256' }, gateway: { op: 'Decrypt', output: 'plaintext', algorithm: 'RSAES_OAEP_SHA_256' } });
    // A key made under quorum: the signers name the proposer, the gateway's entry the approver who completed it.
    const created = { operation: 'CreateKey', op: 'dkg.step', output: 'key' as const, principal: { name: 'admin1' }, digest: undefined, keyRef: undefined };
    await c.act('create-1', { signer: created, gateway: { op: 'CreateKey', output: 'key', principal: { name: 'admin2' }, digest: undefined, detail: { proposal: 'p-1' } } });
    // signer1's RSA partial of the same input, given again on a retry.
    await c.logs.signer1.append(signerEvent('decrypt-1', { op: 'rsa.partial', operation: 'Decrypt' }));
    const adopt = { op: 'reshare.adopt', operation: 'ReshareKey', output: 'key' as const, principal: undefined, digest: undefined, keyRef: undefined, evidenceHash: undefined };
    const reshare = { op: 'ReshareKey', output: 'key' as const, principal: { name: 'gateway' }, digest: undefined };
    await c.logs.gateway.append(signEvent('reshare-1', { ...reshare, outcome: 'failed', reason: 'signer2 was down', output: 'none' }));
    await c.act('reshare-1', { signer: adopt, gateway: { ...reshare, detail: { resumed: true } } });
    await c.change(1);
    // One signer was down and applies the change later; one refuses it.
    await c.change(2, { at: ['signer1'] });
    await c.logs.signer2.append({ request: 'change-2', op: 'policy.apply', outcome: 'refused', reason: 'access denied', output: 'none', startedAt: Date.now() });
    expect(await c.check()).toEqual([]);
  });

  it('a gateway entry that misreports the key of a signer release is a finding naming what the signer did', async () => {
    const c = await cluster();
    const g = await c.act('sign-1', { gateway: { keyId: OTHER_KEY } });
    const fs = await c.check();
    expect(fs.map((f) => [f.party, f.seq, f.code])).toEqual([
      ['gateway', g!.seq, 'misreported'],
      ['gateway', g!.seq, 'misreported'],
    ]);
    expect(fs[0]!.message).toBe(
      `request sign-1: signer1 signed with key ${KEY} for principal app (message SHA-256 ${DIGEST.slice(0, 16)}…) at 2025-01-01T00:00:00.000Z (its entry 2); ` +
        `the gateway's log says Sign of key ${OTHER_KEY} for principal app (SHA-256 ${DIGEST.slice(0, 16)}…), ok (entry ${g!.seq}) — the key differs`,
    );
  });

  it('a gateway entry that misreports the principal, the digest or the operation is a finding', async () => {
    const c = await cluster();
    await c.act('sign-1', { gateway: { principal: { name: 'auditor', source: '127.0.0.1:1' } } });
    await c.act('sign-2', { gateway: { digest: 'ef'.repeat(32) } });
    await c.act('sign-3', { gateway: { op: 'Decrypt', output: 'plaintext' } });
    const fs = await c.check();
    expect(errors(fs).map((f) => f.message.replace(/^request (\S+):.* — (.*)$/, '$1: $2'))).toEqual([
      'sign-1: the principal differs',
      'sign-1: the principal differs',
      'sign-2: the digest differs',
      'sign-2: the digest differs',
      'sign-3: the operation differs',
      'sign-3: the operation differs',
    ]);
    expect(fs[0]!.message).toContain("signer1 signed with key 6f1c1f4e-9a53-4c4e-9d0b-3e0b8f7d2a11 for principal app");
    expect(fs[0]!.message).toContain("the gateway's log says Sign of key 6f1c1f4e-9a53-4c4e-9d0b-3e0b8f7d2a11 for principal auditor");
  });

  it('a cover entry appended later does not make a misreported signer operation pass', async () => {
    const c = await cluster();
    const lie = await c.act('sign-1', { gateway: { keyId: OTHER_KEY, principal: { name: 'admin1' } } });
    // A truthful-looking Sign entry for the same request, and a repair-sweep resharing naming both signers.
    const names = [{ name: 'signer1' }, { name: 'signer2' }];
    const truthful = await c.logs.gateway.append(signEvent('sign-1', { signers: names }));
    const repair = await c.logs.gateway.append(signEvent('sign-1', { op: 'ReshareKey', output: 'key', principal: { name: 'gateway' }, digest: undefined, signers: names, detail: { repair: true } }));
    const fs = errors(await c.check());
    expect(fs.map((f) => [f.seq, f.code])).toEqual([
      [lie!.seq, 'misreported'],
      [lie!.seq, 'misreported'],
      // The resharing it claims: no signer recorded a key share for this request.
      [repair.seq, 'signer-refused'],
      [repair.seq, 'signer-refused'],
      [repair.seq, 'misreported'],
      [repair.seq, 'misreported'],
    ]);
    expect(fs[0]!.message).toMatch(/— the key and principal differ$/);
    expect(fs[4]!.message).toMatch(/the gateway's log says ReshareKey of key .* for principal gateway.* — the operation, principal and digest differ$/);
    expect(fs.some((f) => f.seq === truthful.seq)).toBe(false);
  });

  it('a signer operation the gateway omitted is not explained by an entry about something else', async () => {
    const c = await cluster();
    await c.act('sign-1', { gateway: false, at: ['signer2'] });
    const cover = await c.logs.gateway.append(
      signEvent('sign-1', { op: 'AdmitSigner', output: 'none', principal: { name: 'admin1' }, keyId: undefined, digest: undefined, signers: [{ name: 'signer2' }] }),
    );
    const fs = errors(await c.check());
    expect(fs.map((f) => [f.party, f.seq, f.code])).toEqual([['gateway', cover.seq, 'misreported']]);
    expect(fs[0]!.message).toMatch(/signer2 signed with key .* for principal app .*; the gateway's log says AdmitSigner of key \(none\) for principal admin1.* — the operation, key, principal and digest differ$/);
  });

  it('an invented gateway entry with no signer operation behind it is a finding', async () => {
    const c = await cluster();
    await c.act('sign-1');
    const invented = await c.logs.gateway.append(signEvent('sign-2', { signers: [{ name: 'signer1' }, { name: 'signer2' }] }));
    const alone = await c.logs.gateway.append(signEvent('sign-3'));
    const fs = errors(await c.check());
    expect(fs.map((f) => [f.seq, f.code])).toEqual([
      [invented.seq, 'missing-signer-entry'],
      [invented.seq, 'missing-signer-entry'],
      [alone.seq, 'missing-signer-entry'],
    ]);
    expect(fs[0]!.message).toBe("request sign-2: the gateway released a signature naming signer signer1, but signer1's log has no entry for this request");
  });

  it('entries from before signers recorded the operation are still held to their key and principal', async () => {
    const c = await cluster();
    const old = { operation: undefined, keyRef: undefined, evidenceHash: undefined };
    await c.act('sign-1', { signer: old });
    await c.act('sign-2', { signer: old, gateway: { keyId: OTHER_KEY } });
    const fs = errors(await c.check());
    expect(fs.map((f) => f.code)).toEqual(['misreported', 'misreported']);
    expect(fs[0]!.message).toMatch(/^request sign-2: signer1 produced a partial for key .* — the key differs$/);
  });

  it('a change a signer applied must be the one the gateway recorded forwarding, and every forwarded change must reach a signer', async () => {
    const c = await cluster();
    const lie = await c.change(1, { gateway: { op: 'change.DisableKey', operation: 'DisableKey', keyId: OTHER_KEY } });
    await c.change(2, { gateway: false, signer: { operation: 'EnableKey', op: 'policy.EnableKey', principal: { name: 'admin2' }, detail: { onGatewayWord: true } } });
    const invented = await c.change(3, { at: [] });
    const fs = errors(await c.check());
    expect(fs.map((f) => [f.party, f.code])).toEqual([
      ['gateway', 'misreported'],
      ['gateway', 'misreported'],
      ['gateway', 'missing-signer-entry'],
      ['signer1', 'missing-gateway-entry'],
      ['signer2', 'missing-gateway-entry'],
    ]);
    expect(fs[0]!.seq).toBe(lie!.seq);
    expect(fs[0]!.message).toMatch(/^request change-1: signer1 applied PutKeyPolicy to key \S+ for principal admin1 at .*; the gateway's log says DisableKey of key \S+ for principal admin1, ok .* — the operation and key differ$/);
    expect(fs[2]).toMatchObject({ seq: invented!.seq, message: `request change-3: the gateway recorded forwarding PutKeyPolicy of key ${KEY}, but no signer's log has an entry for it` });
    expect(fs[3]!.message).toMatch(/^request change-2: signer1 applied EnableKey, but the gateway's log has no entry for this request: signer1 applied EnableKey to key \S+ for principal admin2 \(on the gateway's word\) at /);
  });
});
