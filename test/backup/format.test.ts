// The backup file format (cli/backup/format.ts) on its own: a sealed file opens with the
// custodian's key and no other; malformed input, another version, an altered header or payload
// each throw a BackupFileError with the code that names it.
import { describe, expect, it } from 'vitest';
import { BackupFileError, hpkeSuite, openBackup, parseBackup, sealBackup, type BackupHeader } from '../../cli/backup/format.js';

const header: BackupHeader = {
  clusterId: 'mpchsm-0123456789ab',
  signer: { name: 'signer1', party: 1, fingerprint: 'a'.repeat(64) },
  custodian: 'b'.repeat(64),
  created: new Date(0).toISOString(),
  epoch: { governanceVersion: 1, ledgerSeq: 3 },
  shares: [],
};
const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

async function custodian() {
  const pair = await hpkeSuite.kem.generateKeyPair();
  return { pub: new Uint8Array(await hpkeSuite.kem.serializePublicKey(pair.publicKey)), key: pair.privateKey };
}

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BackupFileError);
    return (e as BackupFileError).code;
  }
  return undefined;
}

describe('backup file format', () => {
  it('seals records to the custodian and opens them again', async () => {
    const c = await custodian();
    const bytes = await sealBackup(header, new Map([['key.x', enc('share')], ['policy.key.x', enc('{}')]]), c.pub);
    expect(Buffer.from(bytes).toString()).not.toContain(Buffer.from('share').toString('base64'));
    const records = await openBackup(parseBackup(bytes), c.key);
    expect(new TextDecoder().decode(records.get('key.x'))).toBe('share');
  });

  it('refuses malformed input with a typed error naming what is wrong', async () => {
    expect(code(() => parseBackup(enc('not json')))).toBe('malformed');
    expect(code(() => parseBackup(enc({ format: 'other' })))).toBe('malformed');
    expect(code(() => parseBackup(enc({ format: 'mpchsm-backup', version: 1, header: {}, enc: '00', payload: '' })))).toBe('malformed');
    const c = await custodian();
    const good = JSON.parse(Buffer.from(await sealBackup(header, new Map(), c.pub)).toString());
    expect(code(() => parseBackup(enc({ ...good, version: 2 })))).toBe('unsupported-version');
    expect(code(() => parseBackup(enc({ ...good, enc: '00' })))).toBe('malformed');
    expect(code(() => parseBackup(enc({ ...good, header: { ...good.header, custodian: 'nothex' } })))).toBe('malformed');
    expect(code(() => parseBackup(enc({ ...good, extra: 1 })))).toBe('malformed');
    expect(() => parseBackup(enc({ ...good, header: { ...good.header, epoch: {} } }))).toThrow(/header is malformed: epoch/);
  });

  it('an altered header, an altered payload, or another custodian\'s key: tampered', async () => {
    const c = await custodian();
    const good = JSON.parse(Buffer.from(await sealBackup(header, new Map([['key.x', enc('share')]]), c.pub)).toString());
    const opened = (doc: unknown, key = c.key) => openBackup(parseBackup(enc(doc)), key).then(() => 'opened', (e: BackupFileError) => e.code);
    expect(await opened(good)).toBe('opened');
    expect(await opened({ ...good, header: { ...good.header, epoch: { governanceVersion: 1, ledgerSeq: 4 } } })).toBe('tampered');
    const payload = Buffer.from(good.payload, 'base64');
    payload[0]! ^= 1;
    expect(await opened({ ...good, payload: payload.toString('base64') })).toBe('tampered');
    expect(await opened(good, (await custodian()).key)).toBe('tampered');
  });
});

describe('which records a backup takes (cli/backup/make.ts)', () => {
  it('share records of keys, rotated materials and pending resharings; no other record', async () => {
    const { shareRecordOf } = await import('../../cli/backup/make.js');
    const id = '0123abcd-0000-4000-8000-0123456789ab';
    expect(shareRecordOf(`key.${id}`)).toEqual({ keyId: id });
    expect(shareRecordOf(`material.${id}.4294967295`)).toEqual({ keyId: id, material: 4294967295 });
    expect(shareRecordOf(`reshare.${id}`)).toEqual({ keyId: id, pending: true });
    for (const other of [`policy.key.${id}`, 'identity', 'policy.registry', `material.${id}x4`, `key.${id}.1`]) expect(shareRecordOf(other)).toBeUndefined();
  });
});
