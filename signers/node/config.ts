// A signer's configuration: who it is, where it listens, and the identities it pins.
import path from 'node:path';
import { z } from 'zod';
import { readJsonFile } from '../../contract/io/json-file.js';
import { publicIdentitySchema } from '../../contract/identity/identity.js';

export const peerSchema = z.strictObject({
  name: z.string(),
  id: z.number().int().min(1).max(255),
  identity: publicIdentitySchema,
});
export type Peer = z.infer<typeof peerSchema>;

/** HOST:PORT (an IPv6 host in brackets) as the host and port to listen on. */
export function splitListen(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(address.slice(at + 1)) };
}

/** A loopback HOST:PORT (127.x.x.x, localhost or [::1]): a metrics listener is never reachable from elsewhere. */
const loopbackListen = z
  .string()
  .regex(/^(127(\.\d{1,3}){3}|localhost|\[::1\]):\d{1,5}$/, 'a loopback HOST:PORT (127.0.0.1:PORT, localhost:PORT or [::1]:PORT)')
  .refine((v) => splitListen(v).port >= 1 && splitListen(v).port <= 65535, 'a port from 1 to 65535');

export const signerConfigSchema = z.strictObject({
  name: z.string(),
  id: z.number().int().min(1).max(255),
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(1).max(65535),
  /** The cluster's threshold: sessions with fewer participants are refused. */
  threshold: z.number().int().min(1),
  /** The gateway's identity: the only caller this signer answers. */
  gateway: publicIdentitySchema,
  /** Every signer of the cluster, this one included, as admitted at configuration. */
  peers: z.array(peerSchema).min(1),
  /** Where GET /metrics answers in plain HTTP, unauthenticated (signers/node/metrics.ts); absent, the default: nowhere. */
  metricsListen: loopbackListen.optional(),
});
export type SignerConfig = z.infer<typeof signerConfigSchema>;

export const signerPaths = (dir: string) => ({
  config: path.join(dir, 'config.json'),
  identity: path.join(dir, 'identity.json'),
  store: path.join(dir, 'store'),
});

export function loadSignerConfig(dir: string): SignerConfig {
  const file = signerPaths(dir).config;
  const c = readJsonFile(file, signerConfigSchema);
  if (!c.peers.some((p) => p.id === c.id && p.name === c.name)) throw new Error(`${file}: this signer is not among its peers`);
  if (new Set(c.peers.map((p) => p.id)).size !== c.peers.length) throw new Error(`${file}: duplicate peer ids`);
  if (c.threshold > c.peers.length) throw new Error(`${file}: threshold exceeds the number of signers`);
  return c;
}
