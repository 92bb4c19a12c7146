// The hardened systemd units in deploy/systemd: each passes `systemd-analyze verify` and
// `systemd-analyze security --offline` rates its exposure "OK" (below 2.0 of 10), with the
// settings the operations guide promises: no core dumps, no new privileges, a private /tmp,
// a read-only system, its own user, and only the TPM device for a signer.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cluster.js';

const run = promisify(execFile);
const analyze = '/usr/bin/systemd-analyze';
const units = path.join(repoRoot, 'deploy', 'systemd');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-units-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The unit as systemd would load it: the template instantiated for signer1. */
function instance(file: string): string {
  const to = path.join(tmp, file.replace('@.service', '@signer1.service'));
  copyFileSync(path.join(units, file), to);
  return to;
}

const settings = (file: string): string[] => readFileSync(path.join(units, file), 'utf8').split('\n').filter((l) => /^[A-Z]/.test(l));

describe.skipIf(!existsSync(analyze))('hardened systemd units', () => {
  if (!existsSync(analyze)) console.warn(`skipped: ${analyze} is not installed (apt-get install systemd)`);

  for (const file of ['mpchsm-signer@.service', 'mpchsm-gateway.service']) {
    it(`${file}: verifies, and its exposure is rated OK`, async () => {
      const unit = instance(file);
      const verify = await run(analyze, ['verify', unit]);
      expect(verify.stderr).toBe('');
      const { stdout } = await run(analyze, ['security', '--offline=true', '--no-pager', unit]);
      const level = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(stdout)?.[1]);
      expect(level).toBeLessThan(2);
      const s = settings(file);
      for (const want of ['LimitCORE=0', 'NoNewPrivileges=yes', 'PrivateTmp=yes', 'ProtectSystem=strict', 'CapabilityBoundingSet=', 'UMask=0077'])
        expect(s).toContain(want);
      expect(s.find((l) => l.startsWith('User='))).toMatch(/^User=mpchsm-/);
    });
  }

  it('a signer reaches only the TPM resource manager among devices; the gateway none', () => {
    const signer = settings('mpchsm-signer@.service');
    expect(signer).toContain('DevicePolicy=closed');
    expect(signer.filter((l) => l.startsWith('DeviceAllow='))).toEqual(['DeviceAllow=/dev/tpmrm0 rw']);
    expect(settings('mpchsm-gateway.service')).toContain('PrivateDevices=yes');
  });
});
