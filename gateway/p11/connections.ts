// The PKCS#11 listener's connections: a cap that never locks honest clients out, and idle
// timers that tell logged-in connections from the rest. At the cap a new connection evicts
// the oldest connection that has not logged in (then the longest-idle logged-in one), so a
// crowd of idle or unauthenticated connections costs an honest client nothing but an
// eviction. What one costs while it lasts: a socket and a timer, and before a login about
// 128 KiB at most (a partial pre-login frame and one read's worth of queued requests: the
// listener reads no further while a request is in flight).
// Idleness is time with no request in flight since the last answer: bytes that never complete
// a request do not keep a connection alive.
import type net from 'node:net';

export interface ConnectionLimits {
  max: number;
  preLoginIdleMs: number;
  idleMs: number;
}

export class Connection {
  /** A valid login was seen on this connection (set and cleared by the listener per request). */
  authenticated = false;
  inFlight = 0;
  idleSince = Date.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: net.Socket,
    private readonly limits: ConnectionLimits,
    private readonly onIdle: (c: Connection) => void,
  ) {
    this.arm();
  }

  begin(): void {
    this.inFlight++;
    clearTimeout(this.timer);
  }

  end(): void {
    if (--this.inFlight > 0) return;
    this.idleSince = Date.now();
    this.arm();
  }

  close(): void {
    clearTimeout(this.timer);
    this.socket.destroy();
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onIdle(this), this.authenticated ? this.limits.idleMs : this.limits.preLoginIdleMs);
    this.timer.unref();
  }
}

export class ConnectionTable {
  /** In arrival order, so the first match is the oldest. */
  private readonly open = new Set<Connection>();

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly events: { idleClosed(c: Connection): void; evicted(c: Connection): void },
  ) {}

  /** Admits a new connection, evicting one if at the cap; undefined if every slot is busy with a logged-in request. */
  admit(socket: net.Socket): Connection | undefined {
    if (this.open.size >= this.limits.max) {
      const victim = this.victim();
      if (!victim) return undefined;
      this.events.evicted(victim);
      this.drop(victim);
    }
    const c = new Connection(socket, this.limits, (idle) => {
      this.events.idleClosed(idle);
      this.drop(idle);
    });
    this.open.add(c);
    socket.once('close', () => this.drop(c));
    return c;
  }

  closeAll(): void {
    for (const c of [...this.open]) this.drop(c);
  }

  /** The oldest connection without a login and nothing in flight, else the oldest without a login, else the longest-idle logged-in one. */
  private victim(): Connection | undefined {
    let busy: Connection | undefined;
    let idlest: Connection | undefined;
    for (const c of this.open) {
      if (!c.authenticated && c.inFlight === 0) return c;
      if (!c.authenticated) busy ??= c;
      else if (c.inFlight === 0 && (!idlest || c.idleSince < idlest.idleSince)) idlest = c;
    }
    return busy ?? idlest;
  }

  private drop(c: Connection): void {
    if (!this.open.delete(c)) return;
    c.close();
  }
}
