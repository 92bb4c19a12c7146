// `mpchsm p11-kit install|remove --user`: the module file p11-kit reads from the user's
// configuration (the conformance suite registers it system-wide and signs through p11-kit's proxy).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { mpchsmBin, repoRoot } from '../helpers/cluster.js';

const run = promisify(execFile);
const home = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-p11kit-'));
const mpchsm = (...args: string[]) => run(process.execPath, [mpchsmBin, ...args], { env: { ...process.env, XDG_CONFIG_HOME: home } });
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('mpchsm p11-kit', () => {
  it('writes a module file naming the built module, and removes it', async () => {
    const file = path.join(home, 'pkcs11', 'modules', 'mpchsm.module');
    const installed = JSON.parse((await mpchsm('p11-kit', 'install', '--user', '--json')).stdout);
    expect(installed).toEqual({ File: file, Module: path.join(repoRoot, 'pkcs11-shim', 'build', 'libmpchsm-pkcs11.so') });
    expect(readFileSync(file, 'utf8')).toMatch(new RegExp(`^module: ${installed.Module}$`, 'm'));
    expect(JSON.parse((await mpchsm('p11-kit', 'remove', '--user', '--json')).stdout)).toEqual({ File: file, Removed: true });
    expect(existsSync(file)).toBe(false);
  });

  it('refuses --user with --system and an unknown subcommand', async () => {
    await expect(mpchsm('p11-kit', 'install', '--user', '--system')).rejects.toMatchObject({ stderr: expect.stringContaining('not both') });
    await expect(mpchsm('p11-kit', 'list')).rejects.toMatchObject({ stderr: expect.stringContaining("'install' or 'remove'") });
  });
});
