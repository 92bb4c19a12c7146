// Where a local cluster keeps its files under DIR (see shared/CONTRACT.md), and the identities
// pinned there.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parsePublicIdentity, type PublicIdentity } from '../contract/identity/identity.js';
import { readJsonFile } from '../contract/io/json-file.js';
import { readGenesis } from '../policy/index.js';

/** Root of the installed package: the nearest folder above this file holding package.json. */
function findPackageRoot(from: string): string {
  for (let d = from; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, 'package.json'))) return d;
    if (path.dirname(d) === d) throw new Error(`no package.json above ${from}`);
  }
}
export const packageRoot = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

export const BOOTSTRAP_PRINCIPALS = ['admin1', 'admin2', 'admin3', 'app', 'auditor'] as const;
export type BootstrapPrincipal = (typeof BOOTSTRAP_PRINCIPALS)[number];

export function layout(dir: string) {
  const root = path.resolve(dir);
  return {
    root,
    clusterJson: path.join(root, 'cluster.json'),
    settingsJson: path.join(root, 'settings.json'),
    /** The cluster's founding document, signed by every founding administrator. */
    genesis: path.join(root, 'genesis.json'),
    principals: path.join(root, 'principals'),
    principalEnv: (name: string) => path.join(root, 'principals', `${name}.env`),
    gateway: path.join(root, 'gateway'),
    signer: (name: string) => path.join(root, 'signers', name),
    operators: path.join(root, 'operators'),
    operatorSecret: (name: string) => path.join(root, 'operators', `${name}.secret`),
    logs: path.join(root, 'logs'),
    log: (name: string) => path.join(root, 'logs', `${name}.log`),
  };
}
export type Layout = ReturnType<typeof layout>;

/** The compiled entry points the cluster runs, one process each. */
export const entry = {
  signer: path.join(packageRoot, 'dist', 'signers', 'node', 'main.js'),
  gateway: path.join(packageRoot, 'dist', 'gateway', 'main.js'),
  pkcs11Module: path.join(packageRoot, 'pkcs11-shim', 'build', 'libmpchsm-pkcs11.so'),
};

export const signerName = (i: number) => `signer${i}`;

const pinnedSchema = z.object({ id: z.number().int().min(1).max(255) }).passthrough();

/**
 * The identities pinned for the signers named in `names`, with their party ids: the founding
 * signers' from DIR/genesis.json, those admitted later from DIR/signers/NAME/identity.json.
 * Callers name the active signers as the gateway reports them: it can leave one out, never add
 * an identity.
 */
export function pinnedSigners(dir: string, names: readonly string[]): { name: string; party: number; identity: PublicIdentity; attestation?: unknown }[] {
  const L = layout(dir);
  const founding = existsSync(L.genesis) ? readGenesis(L.genesis).signers : [];
  return readdirSync(path.join(L.root, 'signers'))
    .filter((name) => names.includes(name))
    .sort()
    .map((name) => {
      const f = founding.find((s) => s.name === name);
      if (f) return { name, party: f.id, identity: f.identity, ...(f.attestation ? { attestation: f.attestation } : {}) };
      const { id, ...identity } = readJsonFile(path.join(L.signer(name), 'identity.json'), pinnedSchema);
      return { name, party: id, identity: parsePublicIdentity(identity) };
    });
}

/** The gateway's identity as pinned in DIR/gateway/identity.json. */
export const pinnedGateway = (dir: string): PublicIdentity => parsePublicIdentity(readJsonFile(path.join(layout(dir).gateway, 'identity.json'), z.unknown()));
