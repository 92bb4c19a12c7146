import { expect } from 'vitest';
import { ProtocolError, inboxOf, type Message } from '../../signers/protocols/common.js';
import { type PartyId } from '../../contract/bytes.js';
import { dkgStart, dkgStep, type DkgKeyShare, type DkgState } from '../../signers/protocols/dkg.js';
import type { GroupName } from '../../signers/protocols/suites.js';
import { seededRng } from './rng.js';

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

const dkgCache = new Map<string, Map<PartyId, DkgKeyShare>>();
/** Runs (or reuses, to keep the suite fast) a DKG among `ids`. */
export function runDkg(group: GroupName, t: number, ids: PartyId[], seed: string): Map<PartyId, DkgKeyShare> {
  const cacheKey = `${group}/${t}/${ids.join(',')}/${seed}`;
  if (dkgCache.has(cacheKey)) return dkgCache.get(cacheKey)!;
  const states = new Map<PartyId, DkgState>();
  let out: Message[] = [];
  for (const id of ids) {
    const s = dkgStart({ suite: group, session: `dkg/${seed}`, self: id, participants: ids, threshold: t }, seededRng(`${seed}/${id}`));
    states.set(id, s.state);
    out.push(...s.outbound);
  }
  const keys = new Map<PartyId, DkgKeyShare>();
  for (let round = 1; round <= 2; round++) {
    const next: Message[] = [];
    for (const id of ids) {
      const step = dkgStep(states.get(id)!, inboxOf(out, id));
      states.set(id, step.state);
      next.push(...step.outbound);
      if (step.output) keys.set(id, step.output);
    }
    out = next;
  }
  dkgCache.set(cacheKey, keys);
  return keys;
}
