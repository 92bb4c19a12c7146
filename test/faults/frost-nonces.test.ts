// FROST nonces made ahead of the message are never used twice, also across a crash or a restored
// backup (issue #21): they live only in the signer's memory. A signer killed (-9) with a sign call
// queued or running, then restarted from its directory, refuses a replay of that call naming the
// same nonce; a signer whose directory is restored from a copy taken while the gateway held its
// commitments refuses every nonce made before. The gateway, whose pools still name the old
// nonces, drops them on the first refusal and KMS signing goes on (real processes on loopback;
// the test calls the signers directly with the gateway's identity where it plays the gateway).
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createPublicKey, randomBytes, randomUUID, verify } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { SignCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import type { IdentitySecrets } from '../../contract/identity/identity.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import type { Message } from '../../signers/protocols/common.js';
import { publicPackageSchema } from '../../signers/protocols/dkg.js';
import { frostSigningPackage, type SigningPackage } from '../../signers/protocols/frost.js';
import { copyLiveDir, startCluster, type TestCluster } from '../helpers/cluster.js';
import { killSigner, preprocessedHeld, startSigner } from '../helpers/signer-process.js';
import { appRequest, auditEntries, createKey, gatewayIdentity, kms, publicKeyOf, refusal, signerClients, signUse } from '../policy-cluster/helpers.js';

let tc: TestCluster;
let identity: IdentitySecrets;
let keyId: string;
let publicKey: Uint8Array;
const open: SignerClient[] = [];

const text = (s: string) => new TextEncoder().encode(s);
/** Clients to every signer as the gateway; fresh ones after a restart (no connection to the old process). */
const clients = (): SignerClient[] => {
  const c = signerClients(tc, identity);
  open.push(...c);
  return c;
};
const pidOf = (name: string): number => tc.cluster().signers.find((s) => s.name === name)!.pid;
const preprocess = async (c: SignerClient, count = 1) => (await c.call(signerRoutes.frost.preprocess, { keyId, count })).nonces;
const honestUse = async (message: string) => signUse(text(message), await appRequest(tc, 'TrentService.Sign', { KeyId: keyId, Message: Buffer.from(message).toString('base64'), SigningAlgorithm: 'ED25519_SHA_512' }));

function packageOf(message: string, chosen: SignerClient[], held: { commitment: unknown }[]): SigningPackage {
  const pub = publicPackageSchema.parse(JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${keyId}.json`), 'utf8')).frost);
  const session = randomUUID();
  const commits = chosen.map((c, i): Message => ({ session, round: 1, from: c.id, to: 'all', payload: held[i]!.commitment }));
  return frostSigningPackage(pub, { session, suite: 'ed25519', message: text(message) }, chosen.map((c) => c.id), commits);
}
const signOne = (c: SignerClient, nonce: string, pkg: SigningPackage, use: unknown) => c.call(signerRoutes.frost.signPreprocessed, { session: pkg.session, keyId, nonce, package: pkg, use });

/** `n` KMS signatures of fresh messages, each checked with node:crypto. */
async function kmsSignsAndVerifies(n: number): Promise<void> {
  const app = kms(tc, 'app');
  try {
    for (let i = 0; i < n; i++) {
      const message = randomBytes(32);
      const r = await app.send(new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ED25519_SHA_512' }));
      expect(verify(null, message, createPublicKey({ key: Buffer.from(publicKey), format: 'der', type: 'spki' }), r.Signature!)).toBe(true);
    }
  } finally {
    app.destroy();
  }
}

/** Refusals of a signer's one-round sign that the gateway got (not the test's own `except` sessions): a nonce it no longer holds. */
const staleRefusals = (signer: string, except: string[]) =>
  auditEntries(tc, signer).filter((e) => e.op === 'frost.sign-preprocessed' && e.outcome === 'refused' && !except.includes(String(e.request)) && /no item .* is held here/.test(String(e.reason)));

beforeAll(async () => {
  tc = await startCluster();
  identity = await gatewayIdentity(tc);
  keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  publicKey = await publicKeyOf(tc, keyId);
}, 120_000);

afterAll(async () => {
  for (const c of open) c.close();
  await tc?.destroy();
});

describe('a nonce made ahead is used at most once, across kill -9 and a restored store', () => {
  it('kill -9 with a sign call queued (SIGSTOP) or running: after the restart the replay is refused, and the cluster signs on', async () => {
    await preprocessedHeld(tc, 64);
    const replays: string[] = [];
    for (const stopFirst of [true, false]) {
      const [s1, s2] = clients();
      const held = [(await preprocess(s1!))[0]!, (await preprocess(s2!))[0]!];
      const pkg = packageOf('killed mid-sign', [s1!, s2!], held);
      const use = await honestUse('killed mid-sign');
      if (stopFirst) process.kill(pidOf('signer1'), 'SIGSTOP');
      const inFlight = signOne(s1!, held[0]!.id, pkg, use).then(
        () => 'answered',
        () => 'failed',
      );
      // Queued behind the stop, or a few ms into its handling (read, nonce taken, authorising; or
      // released already — the test plays the gateway here, so its log is not cross-checked).
      await new Promise((r) => setTimeout(r, stopFirst ? 300 : 3));
      await killSigner(tc, 'signer1');
      await inFlight;
      await startSigner(tc, 'signer1');
      const [again] = clients();
      // The same call, with a fresh signature of the client's request: the nonce is gone.
      expect((await refusal(signOne(again!, held[0]!.id, pkg, await honestUse('killed mid-sign')))).code).toBe('not-preprocessed');
      replays.push(pkg.session);
      // The gateway still holds signer1's old commitments: its first use of one is refused, the pools are dropped, the request is served.
      await kmsSignsAndVerifies(6);
    }
    expect(staleRefusals('signer1', replays).length).toBeGreaterThan(0);
    // And refilled: signer1 makes nonce pairs for the gateway again.
    await preprocessedHeld(tc, 16, ['signer1']);
    await kmsSignsAndVerifies(3);
  }, 120_000);

  it('a store restored from a copy taken while the gateway held commitments: every earlier nonce is refused; KMS signs on', async () => {
    const [, s2] = clients();
    await preprocessedHeld(tc, 16, ['signer2']);
    const before = await preprocess(s2!, 8);
    const dir = path.join(tc.dir, 'signers', 'signer2');
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-signer-copy-'));
    try {
      copyLiveDir(dir, path.join(tmp, 'signer2'));
      await killSigner(tc, 'signer2');
      rmSync(dir, { recursive: true, force: true });
      cpSync(path.join(tmp, 'signer2'), dir, { recursive: true });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    await startSigner(tc, 'signer2');
    const [s1, again] = clients();
    const sessions: string[] = [];
    for (const old of before) {
      const pkg = packageOf('restored', [s1!, again!], [(await preprocess(s1!))[0]!, old]);
      sessions.push(pkg.session);
      expect((await refusal(signOne(again!, old.id, pkg, await honestUse('restored')))).code).toBe('not-preprocessed');
    }
    await kmsSignsAndVerifies(6);
    expect(staleRefusals('signer2', sessions).length).toBeGreaterThan(0);
  }, 120_000);
});
