// Refreshing a key's shares (issue #7) on a real cluster: MpcHsm.RefreshKeyShares / `mpchsm key
// refresh` reshares an Ed25519, P-256 or RSA key to its holders — new share bytes, the same
// public key, fresh ECDSA pairwise setups — as a key administrator's operation, one at a time. A
// signer answers a repeated adopt as done, and a resharing the gateway left between its adopts
// (journaled) is finished when the gateway starts again.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relayRounds } from '../../gateway/relay.js';
import type { SignerClient } from '../../gateway/signer-client.js';
import { canonicalJson } from '../../contract/canonical.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { decodeRecord, encodeShareRecord } from '../../signers/node/key-records.js';
import { decodeSecretful } from '../../signers/protocols/common.js';
import { ecdsaDiscardPair, type EcdsaKeyShare } from '../../signers/protocols/ecdsa/index.js';
import { resharePublicPackage, type ReshareKeyShare } from '../../signers/protocols/reshare.js';
import type { TestCluster } from '../helpers/cluster.js';
import { appRequest, auditEntries, createKeyTrio, gatewayCall, publicKeyOf, refusal, signerRecord, signsAndVerifies, startWithSigners, stopWithSigners } from './helpers.js';

let tc: TestCluster;
let signers: SignerClient[];
const keys: Record<'ed' | 'ec' | 'rsa', string> = { ed: '', ec: '', rsa: '' };
const publicKeys: Record<string, Uint8Array> = {};
/** The Ed25519 key's public package before any refresh. */
let firstEdPackage: unknown;
const msg = Buffer.from('signed after a refresh');

/** A signer's stored share of a key, decoded as the signer decodes it. */
const heldOf = (stored: Uint8Array) => (decodeRecord(stored) as { ec: ReshareKeyShare }).ec;
/** The record's bytes, as text to compare (secrets raw, latin1). */
const shareOf = (signer: string, keyId: string) => signerRecord(tc, signer, async (s) => Buffer.from((await s.get(`key.${keyId}`))!).toString('latin1'));
/** The public package of a signer's stored share, canonical JSON. */
const packageOf = (stored: string): string => canonicalJson(resharePublicPackage(heldOf(Buffer.from(stored, 'latin1'))));
const keyRecord = (keyId: string) => JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${keyId}.json`), 'utf8')) as { holders: number[]; frost?: unknown; ecdsa?: unknown };
const journalFile = (keyId: string) => path.join(tc.dir, 'gateway', 'reshare-journal', `${keyId}.json`);
const refresh = (as: string, keyId: string) => gatewayCall(tc, as, 'MpcHsm.RefreshKeyShares', { KeyId: keyId });

const signAndVerify = (keyId: string, algorithm: 'ED25519_SHA_512' | 'ECDSA_SHA_256' | 'RSASSA_PSS_SHA_256') => signsAndVerifies(tc, keyId, publicKeys[keyId]!, algorithm, msg);

/** Edits a stopped signer's sealed store. */
async function withSignerStore(signer: string, edit: (store: ShareStore) => Promise<void>): Promise<void> {
  const store = await ShareStore.open(path.join(tc.dir, 'signers', signer, 'store'), readFileSync(path.join(tc.dir, 'operators', `${signer}.secret`), 'utf8'));
  try {
    await edit(store);
  } finally {
    store.close();
  }
}

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  const made = await createKeyTrio(tc);
  Object.assign(keys, made.keys);
  Object.assign(publicKeys, made.publicKeys);
  firstEdPackage = keyRecord(keys.ed).frost;
}, 240_000);

afterAll(() => stopWithSigners(tc, signers));

describe('RefreshKeyShares', () => {
  it('gives every holder new share bytes of the same key, Ed25519 through `mpchsm key refresh`, P-256 through the API', async () => {
    const before: Record<string, string> = {};
    for (const s of ['signer1', 'signer2', 'signer3']) for (const k of [keys.ed, keys.ec]) before[`${s}/${k}`] = await shareOf(s, k);
    const cli = JSON.parse((await tc.mpchsm('key', 'refresh', keys.ed, '--as', 'admin1', '--dir', tc.dir, '--json')).stdout);
    expect(cli).toEqual({ KeyId: keys.ed, Holders: [1, 2, 3] });
    const api = await refresh('admin2', keys.ec);
    expect(api.status, JSON.stringify(api.body)).toBe(200);
    expect(api.body).toEqual({ KeyId: keys.ec, Holders: [1, 2, 3] });
    for (const s of ['signer1', 'signer2', 'signer3'])
      for (const k of [keys.ed, keys.ec]) {
        const after = await shareOf(s, k);
        expect(after, `${s}'s share of ${k}`).not.toBe(before[`${s}/${k}`]);
        expect(heldOf(Buffer.from(after, 'latin1')).participants).toEqual([1, 2, 3]);
        expect(packageOf(after), `${s}'s package of ${k} is the gateway's`).toBe(canonicalJson(keyRecord(k)[k === keys.ed ? 'frost' : 'ecdsa']));
      }
    for (const id of [keys.ed, keys.ec]) expect(await publicKeyOf(tc, id)).toEqual(publicKeys[id]);
    expect(await signAndVerify(keys.ed, 'ED25519_SHA_512')).toBe(true);
    expect(await signAndVerify(keys.ec, 'ECDSA_SHA_256')).toBe(true);
    expect(existsSync(journalFile(keys.ec))).toBe(false);
  }, 120_000);

  it('is one gateway audit entry per refresh, releasing the key with every holder, which cross-checks', async () => {
    const gw = auditEntries(tc, 'gateway').filter((e) => e.op === 'RefreshKeyShares' && e.outcome === 'ok');
    for (const [k, who] of [[keys.ed, 'admin1'], [keys.ec, 'admin2']] as const) {
      const mine = gw.filter((e) => e.keyId === k);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ output: 'key', principal: { name: who } });
      expect((mine[0]!.signers as { name: string }[]).map((s) => s.name)).toEqual(['signer1', 'signer2', 'signer3']);
      expect(mine[0]!.request).toBe(mine[0]!.session);
    }
    expect((await tc.mpchsm('audit', 'verify', '--dir', tc.dir)).stdout).not.toMatch(/error/i);
  });

  it('refreshes an RSA key too: new shares and verification keys at every holder, the same modulus', async () => {
    const before = await Promise.all(['signer1', 'signer2', 'signer3'].map((s) => shareOf(s, keys.rsa)));
    const r = await refresh('admin1', keys.rsa);
    expect(r.body).toEqual({ KeyId: keys.rsa, Holders: [1, 2, 3] });
    for (const [i, s] of ['signer1', 'signer2', 'signer3'].entries()) {
      const rsaRecord = (t: string) => decodeSecretful(Buffer.from(t, 'latin1')) as { share: { s: Uint8Array }; params: { n: string; verificationKeys: unknown } };
      const [old, now] = [rsaRecord(before[i]!), rsaRecord(await shareOf(s, keys.rsa))];
      expect(now.share.s, s).not.toEqual(old.share.s);
      expect(now.params.n).toBe(old.params.n);
      expect(now.params.verificationKeys).not.toEqual(old.params.verificationKeys);
      expect(canonicalJson(now.params), `${s}'s parameters are the gateway's`).toBe(canonicalJson((keyRecord(keys.rsa) as { rsa?: unknown }).rsa));
    }
    expect(await publicKeyOf(tc, keys.rsa)).toEqual(publicKeys[keys.rsa]);
    expect(await signAndVerify(keys.rsa, 'RSASSA_PSS_SHA_256')).toBe(true);
  }, 120_000);

  it('is for key administrators only', async () => {
    for (const who of ['app', 'auditor']) {
      const r = await refresh(who, keys.ec);
      expect(r.body.__type, who).toBe('AccessDeniedException');
      expect(String(r.body.message)).toContain('key administrator role is required');
    }
    expect((await refresh('admin1', randomUUID())).body.__type).toBe('NotFoundException');
    expect((await refresh('admin1', 'alias/nope')).body.__type).toBe('NotFoundException');
    expect((await gatewayCall(tc, 'admin1', 'MpcHsm.RefreshKeyShares', {})).body.__type).toBe('ValidationException');
  });

  it('runs two refreshes asked at once one after the other', async () => {
    const both = await Promise.all([refresh('admin1', keys.ec), refresh('admin3', keys.ec)]);
    for (const r of both) expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(await signAndVerify(keys.ec, 'ECDSA_SHA_256')).toBe(true);
  }, 120_000);
});

describe('a resharing interrupted between its adopts', () => {
  it('a signer answers a repeated adopt as done, and refuses one of another package', async () => {
    // The gateway's last refresh of the key again: its session, and the package in the key record.
    const last = auditEntries(tc, 'gateway').filter((e) => e.op === 'RefreshKeyShares' && e.keyId === keys.ec && e.outcome === 'ok').at(-1)!;
    const adopt = { session: last.session as string, keyId: keys.ec, publicPackage: keyRecord(keys.ec).ecdsa };
    const again = await signers[1]!.call(signerRoutes.reshare.adopt, adopt);
    expect(again.audit).toBeDefined();
    // The package before the refresh: not what the share adopted since answers to.
    const stale = { session: randomUUID(), keyId: keys.ed, publicPackage: firstEdPackage };
    expect((await refusal(signers[1]!.call(signerRoutes.reshare.adopt, stale))).message).toContain('no reshared share');
  });

  it('is finished when the gateway starts again, and a refresh repairs a discarded ECDSA pair', async () => {
    // The protocol rounds run by hand as the gateway would (with admin1's request), then only signer1 told to adopt, twice.
    const session = randomUUID();
    const authority = { parameters: { KeyId: keys.ed }, evidence: await appRequest(tc, 'MpcHsm.RefreshKeyShares', { KeyId: keys.ed }, 'admin1') };
    const done = await relayRounds(signers, signerRoutes.reshare, { session, keyId: keys.ed, participants: [1, 2, 3], threshold: 2, authority }, 2);
    const publicPackage = done[0]!.publicPackage;
    for (const d of done) expect(canonicalJson(d.publicPackage)).toBe(canonicalJson(publicPackage));
    const adopt = { session, keyId: keys.ed, publicPackage };
    await signers[0]!.call(signerRoutes.reshare.adopt, adopt);
    expect((await signers[0]!.call(signerRoutes.reshare.adopt, adopt)).audit, 'a repeated adopt succeeds').toBeDefined();
    expect(await signerRecord(tc, 'signer2', (s) => s.has(`reshare.${keys.ed}`))).toBe(true);

    // The gateway "crashed" after journaling; meanwhile an abort cost signer1 its ECDSA pair with signer2.
    await tc.down();
    mkdirSync(path.dirname(journalFile(keys.ed)), { recursive: true });
    writeFileSync(journalFile(keys.ed), JSON.stringify({ keyId: keys.ed, session, publicPackage, holders: [1, 2, 3] }));
    await withSignerStore('signer1', async (store) => {
      const discarded = ecdsaDiscardPair(heldOf((await store.get(`key.${keys.ec}`))!) as EcdsaKeyShare, 2);
      await store.put(`key.${keys.ec}`, encodeShareRecord(discarded));
    });
    await tc.up();

    expect(existsSync(journalFile(keys.ed)), 'the journal record is gone').toBe(false);
    expect(canonicalJson(keyRecord(keys.ed).frost)).toBe(canonicalJson(publicPackage));
    for (const s of ['signer1', 'signer2', 'signer3']) {
      expect(packageOf(await shareOf(s, keys.ed)), `${s} adopted`).toBe(canonicalJson(publicPackage));
      expect(await signerRecord(tc, s, (st) => st.has(`reshare.${keys.ed}`)), `${s} has nothing pending`).toBe(false);
    }
    expect(await signAndVerify(keys.ed, 'ED25519_SHA_512')).toBe(true);
    const resumed = auditEntries(tc, 'gateway').filter((e) => e.request === session && e.kind === 'event');
    expect(resumed).toHaveLength(1);
    expect(resumed[0]).toMatchObject({ op: 'ReshareKey', keyId: keys.ed, outcome: 'ok', output: 'key', detail: { resumed: true } });
    expect((resumed[0]!.signers as { name: string }[]).map((s) => s.name)).toEqual(['signer1', 'signer2', 'signer3']);
    expect((await tc.mpchsm('audit', 'verify', '--dir', tc.dir)).stdout).not.toMatch(/error/i);

    // The discarded pair, then the refresh's fresh ones.
    const pairOf = async () => (heldOf(Buffer.from(await shareOf('signer1', keys.ec), 'latin1')) as EcdsaKeyShare).pairs['2'];
    expect(await pairOf()).toEqual({ discarded: true });
    expect((await refresh('admin1', keys.ec)).status).toBe(200);
    expect(await pairOf()).not.toEqual({ discarded: true });
    expect(await signAndVerify(keys.ec, 'ECDSA_SHA_256')).toBe(true);
  }, 180_000);
});
