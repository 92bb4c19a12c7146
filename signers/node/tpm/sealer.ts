// The TPM sealing provider (contract/io/seal.ts `Sealer`): a random 32-byte store key, sealed by
// the TPM as a sealed data object under a primary key of the storage (owner) hierarchy, and the
// records under that key with the software provider's AEAD (`keySealer`). The primary is made
// again at every open from the TPM's owner seed and the default template, so only the sealed
// object's public and private parts are kept, in the store's `sealer.json`; on another TPM (or
// after the owner hierarchy was cleared) they do not load and the store does not open.
//
// Optionally the object is bound at init to a PCR policy (`sha256:0,7`): it unseals only while
// those PCRs hold the values they held then; a changed boot chain refuses the store.
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../../contract/io/atomic.js';
import { JsonFileError, readJsonFileAsync } from '../../../contract/io/json-file.js';
import { keySealer, SEALER_HEADER_FILE, TPM_SEALER_KIND, type Sealer } from '../../../contract/io/seal.js';
import { tpmClass } from './ek.js';
import { TpmError, withTpm, type Tpm } from './tools.js';

const hex = z.string().regex(/^(?:[0-9a-f]{2})+$/);
/** A PCR selection as tpm2-tools writes it: one bank, its registers. */
export const pcrSelection = z.string().regex(/^sha(1|256|384|512):([0-9]|1[0-9]|2[0-3])(,([0-9]|1[0-9]|2[0-3])){0,23}$/, 'a PCR selection such as sha256:0,7');

export const tpmHeaderSchema = z.strictObject({
  format: z.literal('mpchsm-sealer'),
  version: z.literal(1),
  kind: z.literal(TPM_SEALER_KIND),
  /** Where the TPM is (signers/node/tpm/tools.ts); the host's, not a secret. */
  tcti: z.string().min(1).max(256),
  pcrs: pcrSelection.optional(),
  /** What the TPM was at init, from its EK certificate (ek.ts): what `doctor` shows from the files. */
  device: z.string().max(200),
  sealedPublic: hex,
  sealedPrivate: hex,
});
export type TpmHeader = z.infer<typeof tpmHeaderSchema>;

export interface TpmSealOptions {
  tcti: string;
  pcrs?: string | undefined;
}

const headerPath = (dir: string) => path.join(dir, SEALER_HEADER_FILE);

// noda on the primary and the sealed object: neither has a password to guess, and every start
// after a power loss (no orderly TPM shutdown) counts a dictionary-attack failure; a few of those
// would lock DA-protected objects out, and the store with them.
const PRIMARY_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda';

/** The storage hierarchy's primary, made again from the owner seed (same TPM, same template, same key). */
const primary = (tpm: Tpm) => tpm.run('createprimary', ['-Q', '-C', 'o', '-g', 'sha256', '-G', 'ecc', '-a', PRIMARY_ATTRIBUTES, '-c', tpm.file('primary.ctx')]);

async function pcrPolicy(tpm: Tpm, pcrs: string): Promise<string> {
  const session = tpm.file('trial.ctx');
  await tpm.run('startauthsession', ['-S', session]);
  await tpm.run('policypcr', ['-Q', '-S', session, '-l', pcrs, '-L', tpm.file('pcr.policy')]);
  await tpm.run('flushcontext', [session]);
  return tpm.file('pcr.policy');
}

/**
 * Makes a TPM-sealed store's sealer in `dir` (created 0700; absent or empty): a new store key
 * sealed to the TPM at `o.tcti`, its header written. The caller opens the store with it.
 */
export async function createTpmSealer(dir: string, o: TpmSealOptions): Promise<Sealer> {
  if (o.pcrs !== undefined) pcrSelection.parse(o.pcrs);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if ((await lstat(dir)).isSymbolicLink()) throw new Error(`${dir} is a symbolic link`);
  if ((await readdir(dir)).length > 0) throw new Error(`${dir} is not empty; refusing to create a store over it`);
  await chmod(dir, 0o700);
  const key = randomBytes(32);
  let hardware = false;
  const header = await withTpm(o.tcti, async (tpm) => {
    const device = await tpmClass(tpm);
    hardware = device.hardware;
    await primary(tpm);
    const policy = o.pcrs === undefined ? ['-a', 'fixedtpm|fixedparent|userwithauth|noda'] : ['-L', await pcrPolicy(tpm, o.pcrs), '-a', 'fixedtpm|fixedparent|noda'];
    await tpm.run('create', ['-Q', '-C', tpm.file('primary.ctx'), '-g', 'sha256', '-u', tpm.file('key.pub'), '-r', tpm.file('key.priv'), '-i', '-', ...policy], key);
    const read = async (f: string) => (await readFile(tpm.file(f))).toString('hex');
    return tpmHeaderSchema.parse({
      format: 'mpchsm-sealer',
      version: 1,
      kind: TPM_SEALER_KIND,
      tcti: o.tcti,
      ...(o.pcrs === undefined ? {} : { pcrs: o.pcrs }),
      device: device.label,
      sealedPublic: await read('key.pub'),
      sealedPrivate: await read('key.priv'),
    });
  });
  await writeFileAtomic(headerPath(dir), Buffer.from(JSON.stringify(header, null, 2) + '\n'), 0o600);
  return keySealer(tpmSealLabel(hardware), key);
}

export async function readTpmHeader(dir: string): Promise<TpmHeader> {
  try {
    return await readJsonFileAsync(headerPath(dir), tpmHeaderSchema);
  } catch (e) {
    throw new TpmError(e instanceof JsonFileError ? e.message : `${headerPath(dir)}: ${(e as Error).message}`);
  }
}

/** Unseals the store key of the TPM-sealed store in `dir`, on the TPM its header names (or `tcti`). */
export async function openTpmSealer(dir: string, tcti?: string): Promise<Sealer> {
  const h = await readTpmHeader(dir);
  let hardware = false;
  const key = await withTpm(tcti ?? h.tcti, async (tpm) => {
    hardware = (await tpmClass(tpm)).hardware;
    await primary(tpm);
    await writeFile(tpm.file('key.pub'), Buffer.from(h.sealedPublic, 'hex'));
    await writeFile(tpm.file('key.priv'), Buffer.from(h.sealedPrivate, 'hex'));
    try {
      await tpm.run('load', ['-Q', '-C', tpm.file('primary.ctx'), '-u', tpm.file('key.pub'), '-r', tpm.file('key.priv'), '-c', tpm.file('key.ctx')]);
    } catch (e) {
      throw new TpmError(`${headerPath(dir)}: the store key does not load on the TPM at ${tpm.tcti}: this store was sealed to another TPM, or this TPM's owner hierarchy was cleared (${(e as Error).message})`);
    }
    try {
      return await tpm.run('unseal', ['-c', tpm.file('key.ctx'), ...(h.pcrs ? ['-p', `pcr:${h.pcrs}`] : [])]);
    } catch (e) {
      throw new TpmError(`${headerPath(dir)}: the TPM refuses to unseal the store key${h.pcrs ? ` (the PCRs ${h.pcrs} differ from those it was sealed to)` : ''}: ${(e as Error).message}`);
    }
  });
  return keySealer(tpmSealLabel(hardware), key);
}

/**
 * How a TPM-sealed store names its sealing in posture reports (the open sealer's kind): the
 * provider, and whether this TPM was shown to be hardware (ek.ts), read from the TPM at each open.
 */
export const tpmSealLabel = (hardware: boolean) => `${TPM_SEALER_KIND}; ${hardware ? 'hardware TPM' : 'software TPM'}`;

/** The sealer kind a store directory's header names (without opening it), or undefined with no header. */
export async function storeSealKind(dir: string): Promise<string | undefined> {
  try {
    return (await readJsonFileAsync(headerPath(dir), z.object({ kind: z.string() }).passthrough())).kind;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
