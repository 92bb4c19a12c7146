import { describe, expect, it } from 'vitest';
import { ClusterError } from '../../gateway/cluster-outcome.js';
import { KmsError, asKmsError, fromClusterError } from '../../gateway/kms/errors.js';
import { Arns, checkAliasName } from '../../gateway/kms/ids.js';
import { parseInput, parseJsonBody } from '../../gateway/kms/input.js';
import { CreateKey } from '../../gateway/kms/ops/keys.js';
import { Sign } from '../../gateway/kms/ops/crypto.js';
import { TagResource } from '../../gateway/kms/ops/tags.js';
import { page, pageFields } from '../../gateway/kms/paging.js';

function thrown(f: () => unknown): KmsError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(KmsError);
    return e as KmsError;
  }
  throw new Error('expected a KmsError');
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const sign = (body: unknown) => parseInput(Sign.input, body, 'Sign');

describe('input validation', () => {
  it('parses a valid Sign request and decodes its blob', () => {
    const v = sign({ KeyId: 'alias/x', Message: b64('hello'), SigningAlgorithm: 'ED25519_SHA_512' });
    expect(Buffer.from(v.Message).toString()).toBe('hello');
    expect(v.MessageType).toBeUndefined();
  });

  it('a missing required member is a ValidationException in AWS words', () => {
    const e = thrown(() => sign({ KeyId: 'k', SigningAlgorithm: 'ED25519_SHA_512' }));
    expect(e.type).toBe('ValidationException');
    expect(e.message).toBe("1 validation error detected: Value null at 'Message' failed to satisfy constraint: Member must not be null");
  });

  it('null counts as absent', () => {
    expect(thrown(() => sign({ KeyId: 'k', Message: null, SigningAlgorithm: 'ED25519_SHA_512' })).message).toMatch(/Value null at 'Message'/);
    expect(sign({ KeyId: 'k', Message: b64('m'), SigningAlgorithm: 'ED25519_SHA_512', DryRun: null }).DryRun).toBeUndefined();
  });

  it('a wrong JSON type is a SerializationException naming the member', () => {
    const e = thrown(() => sign({ KeyId: 5, Message: b64('m'), SigningAlgorithm: 'ED25519_SHA_512' }));
    expect(e.type).toBe('SerializationException');
    expect(e.message).toBe("'KeyId' must be a string, not number");
    expect(thrown(() => sign({ KeyId: 'k', Message: b64('m'), SigningAlgorithm: 'ED25519_SHA_512', DryRun: 'yes' })).type).toBe('SerializationException');
    expect(thrown(() => parseInput(TagResource.input, { KeyId: 'k', Tags: { TagKey: 'a' } }, 'TagResource')).message).toMatch(/'Tags' must be an array, not object/);
  });

  it('bad base64 is a SerializationException that does not echo the value', () => {
    const e = thrown(() => sign({ KeyId: 'k', Message: 'not*base64!secret', SigningAlgorithm: 'ED25519_SHA_512' }));
    expect(e.type).toBe('SerializationException');
    expect(e.message).toMatch(/'Message' is not valid base64/);
    expect(e.message).not.toMatch(/secret/);
    expect(thrown(() => sign({ KeyId: 'k', Message: 'aGVsbG8', SigningAlgorithm: 'ED25519_SHA_512' })).type).toBe('SerializationException');
  });

  it('byte limits on blobs are checked after decoding (RAW ≤ 4096 bytes)', () => {
    expect(sign({ KeyId: 'k', Message: Buffer.alloc(4096).toString('base64'), SigningAlgorithm: 'ED25519_SHA_512' }).Message.length).toBe(4096);
    const e = thrown(() => sign({ KeyId: 'k', Message: Buffer.alloc(4097).toString('base64'), SigningAlgorithm: 'ED25519_SHA_512' }));
    expect(e.type).toBe('ValidationException');
    expect(e.message).toMatch(/at 'Message' failed to satisfy constraint: Member must have length less than or equal to 4096 bytes/);
    expect(thrown(() => sign({ KeyId: 'k', Message: '', SigningAlgorithm: 'ED25519_SHA_512' })).message).toMatch(/greater than or equal to 1/);
  });

  it('an enum value outside the set lists the valid values', () => {
    const e = thrown(() => sign({ KeyId: 'k', Message: b64('m'), SigningAlgorithm: 'RSA_MAGIC' }));
    expect(e.type).toBe('ValidationException');
    expect(e.message).toMatch(/Value 'RSA_MAGIC' at 'SigningAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: \[RSASSA_PSS_SHA_256, /);
  });

  it('unknown members are refused, naming them and the real parameters', () => {
    const e = thrown(() => sign({ KeyId: 'k', Message: b64('m'), SigningAlgorithm: 'ED25519_SHA_512', SigningAlgorithms: 'x' }));
    expect(e.type).toBe('ValidationException');
    expect(e.message).toMatch(/Sign has no parameter 'SigningAlgorithms'; its parameters are KeyId, Message, MessageType, SigningAlgorithm/);
    const nested = thrown(() => parseInput(TagResource.input, { KeyId: 'k', Tags: [{ TagKey: 'a', TagValue: 'b', Extra: 1 }] }, 'TagResource'));
    expect(nested.message).toMatch(/'Tags\[0\]' has no member 'Extra'/);
  });

  it('reports several constraint violations at once, and numeric bounds as values', () => {
    const e = thrown(() => parseInput(CreateKey.input, { Description: 'x'.repeat(8193), KeySpec: 'NOPE' }, 'CreateKey'));
    expect(e.message).toMatch(/^2 validation errors detected: /);
  });

  it('the body must be a JSON object; invalid JSON is not echoed', () => {
    expect(parseJsonBody(new Uint8Array())).toEqual({});
    const e = thrown(() => parseJsonBody(new TextEncoder().encode('{"Plaintext": "c2VjcmV0", oops')));
    expect(e.type).toBe('SerializationException');
    expect(e.message).toBe('The request body is not valid JSON');
    expect(thrown(() => sign([1, 2])).type).toBe('SerializationException');
    expect(thrown(() => sign('str')).type).toBe('SerializationException');
  });
});

describe('identifiers', () => {
  const arns = new Arns('us-east-1', '111122223333');
  it('parses key ids, key ARNs, alias names and alias ARNs', () => {
    expect(arns.parseKeyRef('1234abcd-12ab-34cd-56ef-1234567890ab')).toEqual({ kind: 'key', keyId: '1234abcd-12ab-34cd-56ef-1234567890ab' });
    expect(arns.parseKeyRef('arn:aws:kms:us-east-1:111122223333:key/abc')).toEqual({ kind: 'key', keyId: 'abc' });
    expect(arns.parseKeyRef('alias/app')).toEqual({ kind: 'alias', aliasName: 'alias/app' });
    expect(arns.parseKeyRef('arn:aws:kms:us-east-1:111122223333:alias/app')).toEqual({ kind: 'alias', aliasName: 'alias/app' });
  });
  it('foreign or malformed ARNs are NotFoundException', () => {
    expect(thrown(() => arns.parseKeyRef('arn:aws:kms:eu-west-1:111122223333:key/abc')).type).toBe('NotFoundException');
    expect(thrown(() => arns.parseKeyRef('arn:aws:kms:us-east-1:999999999999:key/abc')).type).toBe('NotFoundException');
    expect(thrown(() => arns.parseKeyRef('arn:aws:kms:us-east-1:111122223333:grant/abc')).type).toBe('NotFoundException');
  });
  it('alias names: prefix, characters, reserved alias/aws/', () => {
    expect(() => checkAliasName('alias/my-app_1/x')).not.toThrow();
    for (const bad of ['my-app', 'alias/', 'alias/sp ace', 'alias/aws/ebs', 'alias/AWS/ebs']) {
      expect(thrown(() => checkAliasName(bad)).type).toBe('ValidationException');
    }
  });
});

describe('paging', () => {
  const items = ['a', 'b', 'c', 'd', 'e'];
  const id = (s: string) => s;
  it('walks all items exactly once with Limit/Marker', () => {
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const p = page(items, id, 2, marker);
      seen.push(...p.items);
      marker = p.nextMarker;
      expect(pageFields(p).Truncated).toBe(marker !== undefined);
      pages++;
    } while (marker);
    expect(seen).toEqual(items);
    expect(pages).toBe(3);
  });
  it('a page ending exactly at the end is not truncated', () => {
    expect(pageFields(page(items, id, 5))).toEqual({ Truncated: false });
  });
  it('continues after the marker even if the marked item was removed', () => {
    const first = page(items, id, 2);
    expect(page(['a', 'c', 'd', 'e'], id, 2, first.nextMarker).items).toEqual(['c', 'd']);
  });
  it('refuses markers it did not issue', () => {
    expect(thrown(() => page(items, id, 2, '!!not-a-marker')).type).toBe('InvalidMarkerException');
    expect(thrown(() => page(items, id, 2, 'YQ==')).type).toBe('InvalidMarkerException'); // padded: not ours
  });
});

describe('error mapping', () => {
  const key = { keyId: 'k', state: 'Disabled' } as Parameters<typeof fromClusterError>[1];
  it('maps each ClusterError code to the AWS error and status', () => {
    const cases: [ConstructorParameters<typeof ClusterError>[0], string, number][] = [
      ['not-found', 'NotFoundException', 400],
      ['invalid-usage', 'InvalidKeyUsageException', 400],
      ['unsupported', 'UnsupportedOperationException', 400],
      ['quorum-unavailable', 'DependencyTimeoutException', 503],
      ['signer-refused', 'KMSInternalException', 500],
      ['internal', 'KMSInternalException', 500],
    ];
    for (const [code, type, status] of cases) {
      const e = fromClusterError(new ClusterError(code, 'm'), undefined, 'arn');
      expect([e.type, e.status]).toEqual([type, status]);
    }
  });
  it('invalid-state follows the key: Disabled → DisabledException, PendingDeletion → KMSInvalidStateException', () => {
    expect(fromClusterError(new ClusterError('invalid-state', 'x'), key, 'arn:k').body()).toEqual({ __type: 'DisabledException', message: 'arn:k is disabled.' });
    const pending = { ...key!, state: 'PendingDeletion' } as typeof key;
    expect(fromClusterError(new ClusterError('invalid-state', 'x'), pending, 'arn:k').body()).toEqual({ __type: 'KMSInvalidStateException', message: 'arn:k is pending deletion.' });
  });
  it('anything else is KMSInternalException without its message or stack', () => {
    const e = asKmsError(new TypeError('secret detail at /work/main/x.ts:1'));
    expect(e.body()).toEqual({ __type: 'KMSInternalException', message: 'An internal error occurred; see the gateway log' });
    expect(e.status).toBe(500);
  });
});
