// A backup custodian (`mpchsm custodian init --dir K`): an HPKE key pair (format.ts) that
// signers' backups are sealed to. The private key is sealed in K/store as the parties seal
// their own secrets (contract/io/sealed-store.ts: scrypt over a passphrase read from standard
// input, K 0700, records 0600); the public half, with its fingerprint, is K/custodian.json,
// the file operators pass to `signer backup --custodian`.
import { existsSync } from 'node:fs';
import type { webcrypto } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { x25519PublicKey } from '../../contract/identity/curve25519.js';
import { z } from 'zod';
import { writeFileAtomic } from '../../contract/io/atomic.js';
import { readJsonFile } from '../../contract/io/json-file.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import { fromHex, toHex } from '../../contract/bytes.js';
import { custodianFingerprint, HPKE_SUITE_NAME, hpkeSuite } from './format.js';

const KEY_RECORD = 'custodian.hpke';
const hex32 = z.string().regex(/^[0-9a-f]{64}$/);

export const custodianFileSchema = z
  .strictObject({
    Custodian: z.literal('mpchsm-custodian-v1'),
    Name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/),
    Suite: z.literal(HPKE_SUITE_NAME),
    PublicKey: hex32,
    Fingerprint: hex32,
    Created: z.iso.datetime(),
  })
  .refine((c) => custodianFingerprint(fromHex(c.PublicKey)) === c.Fingerprint, 'the fingerprint is not that of the public key');
export type CustodianFile = z.infer<typeof custodianFileSchema>;

export const custodianPaths = (dir: string) => ({ file: path.join(path.resolve(dir), 'custodian.json'), store: path.join(path.resolve(dir), 'store') });

/** Reads and checks a custodian's public file. */
export const readCustodianFile = (file: string): CustodianFile => readJsonFile(file, custodianFileSchema);

/** Makes the key pair: private key sealed under `secret` in K/store, public file K/custodian.json. */
export async function custodianInit(dir: string, name: string, secret: Uint8Array): Promise<{ file: string; custodian: CustodianFile }> {
  const P = custodianPaths(dir);
  for (const f of [P.file, P.store]) if (existsSync(f)) throw new Error(`${f} exists: ${dir} already holds a custodian (a custodian's key is never overwritten)`);
  await mkdir(path.dirname(P.file), { recursive: true, mode: 0o700 });
  const pair = await hpkeSuite.kem.generateKeyPair();
  const priv = new Uint8Array(await hpkeSuite.kem.serializePrivateKey(pair.privateKey));
  const pub = new Uint8Array(await hpkeSuite.kem.serializePublicKey(pair.publicKey));
  const store = await ShareStore.init(P.store, secret);
  try {
    await store.put(KEY_RECORD, priv);
  } finally {
    priv.fill(0);
    store.close();
  }
  const custodian = custodianFileSchema.parse({
    Custodian: 'mpchsm-custodian-v1',
    Name: name,
    Suite: HPKE_SUITE_NAME,
    PublicKey: toHex(pub),
    Fingerprint: custodianFingerprint(pub),
    Created: new Date().toISOString(),
  });
  await writeFileAtomic(P.file, Buffer.from(JSON.stringify(custodian, null, 2) + '\n'), 0o644);
  return { file: P.file, custodian };
}

/** The custodian's public file and private key (for HPKE open), unlocked with `secret`; the key is checked against the file. */
export async function openCustodian(dir: string, secret: Uint8Array): Promise<{ custodian: CustodianFile; privateKey: webcrypto.CryptoKey }> {
  const P = custodianPaths(dir);
  const custodian = readCustodianFile(P.file);
  const store = await ShareStore.open(P.store, secret, { readOnly: true });
  let priv: Uint8Array | undefined;
  try {
    priv = await store.get(KEY_RECORD);
    if (!priv) throw new Error(`${P.store} holds no custodian key`);
    if (toHex(x25519PublicKey(priv)) !== custodian.PublicKey) throw new Error(`${P.store} holds another key than ${P.file} names`);
    return { custodian, privateKey: await hpkeSuite.kem.deserializePrivateKey(priv) };
  } finally {
    priv?.fill(0);
    store.close();
  }
}
