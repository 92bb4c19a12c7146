// The cluster directory as the read-only commands (`mpchsm audit verify|show`, `mpchsm doctor`)
// see it: its signers, threshold, URLs and pids from the gateway config, cluster.json and the
// signers/ folder; the identities pinned for each party; and the output pieces those commands
// share (Io, the exit status for an unreadable DIR, `list`). It reads and never writes.

import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { AuditKey } from '../audit/chain.js';
import { fingerprint, parsePublicIdentity } from '../contract/identity/identity.js';
import { layout, type Layout } from './layout.js';
import { readJsonFileIfExists } from '../contract/io/json-file.js';

export interface Io {
  out(line: string): void;
  err(line: string): void;
}
export const consoleIo: Io = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** Exit status when DIR is not a readable cluster directory. */
export const EXIT_UNREADABLE = 2;

const gatewayConfigSchema = z.object({
  threshold: z.number().int().optional(),
  signers: z.array(z.object({ name: z.string(), url: z.string().optional(), identity: z.unknown() })).default([]),
});
const clusterJsonSchema = z.object({
  gateway: z.object({ pid: z.number().int(), url: z.string() }).optional(),
  signers: z.array(z.object({ name: z.string(), pid: z.number().int(), url: z.string() })).default([]),
  threshold: z.number().int().optional(),
});

/** A file of DIR, or undefined if there is none; a damaged file throws naming itself. */
export const readJson = readJsonFileIfExists;

/** `readJson`, but a file that cannot be read or is refused is handed to `refused` (the message names it) and taken as absent. */
export function readJsonOr<T>(file: string, schema: z.ZodType<T>, refused: (message: string) => void): T | undefined {
  try {
    return readJson(file, schema);
  } catch (e) {
    refused((e as Error).message);
    return undefined;
  }
}

export const keyOf = (doc: unknown): AuditKey => {
  const id = parsePublicIdentity(doc);
  return { fingerprint: fingerprint(id), signPublicKey: id.signPublicKey };
};
/** identity.json carries the signer's numeric id next to the public identity document; this is the document. */
export const identitySchema = z.record(z.string(), z.unknown()).transform(({ id: _id, ...doc }) => doc);

export interface Cluster {
  L: Layout;
  signers: string[];
  threshold?: number;
  urls: Map<string, string>;
  pids: Map<string, number>;
  gatewayPid?: number;
  gatewayConfig?: z.infer<typeof gatewayConfigSchema>;
}

export function readCluster(dir: string): Cluster | string {
  const L = layout(dir);
  if (!existsSync(L.root)) return `${L.root} does not exist`;
  try {
    const gatewayConfig = readJson(path.join(L.gateway, 'config.json'), gatewayConfigSchema);
    const cluster = readJson(L.clusterJson, clusterJsonSchema);
    const signersDir = path.join(L.root, 'signers');
    const dirs = existsSync(signersDir) ? readdirSync(signersDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name) : [];
    const signers = [...new Set([...(gatewayConfig?.signers.map((s) => s.name) ?? []), ...(cluster?.signers.map((s) => s.name) ?? []), ...dirs])].sort();
    if (signers.length === 0 && !existsSync(L.gateway)) return `${L.root} holds no gateway and no signers: not an mpchsm cluster directory`;
    const urls = new Map<string, string>();
    for (const s of gatewayConfig?.signers ?? []) if (s.url) urls.set(s.name, s.url);
    for (const s of cluster?.signers ?? []) urls.set(s.name, s.url);
    return {
      L,
      signers,
      threshold: gatewayConfig?.threshold ?? cluster?.threshold,
      urls,
      pids: new Map(cluster?.signers.map((s) => [s.name, s.pid])),
      gatewayPid: cluster?.gateway?.pid,
      gatewayConfig,
    };
  } catch (e) {
    return `cannot read ${L.root}: ${(e as Error).message}`;
  }
}

/** 'a', 'a and b', 'a, b and c'. */
export const list = (names: string[]) => (names.length < 3 ? names.join(' and ') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`);
