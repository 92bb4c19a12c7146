// The gateway's configuration file and what `gateway init` reports to the cluster tool.
import path from 'node:path';
import { z } from 'zod';
import { readJsonFile } from '../signers/node/json-file.js';
import { publicIdentitySchema } from '../signers/node/identity.js';

export const signerEntrySchema = z.object({
  name: z.string().regex(/^[a-z0-9-]{1,32}$/),
  id: z.number().int().min(1).max(255),
  url: z.string().url(),
  identity: publicIdentitySchema,
});
export type SignerEntry = z.infer<typeof signerEntrySchema>;

export const gatewayConfigSchema = z.object({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(1).max(65535),
  /** Where the PKCS#11 module's framed RPC listens (loopback by default). */
  pkcs11Port: z.number().int().min(1).max(65535),
  region: z.string(),
  account: z.string().regex(/^\d{12}$/),
  threshold: z.number().int().min(1),
  signers: z.array(signerEntrySchema).min(1),
  /** Bounded wait for one signer call; a dead or slow signer costs at most this. */
  signerTimeoutMs: z.number().int().positive().default(5000),
  /** How often keys whose holders are not the active signers are reshared (gateway/holder-repair.ts). */
  repairIntervalMs: z.number().int().min(1000).default(60_000),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

export const gatewayInitOutputSchema = z.object({
  identity: publicIdentitySchema,
  region: z.string(),
  pkcs11Conf: z.string(),
});
export type GatewayInitOutput = z.infer<typeof gatewayInitOutputSchema>;

export const gatewayPaths = (dir: string) => ({
  config: path.join(dir, 'config.json'),
  principals: path.join(dir, 'principals.json'),
  keys: path.join(dir, 'keys'),
  store: path.join(dir, 'store'),
  pkcs11Conf: path.join(dir, 'pkcs11.conf'),
});

export function loadGatewayConfig(dir: string): GatewayConfig {
  const file = gatewayPaths(dir).config;
  const config = readJsonFile(file, gatewayConfigSchema);
  if (config.threshold > config.signers.length) throw new Error(`${file}: threshold exceeds the number of signers`);
  return config;
}
