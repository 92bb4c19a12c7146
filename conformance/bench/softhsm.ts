// A SoftHSMv2 token of the benchmark's own, in a temporary directory (SOFTHSM2_CONF points the
// module at it), so the comparison never touches the machine's tokens.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const MODULE_CANDIDATES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
];

export interface SoftHsmToken {
  module: string;
  version: string;
  /** The environment a process loading the module needs. */
  env: Record<string, string>;
  pin: string;
  close(): void;
}

/** Finds SoftHSMv2 (SOFTHSM2_MODULE overrides the search); undefined with the reason when absent. */
export function findSoftHsm(): { module: string; version: string } | { missing: string } {
  const module = process.env.SOFTHSM2_MODULE ?? MODULE_CANDIDATES.find((m) => existsSync(m));
  if (!module || !existsSync(module)) return { missing: 'SoftHSMv2 is not installed (apt-get install softhsm2)' };
  try {
    return { module, version: execFileSync('softhsm2-util', ['--version'], { encoding: 'utf8' }).trim() };
  } catch {
    return { missing: 'softhsm2-util is not on PATH (apt-get install softhsm2)' };
  }
}

/** Initialises a fresh token (user PIN random) in a new temporary directory. */
export function createSoftHsmToken(found: { module: string; version: string }): SoftHsmToken {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-bench-softhsm-'));
  try {
    mkdirSync(path.join(dir, 'tokens'), { mode: 0o700 });
    const conf = path.join(dir, 'softhsm2.conf');
    writeFileSync(conf, `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
    const pin = randomBytes(9).toString('base64url');
    const env = { SOFTHSM2_CONF: conf };
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'mpchsm-bench', '--pin', pin, '--so-pin', randomBytes(9).toString('base64url')], {
      env: { ...process.env, ...env },
      stdio: 'pipe',
    });
    return { ...found, env, pin, close: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
