// The wire is written twice, in C (pkcs11-shim/src/remote/remote.h) and in TypeScript
// (contract/pkcs11/wire.ts): the operation codes, value tags and frame limit read from the C
// header must be the TypeScript ones, so a code added on one side only fails here, not in use.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LOGIN_ENDED, MAX_FRAME, OP, encodeValue } from '../../contract/pkcs11/wire.js';

const header = readFileSync(new URL('../../pkcs11-shim/src/remote/remote.h', import.meta.url), 'utf8');

/** `NAME = value` pairs of the header's enums whose names start with `prefix`. */
function enumValues(prefix: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of header.matchAll(new RegExp(`\\b${prefix}([A-Z0-9_]+)\\s*=\\s*(\\d+)`, 'g'))) out[m[1]!] = Number(m[2]);
  return out;
}

describe('the C module and the gateway speak one wire', () => {
  it('with the same operation codes, and the same mark of an ended login', () => {
    expect(enumValues('OP_')).toEqual(OP);
    expect(enumValues('ANSWER_')).toEqual({ LOGIN_ENDED });
  });

  it('with the same value tags and frame limit', () => {
    const tags = enumValues('WIRE_');
    expect(tags).toEqual({ UINT: encodeValue(1)[0], BYTES: encodeValue(Buffer.of(1))[0], LIST: encodeValue([])[0] });
    const max = /#define WIRE_MAX \((\d+) \* (\d+) \* (\d+)\)/.exec(header);
    expect(max, 'WIRE_MAX as a product in remote.h').not.toBeNull();
    expect(Number(max![1]) * Number(max![2]) * Number(max![3])).toBe(MAX_FRAME);
  });
});
