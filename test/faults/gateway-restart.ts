// What the fault tests that restart a real cluster's gateway share: killing it (-9) and starting
// it again as `mpchsm up` does, and running `mpchsm doctor` against the
// cluster directory with their exit codes and output.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Io } from '../../cli/cluster-dir.js';
import { doctor } from '../../cli/doctor.js';
import { entry } from '../../cli/layout.js';
import { isAlive, startNode, waitHealthy } from '../../cli/processes.js';
import type { TestCluster } from '../helpers/cluster.js';

export async function killGateway(tc: TestCluster): Promise<void> {
  const pid = tc.cluster().gateway.pid;
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(50);
}

/**
 * Starts the gateway again, as `mpchsm up` does, and records its pid for `mpchsm down`;
 * `endpoint`: where its health answers (https:// once its configuration names a certificate).
 */
export async function restartGateway(tc: TestCluster, endpoint = tc.endpoint): Promise<void> {
  const gw = startNode('gateway', entry.gateway, ['run', '--dir', path.join(tc.dir, 'gateway')], path.join(tc.dir, 'logs', 'gateway.log'), {
    detach: true,
    stdinSecret: readFileSync(path.join(tc.dir, 'operators', 'gateway.secret'), 'utf8'),
  });
  gw.child.unref();
  await waitHealthy(`${endpoint}/health`, gw.child, 60_000);
  const file = path.join(tc.dir, 'cluster.json');
  writeFileSync(file, JSON.stringify({ ...tc.cluster(), gateway: { ...tc.cluster().gateway, pid: gw.child.pid } }, null, 2) + '\n');
}

export async function runDoctor(tc: TestCluster): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const io: Io = { out: (l) => lines.push(l), err: (l) => lines.push(`ERR ${l}`) };
  const code = await doctor(tc.dir, { strict: false }, io);
  return { code, text: lines.join('\n') };
}
