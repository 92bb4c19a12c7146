// The benchmark's progress on stderr (its report goes to stdout).

/** Progress on stderr: one line per step; on a terminal, a live countdown while a point runs. */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private live = false;

  step(msg: string): void {
    this.clear();
    process.stderr.write(`bench: ${msg}\n`);
  }

  async during<T>(label: string, ms: number, work: Promise<T>): Promise<T> {
    if (!this.tty) return work;
    const t0 = Date.now();
    const draw = () => {
      this.live = true;
      const elapsed = ((Date.now() - t0) / 1000).toFixed(1);
      process.stderr.write(`\r\x1b[2Kbench: ${label} ${elapsed}${ms ? ` / ${(ms / 1000).toFixed(1)}` : ''} s`);
    };
    draw();
    const timer = setInterval(draw, 250);
    try {
      return await work;
    } finally {
      clearInterval(timer);
      this.clear();
    }
  }

  private clear(): void {
    if (this.live) process.stderr.write('\r\x1b[2K');
    this.live = false;
  }
}
