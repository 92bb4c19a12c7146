// What the gateway holds of material the signers made ahead of requests (FROST nonce
// commitments, DKLs23 presignatures): only public parts and ids, the secrets stay at the
// signers (signers/node/preprocessed.ts). Per scope (a signer, a key and signer set), a queue
// refilled in the background when it runs low, one fetch at a time, and not retried for a while
// after a fetch failed (a dead or hung signer is not asked again and again). An item is handed
// out once; whether it is still good is the signer's to say ('not-preprocessed' after a
// restart), and the caller then drops the scope and goes on without.

export interface PoolOptions<T> {
  /** How many items one fetch asks for. */
  batch: number;
  /** Below this many items, a refill starts. */
  lowWater: number;
  /** Items older than this are dropped unused (keep it below the signers' own expiry). */
  maxAgeMs: number;
  /** After a failed fetch, how long before the scope is fetched again. */
  retryAfterMs: number;
  fetch: (scope: string, count: number) => Promise<T[]>;
  onError: (scope: string, e: unknown) => void;
}

interface Scope<T> {
  items: { value: T; at: number }[];
  fetching?: Promise<void>;
  failedAt?: number;
}

export class PreprocessedPool<T> {
  private readonly scopes = new Map<string, Scope<T>>();
  private closed = false;

  constructor(private readonly opts: PoolOptions<T>) {}

  /** How many fresh items the scope holds now. */
  available(scope: string): number {
    const s = this.scopes.get(scope);
    if (!s) return 0;
    this.expire(s, Date.now());
    return s.items.length;
  }

  /** The scope's oldest fresh item, handed out once (undefined: none now); refills when low. */
  take(scope: string): T | undefined {
    const s = this.scope(scope);
    this.expire(s, Date.now());
    const item = s.items.shift();
    if (s.items.length < this.opts.lowWater) void this.refill(scope);
    return item?.value;
  }

  /** Starts a fetch for the scope unless one is running or one failed lately; resolves when it ends. */
  refill(scope: string): Promise<void> {
    const s = this.scope(scope);
    if (this.closed) return Promise.resolve();
    if (s.fetching) return s.fetching;
    if (s.failedAt !== undefined && Date.now() - s.failedAt < this.opts.retryAfterMs) return Promise.resolve();
    s.fetching = this.opts
      .fetch(scope, this.opts.batch)
      .then(
        (values) => {
          s.failedAt = undefined;
          // A scope dropped while its fetch ran starts afresh: what the fetch brought may predate the drop.
          if (this.scopes.get(scope) !== s || this.closed) return;
          const at = Date.now();
          s.items.push(...values.map((value) => ({ value, at })));
        },
        (e: unknown) => {
          s.failedAt = Date.now();
          this.opts.onError(scope, e);
        },
      )
      .finally(() => {
        s.fetching = undefined;
      });
    return s.fetching;
  }

  /** Forgets the scopes `matches` selects (a signer restarted or removed, a key gone). */
  drop(matches: (scope: string) => boolean): void {
    for (const scope of [...this.scopes.keys()]) if (matches(scope)) this.scopes.delete(scope);
  }

  /** No more fetches; what is held is forgotten. */
  close(): void {
    this.closed = true;
    this.scopes.clear();
  }

  private scope(scope: string): Scope<T> {
    let s = this.scopes.get(scope);
    if (!s) this.scopes.set(scope, (s = { items: [] }));
    return s;
  }

  private expire(s: Scope<T>, now: number): void {
    while (s.items.length > 0 && now - s.items[0]!.at > this.opts.maxAgeMs) s.items.shift();
  }
}
