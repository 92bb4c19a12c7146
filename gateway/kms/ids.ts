// Key and alias identifiers as AWS KMS writes them: key id (UUID), key ARN
// `arn:aws:kms:REGION:ACCOUNT:key/ID`, alias name `alias/NAME`, alias ARN
// `arn:aws:kms:REGION:ACCOUNT:alias/NAME`.
import { aliasNameProblem } from '../../policy/key-refs.js';
import { KmsError } from './errors.js';

const ALIAS_PREFIX = 'alias/';

export type KeyRef = { kind: 'key'; keyId: string } | { kind: 'alias'; aliasName: string };

export class Arns {
  private readonly prefix: string;
  constructor(
    readonly region: string,
    readonly account: string,
  ) {
    this.prefix = `arn:aws:kms:${region}:${account}:`;
  }

  key(keyId: string): string {
    return `${this.prefix}key/${keyId}`;
  }

  alias(aliasName: string): string {
    return `${this.prefix}${aliasName}`;
  }

  /**
   * Parses a KeyId parameter. Foreign or malformed ARNs name no key of this account, so they
   * are NotFoundException, as AWS answers for a key it does not have.
   */
  parseKeyRef(value: string): KeyRef {
    if (value.startsWith('arn:')) {
      if (!value.startsWith(this.prefix)) throw new KmsError('NotFoundException', `Invalid arn '${value.slice(0, 256)}': not a key or alias of account ${this.account} in ${this.region}`);
      const rest = value.slice(this.prefix.length);
      if (rest.startsWith('key/')) return { kind: 'key', keyId: rest.slice(4) };
      if (rest.startsWith(ALIAS_PREFIX)) return { kind: 'alias', aliasName: rest };
      throw new KmsError('NotFoundException', `Invalid arn '${value.slice(0, 256)}': expected key/ID or alias/NAME after the account`);
    }
    if (value.startsWith(ALIAS_PREFIX)) return { kind: 'alias', aliasName: value };
    return { kind: 'key', keyId: value };
  }
}

/** Checks an alias name for CreateAlias/UpdateAlias/DeleteAlias: the signers' own rule (policy/key-refs.ts). */
export function checkAliasName(name: string): void {
  const problem = aliasNameProblem(name);
  if (problem) throw new KmsError('ValidationException', problem);
}
