// A local cluster whose signers are sealed to software TPMs (`mpchsm up --seal swtpm`), started
// through the `mpchsm` command from dist as a user would, and stopped (with its swtpms) afterwards.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { freePortBlock, startCluster, type TestCluster } from '../helpers/cluster.js';

/** Every port `up --seal swtpm` binds is free: the cluster's, and each swtpm's pair (base + 300 + 2·id, +1). */
export async function startSwtpmCluster(signers = 3): Promise<TestCluster> {
  return startCluster({ signers, port: await freePortBlock(signers + 3, 2 * signers + 4, 302), upArgs: ['--seal', 'swtpm'], timeoutMs: 180_000 });
}

/** swtpm, swtpm_setup (swtpm-tools) and tpm2-tools are installed: .ci/run installs them. */
export const haveSwtpm = ['swtpm', 'swtpm_setup', 'tpm2_createprimary'].every((tool) => (process.env.PATH ?? '').split(':').some((d) => existsSync(path.join(d, tool))));
export const NO_SWTPM = 'needs swtpm, swtpm-tools and tpm2-tools (Debian packages; .ci/run installs them)';
