// Where a local cluster keeps its files under DIR (see shared/CONTRACT.md). Light on purpose:
// `status` and `down` load it; the identities pinned there are pinned.ts's.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
