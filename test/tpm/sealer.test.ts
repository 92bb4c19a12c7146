// The TPM sealing provider on its own (signers/node/tpm/sealer.ts), on a real swtpm: records
// sealed under the unsealed key reopen; bound to a PCR policy, the store stays shut once that
// PCR changes and opens again when it holds its sealed value.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TPM_SEALER_KIND } from '../../contract/io/seal.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import { startSwtpm, stopSwtpm, swtpmTcti } from '../../cli/swtpm.js';
import { createTpmSealer, openTpmSealer, readTpmHeader } from '../../signers/node/tpm/sealer.js';
import { haveSwtpm, NO_SWTPM } from './helpers.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-sealer-'));
const state = path.join(root, 'swtpm');
let tcti = '';

beforeAll(async () => {
  if (!haveSwtpm) return;
  const port = 20001 + Math.floor(Math.random() * 10000) * 2;
  await startSwtpm(state, port);
  tcti = swtpmTcti(port);
}, 120_000);

afterAll(async () => {
  await stopSwtpm(state);
  rmSync(root, { recursive: true, force: true });
});

const tool = (name: string, ...args: string[]) => execFileSync(`tpm2_${name}`, args, { env: { ...process.env, TPM2TOOLS_TCTI: tcti }, timeout: 10_000 });

describe.skipIf(!haveSwtpm)(`the TPM sealer (${NO_SWTPM} otherwise)`, () => {
  it('reopens what it sealed, and records the TPM as software', async () => {
    const dir = path.join(root, 'plain');
    const store = await ShareStore.openWith(dir, await createTpmSealer(dir, { tcti }));
    await store.put('a', Buffer.from('share bytes'));
    store.close();
    const header = await readTpmHeader(dir);
    expect(header.kind).toBe(TPM_SEALER_KIND);
    expect(header.device).toMatch(/^software TPM \(swtpm/);
    const again = await ShareStore.openWith(dir, await openTpmSealer(dir));
    expect(again.sealerKind).toBe(`${TPM_SEALER_KIND}; software TPM`);
    expect(Buffer.from((await again.get('a'))!).toString()).toBe('share bytes');
    again.close();
  });

  it('bound to PCR 16, does not unseal once the PCR changed, and does again once it holds its value', async () => {
    tool('pcrreset', '16');
    const dir = path.join(root, 'pcr');
    (await createTpmSealer(dir, { tcti, pcrs: 'sha256:16' })).close();
    (await openTpmSealer(dir)).close();
    tool('pcrextend', `16:sha256=${'ab'.repeat(32)}`);
    await expect(openTpmSealer(dir)).rejects.toThrow(/refuses to unseal the store key \(the PCRs sha256:16 differ from those it was sealed to\)/);
    tool('pcrreset', '16');
    (await openTpmSealer(dir)).close();
  });

  it('refuses an unknown PCR selection at init', async () => {
    await expect(createTpmSealer(path.join(root, 'bad'), { tcti, pcrs: 'sha256:99' })).rejects.toThrow(/PCR selection/);
  });
});
