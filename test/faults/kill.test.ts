// kill -9 at random points (issue #18): 20 trials on one 2-of-3 cluster, each SIGKILLing a
// signer, the gateway or both inside a Sign, CreateKey, RefreshKeyShares or ScheduleKeyDeletion
// (test/faults/harness.ts), restarting the cluster in place, and checking that everything
// acknowledged is still there: released signatures verify, created keys are listed and sign,
// refreshed keys sign with their public key, scheduled deletions stand — and, once the window
// ends (libfaketime), deleted keys are gone at every holder. Whether `audit verify` finds no
// tampering, whether any share is orphaned, and whether interrupted proposals complete are
// collected per trial and asserted at the end, naming each trial. A failure message names the
// seed and trial: MPCHSM_FAULT_SEED=… MPCHSM_FAULT_TRIALS=… replays it.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListKeysCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster } from '../helpers/cluster.js';
import { failure, kms } from '../policy-cluster/helpers.js';
import { describePlan, FaultCluster, OPERATIONS, planTrial, runSeed, settle, trialIndices, verifies, type Operation, type Spec } from './harness.js';

const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const TRIALS = 20;
const seed = runSeed();

let fc: FaultCluster;
/** How long each operation takes unharmed: the kill comes within 1.2 times that. */
const span: Record<Operation, number> = { sign: 0, create: 0, refresh: 0, delete: 0 };
/** Per trial: audit verify's tampering findings, share inventory differences, re-approvals refused. */
const findings = { audit: [] as string[], shares: [] as string[], proposals: [] as string[] };
/** Findings seen after earlier trials (they persist): each trial is charged only with those it added. */
const seen = new Set<string>();
const added = (items: string[]): string[] => {
  const fresh = items.filter((i) => !seen.has(i));
  for (const i of fresh) seen.add(i);
  return fresh;
};

const timed = async <T>(op: Operation, f: () => Promise<T>): Promise<T> => {
  const started = Date.now();
  const out = await f();
  span[op] = Math.max(span[op], Date.now() - started);
  return out;
};

/** A key that signs after the restart, verifying against the public key it had before. */
async function expectSigns(keyId: string, where: string): Promise<void> {
  const k = fc.ledger.keys.get(keyId)!;
  const r = await settle(fc.sign(keyId), 30_000);
  expect(r.ok ? undefined : r.error, `${where}: ${keyId} signs`).toBeUndefined();
  if (r.ok) expect(verifies(k, r.value.message, r.value.signature), `${where}: ${keyId}'s signature verifies`).toBe(true);
}

beforeAll(async () => {
  console.log(`kill -9 suite: seed ${seed} (MPCHSM_FAULT_SEED=${seed} replays this run)`);
  fc = new FaultCluster(await startCluster());
  const specs: Spec[] = ['ECC_NIST_EDWARDS25519', 'ECC_NIST_P256', 'ECC_NIST_EDWARDS25519'];
  for (const spec of specs) await timed('create', () => fc.createKey(spec));
  for (const id of fc.ledger.keys.keys()) await fc.publicKey(id);
  const first = fc.ledger.live()[0]!;
  await timed('sign', () => Promise.all(Array.from({ length: 4 }, () => fc.sign(first))));
  await timed('refresh', () => fc.refresh(first));
  const doomed = await fc.createKey('ECC_NIST_EDWARDS25519');
  await fc.proposeDeletion(doomed);
  const d = await timed('delete', () => fc.approveDeletion(doomed));
  expect(d.ok, d.answer).toBe(true);
  console.log(`kill -9 suite: unharmed spans (ms) ${JSON.stringify(span)}`);
}, 300_000);

afterAll(() => fc?.tc.destroy(), 120_000);

describe('SIGKILL inside an operation, then a restart: nothing acknowledged is lost', () => {
  for (const index of trialIndices(TRIALS)) {
    it(`trial ${index}: ${OPERATIONS[index % OPERATIONS.length]}`, async () => {
      const plan = planTrial(seed, index, span);
      const where = describePlan(seed, plan);
      const live = fc.ledger.live();
      const pickLive = (n: number) => live[(index + n) % live.length]!;
      let work: () => Promise<unknown>;
      let touched: string[] = [];
      let deleting: string | undefined;
      if (plan.op === 'sign') {
        touched = [pickLive(0), pickLive(1)];
        work = () => Promise.all(touched.flatMap((k) => [settle(fc.sign(k), 30_000), settle(fc.sign(k), 30_000)]));
      } else if (plan.op === 'create') {
        const before = new Set(fc.ledger.keys.keys());
        work = async () => {
          const r = await settle(fc.createKey(index % 8 < 4 ? 'ECC_NIST_EDWARDS25519' : 'ECC_NIST_P256'), 60_000);
          touched = [...fc.ledger.keys.keys()].filter((k) => !before.has(k));
          return r;
        };
      } else if (plan.op === 'refresh') {
        touched = [pickLive(0)];
        work = () => settle(fc.refresh(touched[0]!), 60_000);
      } else {
        deleting = await fc.createKey('ECC_NIST_EDWARDS25519');
        await fc.publicKey(deleting);
        await fc.proposeDeletion(deleting);
        work = () => settle(fc.approveDeletion(deleting!), 60_000);
      }

      const released = fc.ledger.released.length;
      const outcome = work();
      await sleep(plan.delayMs);
      fc.kill(plan.victims);
      const answer = JSON.stringify(await outcome);
      const context = `${where}; the operation answered ${answer.slice(0, 600)}`;
      // Every signature released, during the kill too, verifies against its key.
      for (const r of fc.ledger.released.slice(released)) expect(verifies(fc.ledger.keys.get(r.keyId)!, r.message, r.signature), `${context}: a released signature of ${r.keyId}`).toBe(true);

      await fc.restart();

      for (const keyId of touched) {
        await fc.publicKey(keyId); // a key acknowledged as created has a public key
        expect(await fc.keyState(keyId), context).toBe('Enabled');
        await expectSigns(keyId, context);
      }
      if (plan.op === 'create' && touched.length > 0) {
        const listed = (await kms(fc.tc, 'admin1').send(new ListKeysCommand({ Limit: 1000 }))).Keys!.map((k) => k.KeyId);
        expect(listed, `${context}: the created key is listed`).toEqual(expect.arrayContaining(touched));
      }
      if (deleting) {
        const k = fc.ledger.keys.get(deleting)!;
        const state = await fc.keyState(deleting);
        if (k.deletionAcknowledged) expect(state, `${context}: an acknowledged deletion stands`).toBe('PendingDeletion');
        else if (state === 'PendingDeletion') k.deletionAcknowledged = true; // executed; only the answer was lost
        else {
          // Interrupted before it executed: approving again completes it.
          const again = await fc.approveDeletion(deleting);
          if (!again.ok) findings.proposals.push(`${where}: approving the interrupted deletion of ${deleting} again: ${again.answer.slice(0, 400)}`);
        }
        if (k.deletionAcknowledged) expect((await failure(fc.sign(deleting))).name, `${context}: a key pending deletion does not sign`).toBe('KMSInvalidStateException');
      }

      const verify = await fc.auditVerify();
      if (verify.code !== 0) {
        const lines = verify.out.trim().split('\n');
        const findingLines = lines.filter((l) => /^\s+\S+ entry \d+: \[/.test(l));
        const fresh = added(findingLines);
        // Findings never clear: a trial is charged with those it added, or with the whole answer if it has none to parse.
        if (fresh.length > 0 || findingLines.length === 0) findings.audit.push(`${where}: audit verify exited ${verify.code}:\n${(fresh.length > 0 ? fresh : lines.slice(-6)).join('\n')}`);
      }
      const shares = fc.shareInventory();
      const orphans = added(shares.orphans.map((o) => `orphan share ${o}`));
      const missing = added(shares.missing.map((m) => `missing share ${m}`));
      if (orphans.length + missing.length > 0) findings.shares.push(`${where}: ${[...orphans, ...missing].join(', ')}`);
    }, 180_000);
  }
});

describe('after every trial', () => {
  it('every acknowledged key still signs and every released signature verifies', async () => {
    for (const keyId of fc.ledger.live()) await expectSigns(keyId, `seed ${seed}, after all trials`);
    for (const r of fc.ledger.released) expect(verifies(fc.ledger.keys.get(r.keyId)!, r.message, r.signature)).toBe(true);
  }, 180_000);

  it('audit verify found no tampering after any crash (interrupted requests are information)', () => {
    expect(findings.audit, findings.audit.join('\n\n')).toEqual([]);
  });

  it('no share is orphaned or missing after recovery (creations completed or rolled back)', () => {
    expect(findings.shares, findings.shares.join('\n')).toEqual([]);
  });

  it('an interrupted deletion proposal completes when approved again', () => {
    expect(findings.proposals, findings.proposals.join('\n')).toEqual([]);
  });

  it.skipIf(!existsSync(FAKETIME))('once the deletion window ends, deleted keys are gone at the gateway and every holder, and stay gone, a crash in the sweep notwithstanding', async () => {
    const deleted = [...fc.ledger.keys].filter(([, k]) => k.deletionAcknowledged).map(([id]) => id);
    expect(deleted.length).toBeGreaterThan(0);
    const keyFile = (id: string) => path.join(fc.tc.dir, 'gateway', 'keys', `${id}.json`);
    const env = { ...process.env, LD_PRELOAD: FAKETIME, FAKETIME: '+8d', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
    // Eight days on, the gateway's sweep starts at once; the gateway and a signer die inside it.
    const plan = planTrial(seed, TRIALS, { ...span, delete: 1000 });
    const victims = ['gateway', plan.victims.find((v) => v !== 'gateway') ?? 'signer1'] as const;
    const where = `seed ${seed}, the sweep at the window's end: SIGKILL ${victims.join('+')} ${plan.delayMs} ms after start`;
    await fc.restart(env);
    await sleep(plan.delayMs);
    fc.kill(victims);
    await fc.restart(env);
    for (let i = 0; i < 150 && deleted.some((id) => existsSync(keyFile(id))); i++) await sleep(200);
    for (const id of deleted) expect(existsSync(keyFile(id)), `${where}: the gateway's record of ${id}`).toBe(false);
    const { orphans } = fc.shareInventory();
    for (const id of deleted) expect(orphans.filter((o) => o.endsWith(id)), `${where}: shares of ${id}`).toEqual([]);
    // Back to the real clock: the deleted keys are unknown, the others sign.
    await fc.restart();
    for (const id of deleted) expect((await failure(fc.keyState(id))).name).toBe('NotFoundException');
    for (const keyId of fc.ledger.live()) await expectSigns(keyId, `seed ${seed}, after the deletion window`);
  }, 240_000);
});
