// How a client names a key, and how a party resolves that name by its own tables: a key id,
// a key ARN, an alias name or an alias ARN. One rule for the gateway and every signer, so what
// the client named is the key that is used, whatever a gateway claims.

export const KEY_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** AWS's alias rule: `alias/` then [a-zA-Z0-9/_-], 256 characters in all; `alias/aws/` is AWS's own. */
const ALIAS_NAME_RE = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;

/** Why `name` is not an alias name a client may create, or undefined when it is one. */
export function aliasNameProblem(name: string): string | undefined {
  const shown = JSON.stringify(name.slice(0, 300));
  if (!name.startsWith('alias/')) return `Alias name ${shown} must begin with 'alias/'`;
  if (!ALIAS_NAME_RE.test(name)) return `Alias name ${shown} may contain only letters, digits, '/', '_' and '-' after 'alias/', 256 characters at most in all`;
  // Matched without regard to case, so no look-alike (alias/AWS/…) passes for an AWS alias.
  if (name.toLowerCase().startsWith('alias/aws/')) return `Alias names beginning with 'alias/aws/' are reserved for AWS managed keys`;
  return undefined;
}

export interface KeyNaming {
  region: string;
  account: string;
  /** Alias name → key id, as this party holds them. */
  aliasTarget: (aliasName: string) => string | undefined;
}

/** The key id a client's reference names by these tables, or undefined when it names none. */
export function resolveKeyRef(ref: string, n: KeyNaming): string | undefined {
  const arnPrefix = `arn:aws:kms:${n.region}:${n.account}:`;
  const name = ref.startsWith(arnPrefix) ? ref.slice(arnPrefix.length) : ref.startsWith('arn:') ? undefined : ref;
  if (name === undefined) return undefined;
  if (name.startsWith('alias/')) return aliasNameProblem(name) ? undefined : n.aliasTarget(name);
  const id = ref === name ? name : name.startsWith('key/') ? name.slice(4) : undefined;
  return id !== undefined && KEY_ID_RE.test(id) ? id : undefined;
}
