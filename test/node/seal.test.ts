import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createSoftwareSealer,
  DEFAULT_SCRYPT,
  openSoftwareSealer,
  SEALER_HEADER_FILE,
  SealerError,
  WrongOperatorSecretError,
} from '../../contract/io/seal.js';

const FAST = { N: 2 ** 10, r: 8, p: 1 }; // tests only; production uses DEFAULT_SCRYPT
const SECRET = 'operator secret for tests';
const enc = (s: string) => new TextEncoder().encode(s);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mpchsm-seal-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('software sealer', () => {
  it('production default is memory-hard (>= 2^15 x r=8)', () => {
    expect(DEFAULT_SCRYPT.N * DEFAULT_SCRYPT.r).toBeGreaterThanOrEqual(2 ** 15 * 8);
  });

  it('seals and opens, across a reopen with the same secret', async () => {
    const a = await createSoftwareSealer(dir, SECRET, FAST);
    const sealed = await a.seal(enc('share bytes'), enc('aad-1'));
    expect(same(await a.open(sealed, enc('aad-1')), enc('share bytes'))).toBe(true);
    a.close();
    const b = await openSoftwareSealer(dir, SECRET);
    expect(same(await b.open(sealed, enc('aad-1')), enc('share bytes'))).toBe(true);
    expect(b.kind).toBe('software/scrypt+xchacha20poly1305');
    b.close();
  });

  it('stores salt and parameters, never the secret', async () => {
    (await createSoftwareSealer(dir, SECRET, FAST)).close();
    const text = await readFile(join(dir, SEALER_HEADER_FILE), 'utf8');
    const h = JSON.parse(text);
    expect(h.kdf).toMatchObject({ name: 'scrypt', N: FAST.N, r: 8, p: 1 });
    expect(h.kdf.salt).toMatch(/^[0-9a-f]{64}$/);
    expect(text.includes(SECRET)).toBe(false);
  });

  it('seals the same plaintext differently each time (random nonce)', async () => {
    const s = await createSoftwareSealer(dir, SECRET, FAST);
    expect(same(await s.seal(enc('x'), enc('a')), await s.seal(enc('x'), enc('a')))).toBe(false);
    s.close();
  });

  it('a wrong operator secret is refused with a clear typed error', async () => {
    (await createSoftwareSealer(dir, SECRET, FAST)).close();
    const err = await openSoftwareSealer(dir, 'not the operator secret').catch((e) => e);
    expect(err).toBeInstanceOf(WrongOperatorSecretError);
    expect(err.message).toBe('the operator secret (passphrase) given does not unlock this store: it was sealed with another');
  });

  it('an edited salt or cost parameter is refused as not unlocking', async () => {
    (await createSoftwareSealer(dir, SECRET, FAST)).close();
    const path = join(dir, SEALER_HEADER_FILE);
    const h = JSON.parse(await readFile(path, 'utf8'));
    await writeFile(path, JSON.stringify({ ...h, kdf: { ...h.kdf, N: 2 ** 11 } }));
    await expect(openSoftwareSealer(dir, SECRET)).rejects.toBeInstanceOf(WrongOperatorSecretError);
    await writeFile(path, JSON.stringify({ ...h, kdf: { ...h.kdf, salt: '00'.repeat(32) } }));
    await expect(openSoftwareSealer(dir, SECRET)).rejects.toBeInstanceOf(WrongOperatorSecretError);
  });

  it('a header demanding absurd cost, or missing, is a bad header', async () => {
    (await createSoftwareSealer(dir, SECRET, FAST)).close();
    const path = join(dir, SEALER_HEADER_FILE);
    const h = JSON.parse(await readFile(path, 'utf8'));
    await writeFile(path, JSON.stringify({ ...h, kdf: { ...h.kdf, N: 2 ** 30 } }));
    await expect(openSoftwareSealer(dir, SECRET)).rejects.toMatchObject({ code: 'bad-header' });
    await rm(path);
    await expect(openSoftwareSealer(dir, SECRET)).rejects.toMatchObject({ code: 'bad-header' });
  });

  it('tampered bytes or a different AAD fail authentication', async () => {
    const s = await createSoftwareSealer(dir, SECRET, FAST);
    const sealed = await s.seal(enc('payload'), enc('name-a'));
    await expect(s.open(sealed, enc('name-b'))).rejects.toMatchObject({ code: 'tampered' });
    for (const i of [0, 1, 25, sealed.length - 1]) {
      const bad = sealed.slice();
      bad[i]! ^= 0x01;
      await expect(s.open(bad, enc('name-a'))).rejects.toBeInstanceOf(SealerError);
    }
    await expect(s.open(sealed.subarray(0, 30), enc('name-a'))).rejects.toMatchObject({ code: 'tampered' });
    s.close();
  });

  it('refuses a short operator secret at creation, and use after close', async () => {
    await expect(createSoftwareSealer(dir, 'short', FAST)).rejects.toMatchObject({ code: 'weak-secret' });
    const s = await createSoftwareSealer(dir, enc(SECRET), FAST);
    s.close();
    await expect(s.seal(enc('x'), enc('a'))).rejects.toMatchObject({ code: 'closed' });
  });

  it('normalises string secrets (NFC) so composed and decomposed forms agree', async () => {
    (await createSoftwareSealer(dir, 'caf\u00e9 operator secret', FAST)).close();
    (await openSoftwareSealer(dir, 'cafe\u0301 operator secret')).close();
  });
});
