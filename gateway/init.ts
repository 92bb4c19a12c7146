// `mpchsm gateway init`: the gateway's sealed identity, the cluster's PIN key derivation, its
// endpoints and (with a certificate) TLS for both listeners; the public G/gateway.json that goes
// into the genesis. The gateway holds no one's secret: principals make their own.
// `gateway init --recover` (recoverGatewayDir) remakes a lost directory around its restored
// identity store; the first start then rebuilds the rest from the signers (gateway-recovery.ts).
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import path from 'node:path';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { loadIdentity, sealNewIdentity } from '../contract/identity/identity.js';
import { ShareStore } from '../contract/io/sealed-store.js';
import type { ScryptParams } from '../contract/io/seal.js';
import { readJsonFile } from '../contract/io/json-file.js';
import { genesisFileSchema, gatewayFileSchema, readGenesis, type GatewayFile } from '../policy/index.js';
import { gatewayPaths } from './config.js';
import { recoveryMarker } from './gateway-recovery.js';
import { createPinKdf, pinKdfFile } from './principals.js';

const REGION = 'us-east-1';
const ACCOUNT = '111122223333';

export interface GatewayInit {
  kms: { host: string; port: number };
  pkcs11: { host: string; port: number };
  /** PEM files for the KMS endpoint (and the PKCS#11 listener). */
  tls?: { cert: string; key: string };
}

export async function initGateway(dir: string, o: GatewayInit, secret: Uint8Array, scrypt?: ScryptParams): Promise<GatewayFile> {
  const P = gatewayPaths(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let certificate: string | undefined;
  if (o.tls) {
    // Checked before anything is made: a certificate and key that belong together.
    certificate = await readFile(o.tls.cert, 'utf8');
    const cert = new X509Certificate(certificate);
    if (!cert.checkPrivateKey(createPrivateKey(await readFile(o.tls.key)))) throw new Error(`${o.tls.key} is not the key of ${o.tls.cert}`);
  }
  const identity = await sealNewIdentity(P.store, secret, 'gateway', P.identity, {}, scrypt);
  if (o.tls) {
    // One copy serves both listeners.
    await mkdir(path.dirname(P.tls.cert), { recursive: true, mode: 0o700 });
    await copyFile(o.tls.cert, P.tls.cert);
    await writeFileAtomic(P.tls.key, await readFile(o.tls.key), 0o600);
  }
  const kdf = await createPinKdf(dir);
  const p11 = `${o.pkcs11.host}:${o.pkcs11.port}`;
  await writeModuleConfs(dir, p11, o.tls !== undefined);
  const file = gatewayFileSchema.parse({
    Gateway: 'mpchsm-gateway-v1',
    Identity: identity,
    Kms: `${o.tls ? 'https' : 'http'}://${o.kms.host}:${o.kms.port}`,
    ...(certificate ? { Certificate: certificate } : {}),
    Pkcs11: p11,
    Region: REGION,
    Account: ACCOUNT,
    PinKdf: kdf,
  });
  await writeFileAtomic(P.publicFile, Buffer.from(JSON.stringify(file, null, 2) + '\n'), 0o644);
  return file;
}

/** The PKCS#11 module's configuration for clients on this host: where the gateway is. No secret in it. */
async function writeModuleConfs(dir: string, p11: string, tls: boolean): Promise<void> {
  const P = gatewayPaths(dir);
  const pkcs11Conf = pkcs11ModuleConf(p11, path.join(dir, 'pkcs11.log'), tls ? P.tls.cert : undefined);
  await writeFileAtomic(P.pkcs11Conf, Buffer.from(pkcs11Conf), 0o644);
  // libp11 0.4.12 (Debian 12's OpenSSL engine) gives up listing keys at the first Edwards key, so
  // OpenSSL reads a configuration that shows it none.
  await writeFileAtomic(P.pkcs11OpensslConf, Buffer.from(`${pkcs11Conf}key_types = rsa ec\n`), 0o644);
}

/**
 * `gateway init --dir G --recover --genesis FILE`: G holds only what the operator backed up (the
 * sealed identity store G/store and G/identity.json, and G/p11/ with a TLS certificate). The
 * identity must open with the operator's secret and be the one the genesis pins; the public
 * G/gateway.json, the PIN key derivation and the module configurations are written again from
 * the genesis, and the marker makes the next start rebuild the rest from the signers.
 */
export async function recoverGatewayDir(dir: string, genesisFile: string, secret: Uint8Array): Promise<GatewayFile> {
  const P = gatewayPaths(dir);
  if (!existsSync(P.store) || !existsSync(P.identity)) throw new Error(`${dir} lacks the gateway's identity (store/ and identity.json): restore them from the gateway's backup first`);
  const left = [P.genesisDigest, P.config, path.join(dir, 'kms-state.json'), path.join(dir, 'signer-changes.json')].filter((f) => existsSync(f));
  if (left.length > 0) throw new Error(`${dir} is not a lost gateway directory: it still holds ${left.join(', ')}`);
  const g = readGenesis(genesisFile);
  const store = await ShareStore.open(P.store, secret);
  try {
    const identity = await loadIdentity(store);
    if (identity.public.signPublicKey !== g.gateway.identity.signPublicKey) throw new Error(`the identity in ${P.store} is not the gateway ${genesisFile} names`);
  } finally {
    store.close();
  }
  if (g.gateway.certificate && !(existsSync(P.tls.cert) && existsSync(P.tls.key))) throw new Error(`the gateway serves TLS: restore ${path.dirname(P.tls.cert)} from the gateway's backup first`);
  const file = gatewayFileSchema.parse(readJsonFile(genesisFile, genesisFileSchema).Genesis.Gateway);
  await writeFileAtomic(pinKdfFile(dir), Buffer.from(JSON.stringify(file.PinKdf, null, 2) + '\n'), 0o644);
  await writeModuleConfs(dir, file.Pkcs11, file.Certificate !== undefined);
  await writeFileAtomic(P.publicFile, Buffer.from(JSON.stringify(file, null, 2) + '\n'), 0o644);
  await writeFileAtomic(recoveryMarker(dir), Buffer.from(JSON.stringify({ genesis: g.digest, at: new Date().toISOString() }) + '\n'), 0o600);
  return file;
}

/** The PKCS#11 module's configuration file: the gateway's PKCS#11 address, the log, TLS and the CA to trust. */
export const pkcs11ModuleConf = (gateway: string, log: string, tlsCa?: string): string =>
  `# mpchsm PKCS#11 module configuration\ngateway = ${gateway}\nlog = ${log}\n${tlsCa ? `tls = on\ntls_ca = ${tlsCa}\n` : ''}`;
