// Tasks that must not interleave (read-modify-write of a file, a protocol run that changes key
// material) run one at a time, in the order they were queued; a failed task does not stop the
// next one.
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** One SerialQueue per key (a record's name), forgotten once it has nothing left to run. */
export class KeyedSerialQueue {
  private readonly queues = new Map<string, { queue: SerialQueue; queued: number }>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = { queue: new SerialQueue(), queued: 0 }));
    const entry = q;
    entry.queued++;
    return entry.queue.run(task).finally(() => {
      if (--entry.queued === 0 && this.queues.get(key) === entry) this.queues.delete(key);
    });
  }
}
