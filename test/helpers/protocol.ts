import { expect } from 'vitest';
import { ProtocolError } from '../../signers/protocols/common.js';
import { type PartyId } from '../../contract/bytes.js';

/**
 * Asserts that `f` throws a ProtocolError with `code`, attributed to `sender` (or to no one),
 * and returns it.
 */
export function expectProtocolError(f: () => unknown, code: string, sender?: PartyId): ProtocolError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    expect((e as ProtocolError).code).toBe(code);
    expect((e as ProtocolError).sender).toBe(sender);
    return e as ProtocolError;
  }
  return expect.unreachable(`expected ProtocolError ${code}`);
}
