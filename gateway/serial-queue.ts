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
