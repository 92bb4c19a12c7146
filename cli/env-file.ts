// The principals' `NAME.env` files: `export NAME=value` lines a shell can source.
import type { NewPrincipal } from '../gateway/principals.js';
import { entry } from './layout.js';

const shellQuote = (v: string) => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);

/** AWS CLI v1 (Debian's `awscli`) reads the region from AWS_DEFAULT_REGION only, so both are set. */
export const formatEnvFile = (vars: Record<string, string>): string =>
  Object.entries({ ...vars, ...(vars.AWS_REGION ? { AWS_DEFAULT_REGION: vars.AWS_REGION } : {}) })
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join('\n') + '\n';

/**
 * The variables of every NAME.env (shared/CONTRACT.md): credentials, region, endpoint (and the
 * certificate to trust), PKCS#11 module, its configuration and PIN. For OpenSSL's libp11 engine
 * also PKCS11_MODULE_PATH (which it loads instead of p11-kit's proxy) and a configuration without
 * Edwards keys, which libp11 0.4.12 cannot list past (gateway/init.ts).
 */
export function principalEnvVars(c: Pick<NewPrincipal, 'accessKeyId' | 'secretAccessKey' | 'pin'>, at: { kms: string; region: string; caBundle?: string }, confs: { pkcs11Conf: string; pkcs11OpensslConf: string }): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
    AWS_REGION: at.region,
    MPCHSM_KMS_ENDPOINT: at.kms,
    ...(at.caBundle ? { AWS_CA_BUNDLE: at.caBundle } : {}),
    MPCHSM_PKCS11_MODULE: entry.pkcs11Module,
    MPCHSM_PKCS11_CONF: confs.pkcs11Conf,
    MPCHSM_PKCS11_OPENSSL_CONF: confs.pkcs11OpensslConf,
    PKCS11_MODULE_PATH: entry.pkcs11Module,
    MPCHSM_PKCS11_PIN: c.pin,
  };
}

/** Parses `export NAME=value` lines, undoing the single-quoting `formatEnvFile` applies. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if (v.startsWith("'")) v = v.slice(1, -1).replace(/'\\''/g, "'");
    out[m[1]!] = v;
  }
  return out;
}
