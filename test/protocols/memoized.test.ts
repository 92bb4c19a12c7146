// Public packages are checked once per process: the memo must never turn a failed or different
// input into a remembered success.
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../signers/protocols/common.js';
import { memoized } from '../../contract/memo.js';

describe('memoized checks of public data', () => {
  it('runs the check once per distinct input, never remembers a failure, and stays bounded', () => {
    let calls = 0;
    const check = memoized((raw: unknown) => {
      calls++;
      if ((raw as { ok: boolean }).ok !== true) throw new ProtocolError('malformed', 'not ok');
      return { value: (raw as { v: number }).v };
    }, 2);
    expect(check({ ok: true, v: 1 })).toEqual({ value: 1 });
    expect(check({ ok: true, v: 1 })).toEqual({ value: 1 });
    expect(calls).toBe(1);
    expect(() => check({ ok: false, v: 1 })).toThrow(ProtocolError);
    expect(() => check({ ok: false, v: 1 })).toThrow(ProtocolError);
    expect(calls).toBe(3);
    check({ ok: true, v: 2 });
    check({ ok: true, v: 3 }); // evicts v: 1, the least recently used
    check({ ok: true, v: 1 });
    expect(calls).toBe(6);
  });

  it('passes input JSON cannot express straight to the check', () => {
    const check = memoized((raw: unknown) => typeof raw);
    expect(check(10n)).toBe('bigint');
  });
});
