import { describe, expect, it } from 'vitest';
import { aliasNameProblem, resolveKeyRef } from '../../policy/key-refs.js';
import { ACCOUNT, KEY_ARN, KEY_ID, REGION } from './fixtures.js';

const OTHER = '0b5e7f3a-9c1d-4e2f-8a6b-3c4d5e6f7a8b';

describe('alias names', () => {
  it('take AWS’s rule: alias/ and [a-zA-Z0-9/_-], 256 characters in all, never alias/aws/', () => {
    for (const good of ['alias/a', 'alias/my-app_1/x', `alias/${'x'.repeat(250)}`, `alias/${KEY_ID}`]) expect(aliasNameProblem(good)).toBeUndefined();
    for (const bad of [KEY_ID, `key/${KEY_ID}`, KEY_ARN, `arn:aws:kms:${REGION}:${ACCOUNT}:alias/a`, 'alias/', 'alias/sp ace', 'alias/a:b', `alias/${'x'.repeat(251)}`, 'alias/aws/ebs', 'alias/AWS/ebs', 'payments'])
      expect(aliasNameProblem(bad), bad).toBeTypeOf('string');
  });
});

describe('key references', () => {
  // A table a lying gateway might have planted: names shaped like another key's id or ARN.
  const table: Record<string, string> = { 'alias/release': KEY_ID, [OTHER]: KEY_ID, [`key/${OTHER}`]: KEY_ID };
  const resolve = (ref: string) => resolveKeyRef(ref, { region: REGION, account: ACCOUNT, aliasTarget: (a) => table[a] });

  it('resolve ids, key ARNs, alias names and alias ARNs by the party’s own table', () => {
    expect(resolve(KEY_ID)).toBe(KEY_ID);
    expect(resolve(KEY_ARN)).toBe(KEY_ID);
    expect(resolve('alias/release')).toBe(KEY_ID);
    expect(resolve(`arn:aws:kms:${REGION}:${ACCOUNT}:alias/release`)).toBe(KEY_ID);
  });

  it('a key id or key ARN names that key, never what an alias table says of it', () => {
    expect(resolve(OTHER)).toBe(OTHER);
    expect(resolve(`arn:aws:kms:${REGION}:${ACCOUNT}:key/${OTHER}`)).toBe(OTHER);
    expect(resolve(`key/${OTHER}`)).toBeUndefined();
  });

  it('names nothing for unknown aliases, foreign ARNs and malformed references', () => {
    for (const ref of ['alias/unknown', `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${KEY_ID}`, `arn:aws:kms:${REGION}:999999999999:key/${KEY_ID}`, 'not-a-key', KEY_ID.toUpperCase(), `${KEY_ARN}/x`])
      expect(resolve(ref), ref).toBeUndefined();
  });
});
