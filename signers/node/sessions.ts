// The protocol states a signer keeps between rounds, each for a bounded time. A step takes its
// state out before running and puts the next one back only if it succeeded: whatever happens (an
// abort, a replayed or concurrent round), the same state — its nonces — is never used twice.
import { EnvelopeError } from '../../contract/identity/envelope.js';
import { ProtocolError, wipeSecrets, type Message } from '../protocols/common.js';
import type { Relayed } from '../../contract/signer-rpc/relayed.js';
import type { Relay } from './relay.js';
import { RpcError } from './rpc.js';

const TTL_MS = 120_000;

export class SessionTable<T> {
  private readonly held = new Map<string, { state: T; expires: number }>();
  /** Sessions taken out for a step: the lifetime they keep if their next state is put back
   * (an ended session stays here until then, so its id is not started again). */
  private readonly stepping = new Map<string, number>();

  constructor() {
    setInterval(() => {
      const now = Date.now();
      for (const [id, s] of this.held)
        if (s.expires < now) {
          this.held.delete(id);
          wipeSecrets(s.state); // an abandoned session's nonces and share copies
        }
      for (const [id, expires] of this.stepping) if (expires < now) this.stepping.delete(id);
    }, 10_000).unref();
  }

  get size(): number {
    return this.held.size;
  }

  /** Refuses an id in use (checked before the costly part of starting a session). */
  checkFree(id: string): void {
    if (this.held.has(id) || this.stepping.has(id)) throw new RpcError(409, 'session-exists', `session ${id} already exists`);
  }

  /** A new session's first state. */
  begin(id: string, state: T): void {
    this.checkFree(id);
    this.held.set(id, { state, expires: Date.now() + TTL_MS });
  }

  /** The session's state, taken out for one step (undefined: no such session). */
  take(id: string): T | undefined {
    const s = this.held.get(id);
    if (!s) return undefined;
    this.held.delete(id);
    this.stepping.set(id, s.expires);
    return s.state;
  }

  /** The state after a successful step that is not the last, within the session's lifetime. */
  put(id: string, state: T): void {
    const expires = this.stepping.get(id);
    this.stepping.delete(id);
    if (expires !== undefined && expires >= Date.now()) this.held.set(id, { state, expires });
  }
}

/** A protocol's abort as the signer's refusal; final for the session: its state was taken out for the step and stays out. */
export function protocolFailure(e: unknown): never {
  if (e instanceof ProtocolError || e instanceof EnvelopeError) throw new RpcError(409, 'protocol-abort', JSON.stringify({ code: e.code, sender: e.sender, message: e.message }));
  throw e;
}

/** What a protocol step marks while it runs (runStep). */
export interface StepScope {
  /** Consumed by the step: the messages it opened, an output once stored. */
  spend<T>(v: T): T;
  /** Lives on: the next state, put back into the session table. */
  keep<T>(v: T): T;
}

/**
 * Runs one step of a session whose `state` was taken out of its table. When the step ends,
 * however it ends, the secret bytes of that state and of everything spent are wiped — except
 * those the kept next state holds (a step may carry buffers over).
 */
export async function runStep<R>(state: unknown, body: (scope: StepScope) => R | Promise<R>): Promise<R> {
  const spent: unknown[] = [state];
  const kept: unknown[] = [];
  try {
    return await body({ spend: (v) => (spent.push(v), v), keep: (v) => (kept.push(v), v) });
  } finally {
    wipeSecrets(spent, kept);
  }
}

/** Seals a step's outbound messages; their secret bytes (not the state's) end once sealed. */
export function sealStep(relay: Relay, purpose: string, step: { state: unknown; outbound: readonly Message[] }): Relayed[] {
  try {
    return relay.seal(purpose, step.outbound);
  } finally {
    wipeSecrets(step.outbound, step.state);
  }
}
