// Per-key rate limit (key policy `mpchsm.rateLimit`): a token bucket holding up to `burst`
// tokens (default: perMinute), refilled continuously at perMinute per 60 s. Pure: the caller
// keeps one state per key (and per signer) and passes the clock in. Apply it to Sign and
// Decrypt after authorisation succeeded, so refused requests spend no tokens.

export interface RateLimit {
  perMinute: number;
  burst?: number;
}

export interface BucketState {
  tokens: number;
  /** ms timestamp at which `tokens` was computed. */
  at: number;
  /**
   * When the bucket holds all `burst` tokens again if none is taken (takeToken sets it; it reads
   * only tokens and at). Whoever keeps the state must keep it until then: forgotten sooner, a
   * bucket starts full, and a restart would refill it early.
   */
  fullAt?: number;
}

export type RateDecision =
  | { allowed: true; state: BucketState }
  | { allowed: false; state: BucketState; /** ms until a token is available */ retryAfterMs: number };

/** Takes one token if available. `state` undefined means a fresh (full) bucket. */
export function takeToken(limit: RateLimit, state: BucketState | undefined, now: number): RateDecision {
  const capacity = limit.burst ?? limit.perMinute;
  const perMs = limit.perMinute / 60_000;
  // A clock that steps back refills nothing (and never drains).
  const elapsed = state ? Math.max(0, now - state.at) : 0;
  const tokens = state ? Math.min(capacity, state.tokens + elapsed * perMs) : capacity;
  const at = state ? Math.max(now, state.at) : now;
  const left = (t: number): BucketState => ({ tokens: t, at, fullAt: at + Math.ceil((capacity - t) / perMs) });
  if (tokens >= 1) return { allowed: true, state: left(tokens - 1) };
  return { allowed: false, state: left(tokens), retryAfterMs: Math.ceil((1 - tokens) / perMs) };
}
