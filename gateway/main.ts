// The gateway daemon: `run [--genesis FILE]` (serve; founded by the genesis on its first start:
// gateway/genesis.ts). `mpchsm gateway init` makes its directory (gateway/init.ts); after
// `gateway init --recover` the first start rebuilds it from the signers (gateway-recovery.ts).
// Principals make their own secrets, never here: the gateway holds no one's secret.
// The gateway operator's secret, which unlocks the gateway's identity store, arrives on stdin.
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { readSecretFromStdin } from '../contract/io/stdin.js';
import { loadIdentity } from '../contract/identity/identity.js';
import { adoptGenesis } from './genesis.js';
import { ShareStore } from '../contract/io/sealed-store.js';
import { Cluster } from './cluster.js';
import { GatewayPolicy, installGatewayPolicy } from './governance.js';
import { gatewayConfigSchema, gatewayPaths, loadGatewayConfig } from './config.js';
import { PrincipalRegistry } from './principals.js';
import { KmsState } from './kms/state.js';
import { AuditLog } from '../audit/log.js';
import { auditLogPath } from '../audit/paths.js';
import { startGatewayServer } from './server.js';
import { resumeReshares } from './reshare-resume.js';
import { resumeCreations, sweepPending } from './create-resume.js';
import { recoverKeys } from './key-recovery.js';
import { recoverBeforePolicy, recoverGateway, recovering } from './gateway-recovery.js';
import { startHolderRepair } from './holder-repair.js';
import { startSignerActivation } from './activation.js';
import { startKeyRotation } from './key-rotation.js';
import { startKeyDeletion } from './key-deletion.js';
import { startAuditAnchor } from './audit-anchor.js';
import { disableCoreDumps } from '../contract/io/core-dumps.js';
import { limitHeapGrowth } from '../contract/io/heap-growth.js';

async function run(dir: string, genesis: string | undefined, consoleListen: string | undefined): Promise<void> {
  disableCoreDumps();
  limitHeapGrowth();
  const P = gatewayPaths(dir);
  const secret = await readSecretFromStdin('the gateway operator secret');
  const store = await ShareStore.open(P.store, secret);
  secret.fill(0);
  const identity = await loadIdentity(store);
  store.close();
  if (genesis) await adoptGenesis(dir, identity, genesis);
  const config = loadGatewayConfig(dir);
  if (consoleListen !== undefined) config.consoleListen = gatewayConfigSchema.shape.consoleListen.unwrap().parse(consoleListen);
  const log = pino({ base: { party: 'gateway' } });
  const audit = await AuditLog.open(auditLogPath(dir), identity);
  const cluster = new Cluster(config, P.keys, identity, log, () => audit.head());
  const principals = new PrincipalRegistry(P.principals);
  const kmsState = new KmsState(path.join(dir, 'kms-state.json'), cluster.keys);
  // After `gateway init --recover`: governance, principals and the change log from the signers, before they are loaded.
  const recoveryRead = recovering(dir) ? await recoverBeforePolicy(dir, cluster, principals, config.threshold, log) : undefined;
  const policy = GatewayPolicy.load({ dir, config, principals, kmsState, log, clientFor: cluster.clientFor, firstAnswer: cluster.firstAnswer, keys: cluster.keys, audit });
  cluster.retire(policy.retired);
  installGatewayPolicy(policy);
  // A resharing the last run left between its adopts is finished before any request is served.
  await resumeReshares({ cluster, audit, log });
  // So is a key creation it left journaled: completed if every signer holds the key, else rolled back.
  cluster.proposalExecuted = (id) => policy.proposals.finish(id, 'executed', 'ok');
  cluster.rateLimited = (keyId) => policy.keyPolicies.rateLimited(keyId);
  await resumeCreations({ cluster, audit, log, kmsState });
  await sweepPending({ cluster, log });
  // Then a key the signers hold committed and this gateway has no record of (its key file lost) is
  // recovered from them, so it can be kept or deleted under governance.
  const deps = { config, cluster, principals, log, dir, kmsState, audit, identity, sealKind: store.sealerKind };
  // With the whole directory lost, every key, its policy, description and tags, and the aliases.
  if (recoveryRead) await recoverGateway(deps, recoveryRead);
  else await recoverKeys({ cluster, audit, log, kmsState });
  const server = await startGatewayServer(deps);
  const stopDeletion = startKeyDeletion(deps);
  const stopRepair = startHolderRepair(deps);
  // Founding signers under require_attestation answer each other's credentials before any key is made.
  const stopActivation = startSignerActivation(deps);
  const stopRotation = startKeyRotation(deps);
  const anchor = startAuditAnchor(deps);
  log.info({ port: config.port, keys: cluster.keys.list().length }, 'gateway ready');
  const stop = () => {
    log.info('stopping');
    stopDeletion();
    stopRepair();
    stopActivation();
    stopRotation();
    server.close();
    policy.close();
    // The closing checkpoint is anchored at the signers before the clients close.
    void audit
      .close()
      .then(() => anchor.stop())
      .finally(() => {
        cluster.close();
        process.exit(0);
      });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const { values: v } = parseArgs({
    args: rest,
    options: { dir: { type: 'string' }, genesis: { type: 'string' }, 'console-listen': { type: 'string' } },
  });
  if (!v.dir) throw new Error('--dir is required');
  if (command === 'run') return run(v.dir, v.genesis, v['console-listen']);
  throw new Error(`unknown command '${command}' (run; mpchsm gateway init makes its directory)`);
}

main().catch((e: Error) => {
  process.stderr.write(`gateway: ${e.message}\n`);
  process.exit(1);
});
