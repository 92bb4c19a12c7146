// Shared vocabulary of the sans-IO protocol state machines.
//
// A protocol party is a pure function of (state, inbound messages, rng) returning
// (new state, outbound messages, optional output). Transport, clocks and files live in
// signers/node and gateway; nothing here does I/O.

import { z } from 'zod';
import { partyIdSchema, type PartyId } from '../../contract/bytes.js';

/** What went wrong with an inbound message (or a local request). */
export type ProtocolErrorCode =
  | 'malformed' // does not parse as the round's message
  | 'wrong-session' // belongs to another session
  | 'wrong-round' // belongs to another round of this session
  | 'duplicate' // a second message from the same sender for this round
  | 'unknown-sender' // sender is not a participant of this session
  | 'wrong-recipient' // addressed to another party
  | 'missing' // a participant's message for this round is absent
  | 'invalid-point' // not on the curve, or the identity, or outside the subgroup
  | 'scalar-range' // scalar not in [1, order) (or [0, order) where zero is allowed)
  | 'bad-proof' // a proof (of possession, of equal discrete logs, ...) does not verify
  | 'bad-share' // a share is inconsistent with its sender's commitments
  | 'inconsistent-view' // a party showed different broadcasts to different parties
  | 'bad-partial' // a partial signature/decryption does not verify
  | 'unproven' // a partial that must be checked came without its proof (ask for it)
  | 'consumed' // single-use state (nonces) was already used
  | 'bad-parameters'; // local request is invalid (threshold, ids, sizes)

/**
 * A typed protocol failure. `sender` names the party the fault is attributed to when the
 * fault lies in someone's message; it is absent for local misuse.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    readonly sender?: PartyId,
  ) {
    super(sender === undefined ? message : `party ${sender}: ${message}`);
  }
}

/** Every protocol message. `to` is a party id for point-to-point, 'all' for broadcast. */
export interface Message<P = unknown> {
  session: string;
  round: number;
  from: PartyId;
  to: PartyId | 'all';
  payload: P;
}

/** Result of one step of a party's state machine. */
export interface Step<S, O = never> {
  state: S;
  outbound: Message[];
  /** Present once the protocol has finished for this party. */
  output?: O;
}

export const messageSchema = z.object({
  session: z.string().min(1).max(128),
  round: z.number().int().min(0),
  from: partyIdSchema,
  to: z.union([partyIdSchema, z.literal('all')]),
  payload: z.unknown(),
});

/** What a party receives of a round's messages: those addressed to it or to all, not its own. */
/** Party ids in ascending order (a copy). */
export const sortIds = (ids: readonly PartyId[]): PartyId[] => [...ids].sort((a, b) => a - b);

export const inboxOf = <M extends { from: PartyId; to: PartyId | 'all' }>(all: readonly M[], id: PartyId): M[] =>
  all.filter((m) => m.from !== id && (m.to === id || m.to === 'all'));

/**
 * Runs every party of a protocol in this process (benchmarks, tests): each round's outbound
 * messages are delivered to each party's next step until all have an output.
 */
export function runLocally<S, O>(parties: readonly PartyId[], first: Step<S, O>[], step: (id: PartyId, s: S, inbox: Message[]) => Step<S, O>): O[] {
  let steps = first;
  while (!steps.every((s) => s.output !== undefined)) {
    const all = steps.flatMap((s) => s.outbound);
    steps = parties.map((id, k) => step(id, steps[k]!.state, inboxOf(all, id)));
  }
  return steps.map((s) => s.output!);
}

/**
 * Validates a set of inbound messages for one round: session, round, recipient, sender
 * membership, duplicates, and that every expected sender is present. Returns the payloads
 * keyed by sender, each parsed with `payload`.
 */
export function collectRound<P>(
  inbound: readonly Message[],
  expect: {
    session: string;
    round: number;
    self: PartyId;
    senders: readonly PartyId[];
    broadcast: boolean;
    payload: z.ZodType<P>;
  },
): Map<PartyId, P> {
  const out = new Map<PartyId, P>();
  for (const raw of inbound) {
    const env = messageSchema.safeParse(raw);
    if (!env.success) {
      const from = typeof (raw as { from?: unknown })?.from === 'number' ? (raw as Message).from : undefined;
      throw new ProtocolError('malformed', `malformed message envelope: ${env.error.issues[0]?.message}`, from);
    }
    const m = env.data;
    if (m.session !== expect.session) throw new ProtocolError('wrong-session', `message for session ${m.session}`, m.from);
    if (m.round !== expect.round) throw new ProtocolError('wrong-round', `message for round ${m.round}, expected ${expect.round}`, m.from);
    if (!expect.senders.includes(m.from) || m.from === expect.self)
      throw new ProtocolError('unknown-sender', 'sender is not a participant of this session', m.from);
    if (expect.broadcast ? m.to !== 'all' : m.to !== expect.self)
      throw new ProtocolError('wrong-recipient', `message addressed to ${m.to}`, m.from);
    if (out.has(m.from)) throw new ProtocolError('duplicate', `second round-${m.round} message`, m.from);
    const body = expect.payload.safeParse(m.payload);
    if (!body.success) throw new ProtocolError('malformed', `round-${m.round} payload: ${body.error.issues[0]?.path.join('.')} ${body.error.issues[0]?.message}`, m.from);
    out.set(m.from, body.data);
  }
  for (const s of expect.senders) {
    if (s !== expect.self && !out.has(s)) throw new ProtocolError('missing', `no round-${expect.round} message`, s);
  }
  return out;
}

/**
 * The echo check of a key generation's round 2: every sender's digests of the round-1
 * broadcasts it saw (`views`, keyed by party id) must equal ours. A differing view of our own
 * broadcast (or of the sender's) can only be the sender's doing; otherwise party j showed
 * different broadcasts to us and to the sender, and j is named.
 */
export function checkViews(got: ReadonlyMap<PartyId, { views: Record<string, string> }>, own: Record<string, string>, participants: readonly PartyId[], self: PartyId): void {
  for (const [k, m] of got) {
    if (Object.keys(m.views).length !== participants.length) throw new ProtocolError('malformed', 'views do not cover the participants', k);
    for (const j of participants) {
      const theirs = m.views[String(j)];
      if (theirs === undefined) throw new ProtocolError('malformed', `no view of party ${j}`, k);
      if (theirs !== own[String(j)])
        throw new ProtocolError('inconsistent-view', `round-1 broadcast of party ${j} differs between party ${self} and party ${k}`, j === self ? k : j);
    }
  }
}

/** Checks a participant set: distinct ids in 1..65535, threshold 1 ≤ t ≤ n, self included. */
export function checkParticipants(ids: readonly PartyId[], threshold: number, self?: PartyId): void {
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > ids.length)
    throw new ProtocolError('bad-parameters', `threshold ${threshold} not in 1..${ids.length}`);
  const seen = new Set<PartyId>();
  for (const id of ids) {
    if (!partyIdSchema.safeParse(id).success) throw new ProtocolError('bad-parameters', `identifier ${id} is not in 1..65535`);
    if (seen.has(id)) throw new ProtocolError('bad-parameters', `identifier ${id} appears twice`);
    seen.add(id);
  }
  if (self !== undefined && !seen.has(self)) throw new ProtocolError('bad-parameters', `self ${self} is not a participant`);
}

/** States and key shares serialise to bytes (encodeSecretful: secrets stay bytes) so a signer can persist them. */
export const encodeState = (state: unknown): Uint8Array => encodeSecretful(state);
/** A state or share from encodeState's bytes (or plain JSON, for one with no secret bytes). */
export function decodeState<S>(bytes: Uint8Array, schema: z.ZodType<S>): S {
  let json: unknown;
  try {
    json = isSecretful(bytes) ? decodeSecretful(bytes) : JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new ProtocolError('malformed', 'state bytes are not a valid encoding');
  }
  const r = schema.safeParse(json);
  if (!r.success) throw new ProtocolError('malformed', `state: ${r.error.issues[0]?.path.join('.')} ${r.error.issues[0]?.message}`);
  return r.data;
}

// ---------------------------------------------------------------------------------------------
// Secrets in memory. A key share's secret members are Uint8Arrays (never hex strings, which
// JavaScript cannot wipe): each operation that reads a share wipes them when it ends.

/** Exactly `n` bytes (a Uint8Array: the record encoding carries it raw). */
export const bytesSchema = (n: number) => z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.length === n, `${n} bytes`);

/** A secret member of a share: bytes (of length `n` when given). */
export const secretBytesSchema = (n?: number, max = Infinity) =>
  n === undefined ? z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.length >= 1 && b.length <= max, `1 to ${max} secret bytes`) : bytesSchema(n);

/** Every Uint8Array within `value`. */
function* bytesWithin(value: unknown): Generator<Uint8Array> {
  if (value instanceof Uint8Array) yield value;
  else if (value instanceof Map) for (const v of value.values()) yield* bytesWithin(v);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) yield* bytesWithin(v);
}

/**
 * Zeroes every Uint8Array within `value` (a share, a signing state): the end of its use — except
 * those `kept` also holds. A protocol step's next state or output may carry buffers of the state
 * and messages it consumed: `wipeSecrets([state, inbound, outbound], next)` ends the rest.
 */
export function wipeSecrets(value: unknown, kept?: unknown): void {
  const keep = new Set(bytesWithin(kept));
  for (const b of bytesWithin(value)) if (!keep.has(b)) b.fill(0);
}

/**
 * Runs `use` on secrets (a share, a state) and wipes them when it ends, however it ends: at once
 * for a synchronous `use`, once its promise settles for an asynchronous one.
 */
export function usingSecrets<T, R>(secrets: T, use: (s: T) => R): R {
  let pending = false;
  try {
    const r = use(secrets);
    if (r instanceof Promise) {
      pending = true;
      return r.finally(() => wipeSecrets(secrets)) as R;
    }
    return r;
  } finally {
    if (!pending) wipeSecrets(secrets);
  }
}

// The binary encoding of a value holding secrets: its public part as JSON with the secret
// members left out, then each secret as raw bytes named by its path, so that decoding never
// makes a string of one:
//   0x00 'MSR1' | u32 JSON length | JSON | per secret: u16 path length | path (JSON array) | u32 length | bytes
const SECRETFUL_MAGIC = Uint8Array.of(0, 0x4d, 0x53, 0x52, 0x31);

/** Whether bytes are in the encoding below (a JSON text never starts with 0x00). */
export const isSecretful = (b: Uint8Array): boolean => b.length >= SECRETFUL_MAGIC.length && SECRETFUL_MAGIC.every((x, i) => b[i] === x);

export function encodeSecretful(value: unknown): Uint8Array {
  const secrets: [string, Uint8Array][] = [];
  const strip = (v: unknown, at: (string | number)[]): unknown => {
    if (v instanceof Uint8Array) {
      secrets.push([JSON.stringify(at), v]);
      return undefined;
    }
    if (Array.isArray(v)) return v.map((x, i) => strip(x, [...at, i]));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, strip(x, [...at, k])]));
    return v;
  };
  const json = Buffer.from(JSON.stringify(strip(value, [])));
  const size = SECRETFUL_MAGIC.length + 4 + json.length + secrets.reduce((n, [p, b]) => n + 2 + Buffer.byteLength(p) + 4 + b.length, 0);
  const out = Buffer.alloc(size);
  out.set(SECRETFUL_MAGIC);
  let o = SECRETFUL_MAGIC.length;
  o = out.writeUInt32BE(json.length, o);
  o += json.copy(out, o);
  for (const [p, b] of secrets) {
    o = out.writeUInt16BE(Buffer.byteLength(p), o);
    o += out.write(p, o);
    o = out.writeUInt32BE(b.length, o);
    out.set(b, o);
    o += b.length;
  }
  return out;
}

/** The value encodeSecretful encoded, each secret a fresh copy (the caller wipes `b`). */
export function decodeSecretful(b: Uint8Array): unknown {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const fail = (): never => {
    throw new ProtocolError('malformed', 'truncated or malformed secret encoding');
  };
  if (!isSecretful(buf)) fail();
  let o = SECRETFUL_MAGIC.length;
  const take = (n: number): Buffer => {
    if (o + n > buf.length) fail();
    const s = buf.subarray(o, o + n);
    o += n;
    return s;
  };
  const jsonLength = take(4).readUInt32BE(0);
  let value: unknown;
  try {
    value = JSON.parse(take(jsonLength).toString('utf8'));
  } catch {
    fail();
  }
  while (o < buf.length) {
    const path = JSON.parse(take(take(2).readUInt16BE(0)).toString('utf8')) as unknown;
    const bytes = Uint8Array.from(take(take(4).readUInt32BE(0)));
    if (!Array.isArray(path) || path.length === 0 || !path.every((k) => typeof k === 'number' || (typeof k === 'string' && !['__proto__', 'constructor', 'prototype'].includes(k)))) fail();
    let at = value as Record<string | number, unknown>;
    for (const k of (path as (string | number)[]).slice(0, -1)) {
      if (!at || typeof at[k] !== 'object') fail();
      at = at[k] as Record<string | number, unknown>;
    }
    at[(path as (string | number)[]).at(-1)!] = bytes;
  }
  return value;
}
