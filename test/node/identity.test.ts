import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createIdentity,
  exportPublicIdentity,
  fingerprint,
  IDENTITY_RECORD,
  IdentityError,
  identityFromSecrets,
  loadIdentity,
  parsePublicIdentity,
  wipeIdentity,
} from '../../contract/identity/identity.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import { seededRng } from '../helpers/rng.js';

const FAST = { scrypt: { N: 2 ** 10, r: 8, p: 1 } };
const SECRET = 'operator secret for tests';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'mpchsm-identity-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('signer identity', () => {
  it('is created at init, sealed in the store, and identical after reopen', async () => {
    const dir = join(root, 'a');
    const store = await ShareStore.init(dir, SECRET, FAST);
    const id = await createIdentity(store, 'signer-a');
    expect(await store.list()).toEqual([IDENTITY_RECORD]);
    const doc = exportPublicIdentity(id);
    expect(Object.keys(doc).sort()).toEqual(['fingerprint', 'kexPublicKey', 'name', 'selfSignature', 'signPublicKey']);
    store.close();

    const reopened = await ShareStore.open(dir, SECRET);
    const again = await loadIdentity(reopened);
    expect(exportPublicIdentity(again)).toEqual(doc);
    expect(Buffer.from(again.signSecretKey).equals(Buffer.from(id.signSecretKey))).toBe(true);
    await expect(createIdentity(reopened, 'signer-a')).rejects.toBeInstanceOf(IdentityError);
    reopened.close();
  });

  it('loading from a store without an identity fails clearly', async () => {
    const store = await ShareStore.init(join(root, 'b'), SECRET, FAST);
    await expect(loadIdentity(store)).rejects.toThrow(/no identity/);
    store.close();
  });

  it('two signers get different keys and fingerprints', async () => {
    const a = identityFromSecrets('a', seededRng('a')(32), seededRng('a2')(32));
    const b = identityFromSecrets('b', seededRng('b')(32), seededRng('b2')(32));
    expect(a.fingerprint).not.toBe(b.fingerprint);
    expect(a.public.signPublicKey).not.toBe(b.public.signPublicKey);
    expect(a.public.kexPublicKey).not.toBe(a.public.signPublicKey);
  });

  it('the exported document round-trips through JSON and parses', () => {
    const id = identityFromSecrets('signer-c', seededRng('c')(32), seededRng('c2')(32));
    const parsed = parsePublicIdentity(JSON.parse(JSON.stringify(exportPublicIdentity(id))));
    expect(parsed).toEqual(id.public);
    expect(fingerprint(parsed)).toBe(id.fingerprint);
  });

  it('a document with a swapped key, edited name, bad fingerprint or extra field is refused', () => {
    const id = identityFromSecrets('signer-d', seededRng('d')(32), seededRng('d2')(32));
    const other = identityFromSecrets('signer-e', seededRng('e')(32), seededRng('e2')(32));
    const doc = exportPublicIdentity(id);
    const bad: [unknown, RegExp][] = [
      [{ ...doc, kexPublicKey: other.public.kexPublicKey, fingerprint: undefined }, /self-signature/],
      [{ ...doc, signPublicKey: other.public.signPublicKey, fingerprint: undefined }, /self-signature/],
      [{ ...doc, name: 'signer-x', fingerprint: undefined }, /self-signature/],
      [{ ...doc, fingerprint: other.fingerprint }, /fingerprint does not match/],
      [{ ...doc, extra: 1 }, /malformed/],
      [{ ...doc, signPublicKey: doc.signPublicKey.toUpperCase() }, /malformed/],
      [{ ...doc, kexPublicKey: '00'.repeat(32), fingerprint: undefined }, /weak public key/], // low-order X25519
      [{ ...doc, signPublicKey: '01' + '00'.repeat(31), fingerprint: undefined }, /weak public key/], // Ed25519 identity
    ];
    for (const [d, why] of bad) expect(() => parsePublicIdentity(d)).toThrow(why);
    expect(() => parsePublicIdentity(doc)).not.toThrow();
  });

  it('rejects invalid names and wipes secrets on request', () => {
    expect(() => identityFromSecrets('../x', new Uint8Array(32), new Uint8Array(32))).toThrow(IdentityError);
    const id = identityFromSecrets('w', seededRng('w')(32), seededRng('w2')(32));
    wipeIdentity(id);
    expect(id.signSecretKey.every((b) => b === 0) && id.kexSecretKey.every((b) => b === 0)).toBe(true);
  });
});
