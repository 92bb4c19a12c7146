// Material a signer computes ahead of a request (FROST nonces, DKLs23 presignatures), held in
// memory only and taken out once. Never on disk: a crash, a kill -9 or a restored copy of the
// store cannot bring any of it back, so none of it can be used twice — a restart costs only
// the material not yet used. Bounded in count and in age, so a gateway that asks for more than
// it uses cannot exhaust the signer's memory.
import { wipeSecrets } from '../protocols/common.js';
import { RpcError } from './rpc.js';

export class Preprocessed<T> {
  private readonly held = new Map<string, { value: T; expires: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    /** The most items held at once; a batch that would not fit is refused whole. */
    readonly capacity: number,
    /** How long an item waits to be used before it is dropped. */
    readonly ttlMs: number,
  ) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), Math.min(ttlMs, 10_000));
    this.sweeper.unref();
  }

  get size(): number {
    return this.held.size;
  }

  /** Room for `count` more, checked before the costly part of making them. */
  checkRoom(count: number): void {
    if (this.held.size + count > this.capacity) {
      this.sweep(Date.now());
      if (this.held.size + count > this.capacity)
        throw new RpcError(429, 'preprocessed-full', `${this.held.size} items held ahead, room for ${this.capacity}: use or let them expire first`);
    }
  }

  /** Adds items under fresh ids (an id already held is refused: ids are never reused). */
  add(items: ReadonlyArray<readonly [string, T]>): void {
    this.checkRoom(items.length);
    for (const [id] of items) if (this.held.has(id)) throw new RpcError(409, 'session-exists', `item ${id} is already held`);
    const expires = Date.now() + this.ttlMs;
    for (const [id, value] of items) this.held.set(id, { value, expires });
  }

  /** The item, removed before the caller can use it: a second take of the same id finds nothing. */
  take(id: string): T {
    const item = this.held.get(id);
    this.held.delete(id);
    if (!item || item.expires < Date.now()) throw new RpcError(409, 'not-preprocessed', `no item ${id} is held here (used, expired, or made before a restart)`);
    return item.value;
  }

  /** Drops every item `matches` selects (a key destroyed, a peer removed). */
  drop(matches: (value: T) => boolean): void {
    for (const [id, item] of this.held)
      if (matches(item.value)) {
        this.held.delete(id);
        wipeSecrets(item.value);
      }
  }

  private sweep(now: number): void {
    for (const [id, item] of this.held)
      if (item.expires < now) {
        this.held.delete(id);
        wipeSecrets(item.value); // never to be used: its secret bytes go now
      }
  }
}
