// The principals' `NAME.env` files: `export NAME=value` lines a shell can source.

const shellQuote = (v: string) => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);

/** AWS CLI v1 (Debian's `awscli`) reads the region from AWS_DEFAULT_REGION only, so both are set. */
export const formatEnvFile = (vars: Record<string, string>): string =>
  Object.entries({ ...vars, ...(vars.AWS_REGION ? { AWS_DEFAULT_REGION: vars.AWS_REGION } : {}) })
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join('\n') + '\n';

/**
 * What a principal's PKCS#11 tools need: the module and its configuration; for OpenSSL's libp11
 * engine, PKCS11_MODULE_PATH (which it loads instead of p11-kit's proxy) and a configuration
 * without Edwards keys, which libp11 0.4.12 cannot list past (gateway/main.ts).
 */
export const pkcs11Env = (module: string, paths: { pkcs11Conf: string; pkcs11OpensslConf: string }): Record<string, string> => ({
  MPCHSM_PKCS11_MODULE: module,
  MPCHSM_PKCS11_CONF: paths.pkcs11Conf,
  MPCHSM_PKCS11_OPENSSL_CONF: paths.pkcs11OpensslConf,
  PKCS11_MODULE_PATH: module,
});

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
