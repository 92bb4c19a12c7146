// The gateway daemon: `init` (identity, PIN key derivation, config) and `run` (serve). The
// bootstrap principals are made by `mpchsm up`, never here: the gateway holds no one's secret.
// The gateway operator's secret, which unlocks the gateway's identity store, arrives on stdin.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { z } from 'zod';
import { readSecretFromStdin } from '../contract/io/stdin.js';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { createIdentity, exportPublicIdentity, loadIdentity, parsePublicIdentity } from '../contract/identity/identity.js';
import { ShareStore } from '../contract/io/sealed-store.js';
import { Cluster } from './cluster.js';
import { GatewayPolicy, installGatewayPolicy } from './governance.js';
import { gatewayConfigSchema, gatewayPaths, loadGatewayConfig, type GatewayInitOutput } from './config.js';
import { createPinKdf, PrincipalRegistry } from './principals.js';
import { KmsState } from './kms/state.js';
import { AuditLog } from '../audit/log.js';
import { auditLogPath } from '../audit/paths.js';
import { startGatewayServer } from './server.js';
import { resumeReshares } from './reshare-resume.js';
import { resumeCreations, sweepPending } from './create-resume.js';
import { recoverKeys } from './key-recovery.js';
import { startHolderRepair } from './holder-repair.js';
import { startKeyDeletion } from './key-deletion.js';
import { startAuditAnchor } from './audit-anchor.js';

const REGION = 'us-east-1';
const ACCOUNT = '111122223333';

async function init(dir: string, v: Record<string, string | undefined>): Promise<void> {
  const P = gatewayPaths(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const secret = await readSecretFromStdin('the gateway operator secret');
  const store = await ShareStore.init(P.store, secret);
  secret.fill(0);
  const identity = exportPublicIdentity(await createIdentity(store, 'gateway'));
  store.close();
  await writeFileAtomic(path.join(dir, 'identity.json'), Buffer.from(JSON.stringify(identity, null, 2) + '\n'), 0o644);

  const signers = z
    .array(z.object({ name: z.string(), id: z.number(), url: z.string(), identity: z.unknown() }))
    .parse(JSON.parse(v.signers ?? '[]'))
    .map((s) => ({ ...s, identity: parsePublicIdentity(s.identity) }));
  const config = gatewayConfigSchema.parse({ port: Number(v.port), pkcs11Port: Number(v.port) + 100, region: REGION, account: ACCOUNT, threshold: Number(v.threshold), signers });
  await writeFileAtomic(P.config, Buffer.from(JSON.stringify(config, null, 2) + '\n'), 0o600);

  await createPinKdf(dir);
  // The PKCS#11 module's configuration: where the gateway is. No secret in it.
  const pkcs11Conf = `# mpchsm PKCS#11 module configuration\ngateway = 127.0.0.1:${config.pkcs11Port}\nlog = ${dir}/pkcs11.log\n`;
  await writeFileAtomic(P.pkcs11Conf, Buffer.from(pkcs11Conf), 0o644);
  // libp11 0.4.12 (Debian 12's OpenSSL engine) gives up listing keys at the first Edwards key, so
  // OpenSSL reads a configuration that shows it none.
  await writeFileAtomic(P.pkcs11OpensslConf, Buffer.from(`${pkcs11Conf}key_types = rsa ec\n`), 0o644);
  const out: GatewayInitOutput = { identity, region: REGION };
  process.stdout.write(JSON.stringify(out) + '\n');
}

async function run(dir: string): Promise<void> {
  const P = gatewayPaths(dir);
  const config = loadGatewayConfig(dir);
  const log = pino({ base: { party: 'gateway' } });
  const secret = await readSecretFromStdin('the gateway operator secret');
  const store = await ShareStore.open(P.store, secret);
  secret.fill(0);
  const identity = await loadIdentity(store);
  store.close();
  const audit = await AuditLog.open(auditLogPath(dir), identity);
  const cluster = new Cluster(config, P.keys, identity, log, () => audit.head());
  const principals = new PrincipalRegistry(P.principals);
  const kmsState = new KmsState(path.join(dir, 'kms-state.json'), cluster.keys);
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
  await recoverKeys({ cluster, audit, log, kmsState });
  const deps = { config, cluster, principals, log, dir, kmsState, audit };
  const server = await startGatewayServer(deps);
  const stopDeletion = startKeyDeletion(deps);
  const stopRepair = startHolderRepair(deps);
  const anchor = startAuditAnchor(deps);
  log.info({ port: config.port, keys: cluster.keys.list().length }, 'gateway ready');
  const stop = () => {
    log.info('stopping');
    stopDeletion();
    stopRepair();
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
  const { values: v } = parseArgs({ args: rest, options: { dir: { type: 'string' }, port: { type: 'string' }, threshold: { type: 'string' }, signers: { type: 'string' } } });
  if (!v.dir) throw new Error('--dir is required');
  if (command === 'init') return init(v.dir, v);
  if (command === 'run') return run(v.dir);
  throw new Error(`unknown command '${command}' (init | run)`);
}

main().catch((e: Error) => {
  process.stderr.write(`gateway: ${e.message}\n`);
  process.exit(1);
});
