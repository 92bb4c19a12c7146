// The signers a signer awaits under require_attestation (signers/node/guard/peers.ts), changed
// by founders answering its credentials at once: every answer counts, in memory and sealed. Each
// change used to write the list less its own founder, computed before the other's write landed,
// so the last write brought the other founder back, awaited for ever.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { toHex } from '../../contract/bytes.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import { activated, awaitingActivation } from '../../signers/node/guard/peers.js';
import { AWAITING_ACTIVATION, type GuardState } from '../../signers/node/guard/state.js';

let root: string;
let store: ShareStore;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'mpchsm-awaiting-'));
  store = await ShareStore.init(path.join(root, 'store'), 'operator secret for tests', { scrypt: { N: 2 ** 10, r: 8, p: 1 } });
});
afterEach(async () => {
  store.close();
  await rm(root, { recursive: true, force: true });
});

it('founders answering at once are all taken off the list, which is sealed as it is held', async () => {
  const founders = [2, 3, 4, 5].map((id) => ({ id, name: `signer${id}` }));
  const target = (id: number) => ({ id, ekPublic: toHex(randomBytes(8)), akPublic: toHex(randomBytes(8)) });
  // Only what peers.ts reads of a guard's state.
  const s = { store, self: { peers: founders }, admittedPeers: [], retiredIds: new Set<number>(), awaitingActivation: founders.map((f) => target(f.id)) } as unknown as GuardState;
  await Promise.all(['signer2', 'signer4', 'signer5'].map((name) => activated(s, name)));
  expect(s.awaitingActivation.map((a) => a.id)).toEqual([3]);
  expect(awaitingActivation(s, 'signer2')).toBeUndefined();
  expect(awaitingActivation(s, 'signer3')?.peer.name).toBe('signer3');
  const sealed = JSON.parse(Buffer.from((await store.get(AWAITING_ACTIVATION))!).toString('utf8')) as { id: number }[];
  expect(sealed.map((a) => a.id)).toEqual([3]);
});
