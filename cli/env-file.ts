// The principals' `NAME.env` files: `export NAME=value` lines a shell can source.

const shellQuote = (v: string) => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);

/** AWS CLI v1 (Debian's `awscli`) reads the region from AWS_DEFAULT_REGION only, so both are set. */
export const formatEnvFile = (vars: Record<string, string>): string =>
  Object.entries({ ...vars, ...(vars.AWS_REGION ? { AWS_DEFAULT_REGION: vars.AWS_REGION } : {}) })
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join('\n') + '\n';

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
