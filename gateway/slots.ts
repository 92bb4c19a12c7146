// A bounded number of signer sessions in flight, the rest waiting in arrival order. Without it,
// every request in flight shares the CPU (all four processes share it) and moves through the same
// queues in step: under a closed loop of many clients, signatures then come in bursts a second or
// more apart. With a few in flight, they finish one after another.

/** No slot came free in time: the gateway is too busy to start the request. */
export class SlotTimeoutError extends Error {
  override readonly name = 'SlotTimeoutError';
}

export class Slots {
  private used = 0;
  private readonly waiting: { grant: () => void; timer: NodeJS.Timeout }[] = [];

  constructor(private readonly size: number) {}

  /** Runs `task` in a slot, waiting at most `waitMs` for one. */
  async run<T>(waitMs: number, task: () => Promise<T>): Promise<T> {
    await this.acquire(waitMs);
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private acquire(waitMs: number): Promise<void> {
    if (this.used < this.size) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          clearTimeout(entry.timer);
          resolve();
        },
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(entry), 1);
          reject(new SlotTimeoutError(`no session slot came free within ${waitMs} ms (${this.size} in flight)`));
        }, waitMs),
      };
      this.waiting.push(entry);
    });
  }

  /** Hands the slot to the longest waiting, or frees it. */
  private release(): void {
    const next = this.waiting.shift();
    if (next) next.grant();
    else this.used--;
  }
}
