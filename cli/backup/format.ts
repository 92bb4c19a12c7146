// The backup file `mpchsm signer backup` writes and `mpchsm backup verify` reads: one signer's
// shares at one time, for one custodian. A JSON object with a header in clear (what the backup
// holds, checkable without the custodian's key) and a payload sealed with HPKE (RFC 9180,
// base mode) to the custodian's X25519 key. The HPKE `info` is a digest of the canonical header,
// so a header altered in any field makes the payload fail to open: the header is authenticated
// by the same seal that protects the shares.
//
// Dependency: `@hpke/core` (the hpke-js project), an RFC 9180 implementation tested against the
// RFC's vectors, small (one dependency, @hpke/common), on Node's WebCrypto (X25519, HKDF and
// AES-GCM as native code; runs on Node >= 16, so on our Node 20). HPKE is not written here.
import { createHash, type webcrypto } from 'node:crypto';
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { z } from 'zod';
import { canonicalJson } from '../../contract/canonical.js';
import { fromHex, hexSchema, toHex } from '../../contract/bytes.js';
import { uuidSchema } from '../../contract/signer-rpc/relayed.js';
import { keyPackageSchema } from '../../signers/protocols/key-package.js';
import { epochSchema } from '../../contract/posture/backups.js';

export const BACKUP_FORMAT = 'mpchsm-backup';
export const BACKUP_VERSION = 1;
/** The HPKE suite, named in custodian.json: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM. */
export const HPKE_SUITE_NAME = 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM';
export const hpkeSuite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });

export type BackupErrorCode = 'malformed' | 'unsupported-version' | 'tampered' | 'other-custodian';

/** Why a backup file cannot be used; `code` names it for scripts (`--json`). */
export class BackupFileError extends Error {
  override name = 'BackupFileError';
  constructor(
    readonly code: BackupErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const hex32 = z.string().regex(/^[0-9a-f]{64}$/);

/** One stored share record: the key's (`key.ID`), a symmetric key's rotated material, or a reshared share pending adoption. */
export const shareEntrySchema = z.strictObject({
  record: z.string().regex(/^(key\.|material\.|reshare\.)[a-z0-9._-]{1,120}$/),
  keyId: uuidSchema,
  material: z.number().int().min(2).max(0xffffffff).optional(),
  pending: z.literal(true).optional(),
  keySpec: z.string().max(64).optional(),
  scheme: z.enum(['frost', 'ecdsa', 'rsa']),
  publicPackage: keyPackageSchema,
});
export type ShareEntry = z.infer<typeof shareEntrySchema>;

export type Epoch = z.infer<typeof epochSchema>;

export const backupHeaderSchema = z.strictObject({
  clusterId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  signer: z.strictObject({ name: z.string().min(1).max(64), party: z.number().int().min(1).max(255), fingerprint: hex32 }),
  custodian: hex32,
  created: z.iso.datetime(),
  epoch: epochSchema,
  shares: z.array(shareEntrySchema).max(100_000),
});
export type BackupHeader = z.infer<typeof backupHeaderSchema>;

const fileSchema = z.strictObject({
  format: z.literal(BACKUP_FORMAT),
  version: z.number().int(),
  header: z.unknown(),
  enc: hexSchema,
  payload: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/),
});

/** The sealed part: every record's plaintext (base64) by record name, share and policy records alike. */
const payloadSchema = z.strictObject({ records: z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,127}$/), z.base64()) });

export interface ParsedBackup {
  header: BackupHeader;
  enc: Uint8Array;
  sealed: Uint8Array;
}

const issue = (e: z.ZodError): string => `${e.issues[0]?.path.join('.') || '(top)'} ${e.issues[0]?.message}`;

/** Parses a backup file's bytes; malformed input throws BackupFileError('malformed' | 'unsupported-version'). */
export function parseBackup(bytes: Uint8Array): ParsedBackup {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new BackupFileError('malformed', 'not a backup file: not JSON');
  }
  const f = fileSchema.safeParse(doc);
  if (!f.success) throw new BackupFileError('malformed', `not a backup file: ${issue(f.error)}`);
  if (f.data.version !== BACKUP_VERSION) throw new BackupFileError('unsupported-version', `backup format version ${f.data.version} is not supported (this mpchsm reads version ${BACKUP_VERSION})`);
  const h = backupHeaderSchema.safeParse(f.data.header);
  if (!h.success) throw new BackupFileError('malformed', `the backup's header is malformed: ${issue(h.error)}`);
  if (f.data.enc.length !== 64) throw new BackupFileError('malformed', 'the backup\'s HPKE encapsulated key is not 32 bytes');
  return { header: h.data, enc: fromHex(f.data.enc), sealed: new Uint8Array(Buffer.from(f.data.payload, 'base64')) };
}

/** HPKE info: binds the whole header (its digest: the header may exceed what `info` may hold). */
const infoOf = (h: BackupHeader): Uint8Array =>
  new Uint8Array(Buffer.concat([Buffer.from(`${BACKUP_FORMAT}/v${BACKUP_VERSION}\0`), createHash('sha256').update(canonicalJson(h)).digest()]));

/** The custodian's fingerprint: SHA-256 over a domain and its public key. */
export const custodianFingerprint = (publicKey: Uint8Array): string => createHash('sha256').update('mpchsm-custodian/v1\0').update(publicKey).digest('hex');

/** Seals `records` to the custodian's public key under `header`; the file's bytes. */
export async function sealBackup(header: BackupHeader, records: Map<string, Uint8Array>, custodianPublicKey: Uint8Array): Promise<Uint8Array> {
  const h = backupHeaderSchema.parse(header);
  const plain = Buffer.from(JSON.stringify({ records: Object.fromEntries([...records].map(([n, b]) => [n, Buffer.from(b).toString('base64')])) }));
  try {
    const recipientPublicKey = await hpkeSuite.kem.deserializePublicKey(custodianPublicKey);
    const { enc, ct } = await hpkeSuite.seal({ recipientPublicKey, info: infoOf(h) }, plain);
    const file = { format: BACKUP_FORMAT, version: BACKUP_VERSION, header: h, enc: toHex(new Uint8Array(enc)), payload: Buffer.from(ct).toString('base64') };
    return Buffer.from(JSON.stringify(file, null, 1) + '\n');
  } finally {
    plain.fill(0);
  }
}

/** Opens the payload with the custodian's private key; any change to header or payload throws BackupFileError('tampered'). */
export async function openBackup(b: ParsedBackup, recipientKey: webcrypto.CryptoKey): Promise<Map<string, Uint8Array>> {
  let plain: Uint8Array;
  try {
    plain = new Uint8Array(await hpkeSuite.open({ recipientKey, enc: b.enc, info: infoOf(b.header) }, b.sealed));
  } catch {
    throw new BackupFileError('tampered', 'the backup does not open: its header or its sealed payload was altered (or it was not sealed to this custodian)');
  }
  try {
    const p = payloadSchema.safeParse(JSON.parse(Buffer.from(plain).toString('utf8')));
    if (!p.success) throw new BackupFileError('malformed', `the backup's payload is malformed: ${issue(p.error)}`);
    return new Map(Object.entries(p.data.records).map(([n, b64]) => [n, new Uint8Array(Buffer.from(b64, 'base64'))]));
  } finally {
    plain.fill(0);
  }
}
