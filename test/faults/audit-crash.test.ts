// The audit after a crash: the gateway is killed (-9) while Sign requests are in flight, several
// times at random moments, and restarted. `mpchsm audit verify` then passes, reporting the
// requests the gateway never finished as interrupted (information), never as tampering. What
// stays an error: a signer's partial that no gateway intent or entry explains (a lying gateway
// ran the session behind its own log's back), and the gateway log's last entry cut off once a
// signer anchored it.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { SignCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayAuditPath, signerAuditPath } from '../../audit/paths.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { appRequest, createKey, frostSession, gatewayIdentity, kms, signUse, signerClients } from '../policy-cluster/helpers.js';

const TRIALS = 4;
const CLIENTS = 8;
let tc: TestCluster;
const keys = { ed: '', ec: '' };

const verify = () => tc.mpchsmStatus('audit', 'verify', '--dir', tc.dir);

const lines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter(Boolean);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sign requests from `CLIENTS` clients, back to back, until the gateway stops answering. */
function load(): { signed: () => number; done: Promise<void> } {
  const client = kms(tc, 'app');
  let signed = 0;
  const loop = async (i: number) => {
    const [KeyId, SigningAlgorithm] = i % 2 === 0 ? [keys.ed, 'ED25519_SHA_512' as const] : [keys.ec, 'ECDSA_SHA_256' as const];
    for (;;) {
      try {
        await client.send(new SignCommand({ KeyId, Message: randomBytes(32), MessageType: 'RAW', SigningAlgorithm }));
        signed++;
      } catch {
        return;
      }
    }
  };
  const done = Promise.all(Array.from({ length: CLIENTS }, (_, i) => loop(i))).then(() => client.destroy());
  return { signed: () => signed, done };
}

beforeAll(async () => {
  tc = await startCluster();
  keys.ed = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  keys.ec = await createKey(tc, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
}, 180_000);

afterAll(async () => {
  await tc?.destroy();
});

describe('the audit after the gateway is killed mid-request', () => {
  it('passes, reporting the unfinished requests as interrupted information', async () => {
    let interrupted = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const running = load();
      // Under way (the first requests after a start are slow), then killed at a random moment.
      for (let i = 0; i < 200 && running.signed() < CLIENTS; i++) await sleep(100);
      await sleep(Math.random() * 500);
      process.kill(tc.cluster().gateway.pid, 'SIGKILL');
      await running.done;
      expect(running.signed(), `trial ${trial}: signatures before the kill`).toBeGreaterThan(0);
      await tc.down();
      await tc.up();
      const r = await verify();
      expect(r.code, `trial ${trial}:\n${r.out}`).toBe(0);
      expect(r.out).not.toMatch(/FAILED/);
      interrupted = (r.out.match(/\[interrupted\]/g) ?? []).length;
    }
    // Each kill caught some request between its intent and its outcome (the counts accumulate).
    expect(interrupted, 'interrupted requests reported after the kills').toBeGreaterThan(0);
    const r = await verify();
    expect(r.out).toMatch(/\(info\) gateway entry \d+: \[interrupted\] request [0-9a-f-]+: the gateway recorded its intent, Sign of key/);
    expect(r.out).toMatch(/interrupted requests? \(information\)/);
  }, 240_000);

  it('still fails a partial the gateway took with no intent or entry of its own', async () => {
    const signers: SignerClient[] = signerClients(tc, await gatewayIdentity(tc));
    try {
      const message = Buffer.from('behind the log');
      const evidence = await appRequest(tc, 'TrentService.Sign', { KeyId: keys.ed, Message: message.toString('base64'), SigningAlgorithm: 'ED25519_SHA_512' });
      await frostSession(tc, signers.slice(0, 2), keys.ed, message, signUse(message, evidence));
    } finally {
      for (const c of signers) c.close();
    }
    const r = await verify();
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/signer1 entry \d+: \[missing-gateway-entry\] request [0-9a-f-]+: signer1 produced a partial, but the gateway's log has no entry for this request/);
  }, 60_000);

  it("names the gateway log's last entry cut off once the signers anchored it", async () => {
    await kms(tc, 'app').send(new SignCommand({ KeyId: keys.ed, Message: Buffer.from('last words'), SigningAlgorithm: 'ED25519_SHA_512' }));
    const file = gatewayAuditPath(tc.dir);
    // A quiet moment: within about a second every signer records the gateway's head.
    const lastSeq = () => (JSON.parse(lines(file).at(-1)!) as { seq: number }).seq;
    const anchored = (s: string) =>
      lines(signerAuditPath(tc.dir, s))
        .map((l) => JSON.parse(l) as { request?: string; heads?: { seq: number }[] })
        .filter((e) => e.request === 'audit-anchor')
        .some((e) => e.heads?.[0]?.seq === lastSeq());
    for (let i = 0; i < 50 && !['signer1', 'signer2', 'signer3'].every(anchored); i++) await sleep(100);
    expect(['signer1', 'signer2', 'signer3'].every(anchored), 'every signer anchored the last entry').toBe(true);
    // Frozen there (no closing checkpoint), then its last line cut.
    process.kill(tc.cluster().gateway.pid, 'SIGKILL');
    const seq = lastSeq();
    writeFileSync(file, lines(file).slice(0, -1).map((l) => `${l}\n`).join(''));
    const r = await verify();
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(new RegExp(`gateway entry ${seq}: \\[truncated\\] ${file.replaceAll('.', '\\.')} ends at seq ${seq - 1}, but signer\\d \\(entry \\d+\\) recorded its entry ${seq}`));
  }, 60_000);
});
