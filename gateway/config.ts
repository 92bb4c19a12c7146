// The gateway's configuration file and what `gateway init` reports to the cluster tool.
import path from 'node:path';
import { z } from 'zod';
import { readJsonFile } from '../contract/io/json-file.js';
import { publicIdentitySchema } from '../contract/identity/identity.js';

export const signerEntrySchema = z.object({
  name: z.string().regex(/^[a-z0-9-]{1,32}$/),
  id: z.number().int().min(1).max(255),
  /** HTTPS only: the channel is mutual TLS with the pinned identity keys (contract/identity/tls.ts). */
  url: z.string().url().regex(/^https:\/\//, 'a signer URL is https://'),
  identity: publicIdentitySchema,
});
export type SignerEntry = z.infer<typeof signerEntrySchema>;

export const gatewayConfigSchema = z.object({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(1).max(65535),
  /** Where the PKCS#11 module's framed RPC listens (the KMS endpoint's host unless given). */
  pkcs11Host: z.string().optional(),
  pkcs11Port: z.number().int().min(1).max(65535),
  region: z.string(),
  account: z.string().regex(/^\d{12}$/),
  threshold: z.number().int().min(1),
  signers: z.array(signerEntrySchema).min(1),
  /** Bounded wait for one signer call; a dead or slow signer costs at most this. */
  signerTimeoutMs: z.number().int().positive().default(5000),
  /**
   * How long a Sign or Decrypt waits, over all its attempts, for t signers to answer: with fewer
   * by then it fails (DependencyTimeoutException). See docs/operations.md, "Faults and their bounds".
   */
  quorumWaitMs: z.number().int().min(500).default(4000),
  /** Signer sessions (and authentications) in flight at once; more wait their turn, in order (gateway/slots.ts). */
  sessionsInFlight: z.number().int().min(1).default(8),
  /** How often keys whose holders are not the active signers are reshared (gateway/holder-repair.ts). */
  repairIntervalMs: z.number().int().min(1000).default(60_000),
  // Limits on both listeners: what a client that has not authenticated can make the gateway hold.
  /** Most open PKCS#11 connections; at the cap a new one evicts the oldest not logged in. */
  pkcs11MaxConnections: z.number().int().min(16).default(2048),
  /** Largest PKCS#11 frame without a valid session credential in its header (a login is far smaller). */
  pkcs11PreLoginFrameBytes: z.number().int().min(1024).max(32 * 1024 * 1024).default(64 * 1024),
  /** A PKCS#11 connection with no login and no request in flight is closed after this. */
  pkcs11PreLoginIdleMs: z.number().int().min(100).default(10_000),
  /** A logged-in PKCS#11 connection with no request in flight is closed after this (the module reuses one for at most 60 s). */
  pkcs11IdleMs: z.number().int().min(1000).default(300_000),
  /** A PKCS#11 login (C_Login's session credential) ends after this, or at C_Logout or C_Finalize. */
  pkcs11LoginLifetimeMs: z.number().int().min(1000).default(8 * 3600_000),
  /** PKCS#11 requests without a login are counted and written to the audit log once per this interval. */
  unauthenticatedAuditMs: z.number().int().min(100).default(60_000),
  /** Most open KMS/health HTTP connections; at the cap idle keep-alive connections, then the oldest without a request, are closed. */
  kmsMaxConnections: z.number().int().min(16).default(1024),
  /** An HTTP request's headers must arrive within this, and the whole request within kmsRequestTimeoutMs. */
  kmsHeadersTimeoutMs: z.number().int().min(100).default(10_000),
  kmsRequestTimeoutMs: z.number().int().min(100).default(30_000),
  /** GET /health answers from a view of the signers at most this old; concurrent calls share one check. */
  healthCacheMs: z.number().int().min(0).default(1000),
  /**
   * When present, the KMS/health listener serves HTTPS with this certificate (chain) and key:
   * PEM files, relative to the gateway directory or absolute.
   */
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
  /** HOST:PORT of the approval console (gateway/console/), HTTPS with `tls` when given; absent: no console. */
  consoleListen: z.string().regex(/^[A-Za-z0-9.:-]+:\d{1,5}$/).optional(),
  /**
   * The origin approvers' browsers see (WebAuthn credentials are scoped to its host name); by
   * default http(s)://localhost:PORT for a console on a loopback address, else http(s)://HOST:PORT.
   */
  consoleOrigin: z.string().regex(/^https?:\/\/[a-z0-9.-]+(?::\d{1,5})?$/).optional(),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

export const gatewayPaths = (dir: string) => ({
  config: path.join(dir, 'config.json'),
  identity: path.join(dir, 'identity.json'),
  /** The public file that goes into the genesis (gateway/init.ts). */
  publicFile: path.join(dir, 'gateway.json'),
  /** The digest of the genesis this gateway was founded on. */
  genesisDigest: path.join(dir, 'genesis.digest'),
  /** The certificate and key `gateway init --tls-cert/--tls-key` copies: the PKCS#11 listener serves TLS when they exist, the KMS listener when its config names them. */
  tls: { cert: path.join(dir, 'p11', 'tls.crt'), key: path.join(dir, 'p11', 'tls.key') },
  principals: path.join(dir, 'principals.json'),
  keys: path.join(dir, 'keys'),
  store: path.join(dir, 'store'),
  pkcs11Conf: path.join(dir, 'pkcs11.conf'),
  /** For OpenSSL's libp11 engine: the same, without Edwards keys (see gateway/main.ts). */
  pkcs11OpensslConf: path.join(dir, 'pkcs11-openssl.conf'),
});

/** The KMS listener's certificate and key files, if the configuration names them. */
export function kmsTlsFiles(dir: string, config: GatewayConfig): { cert: string; key: string } | undefined {
  return config.tls && { cert: path.resolve(dir, config.tls.cert), key: path.resolve(dir, config.tls.key) };
}

export function loadGatewayConfig(dir: string): GatewayConfig {
  const file = gatewayPaths(dir).config;
  const config = readJsonFile(file, gatewayConfigSchema);
  if (config.threshold > config.signers.length) throw new Error(`${file}: threshold exceeds the number of signers`);
  if (config.kmsHeadersTimeoutMs > config.kmsRequestTimeoutMs) throw new Error(`${file}: kmsHeadersTimeoutMs exceeds kmsRequestTimeoutMs`);
  return config;
}
