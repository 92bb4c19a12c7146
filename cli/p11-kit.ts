// `mpchsm p11-kit install|remove [--user|--system]`: registers the built PKCS#11 module with
// p11-kit, so programs that load p11-kit's proxy (GnuTLS tools, `p11-kit list-modules`, NSS
// through p11-kit) see the mpchsm token without being given the module's path. The module file
// names the library only; which gateway it reaches still comes from MPCHSM_PKCS11_CONF.
import { existsSync, unlinkSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { entry } from './layout.js';

/**
 * Where p11-kit reads module files: the system directory (root), else the user's. p11-kit reads
 * no user configuration for root, so root registers system-wide.
 */
function modulesDir(scope: 'user' | 'system'): string {
  return scope === 'system' ? '/etc/pkcs11/modules' : path.join(process.env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'pkcs11', 'modules');
}

export async function p11Kit(sub: string | undefined, o: { user: boolean; system: boolean; json: boolean }): Promise<void> {
  if (o.user && o.system) throw new Error('p11-kit takes --user or --system, not both');
  const scope = o.system || (!o.user && process.getuid?.() === 0) ? 'system' : 'user';
  const file = path.join(modulesDir(scope), 'mpchsm.module');
  if (sub === 'install') {
    if (!existsSync(entry.pkcs11Module)) throw new Error(`${entry.pkcs11Module} is not built (npm run build:pkcs11)`);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
    const text = `# mpchsm's PKCS#11 module, registered by \`mpchsm p11-kit install\`; it reaches the gateway named by MPCHSM_PKCS11_CONF.\nmodule: ${entry.pkcs11Module}\ncritical: no\n`;
    await writeFileAtomic(file, Buffer.from(text), 0o644);
    console.log(o.json ? JSON.stringify({ File: file, Module: entry.pkcs11Module }) : `${file}: p11-kit loads ${entry.pkcs11Module} (token mpchsm)`);
    return;
  }
  if (sub === 'remove') {
    const removed = existsSync(file);
    if (removed) unlinkSync(file);
    console.log(o.json ? JSON.stringify({ File: file, Removed: removed }) : removed ? `${file} removed` : `${file} was not there`);
    return;
  }
  throw new Error("p11-kit takes 'install' or 'remove' [--user|--system]");
}
