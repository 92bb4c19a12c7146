// Progress of a command that can take more than a second (a key made on approval, a refresh, a
// backup verified, the benchmark): one line on stderr saying what runs and for how long, redrawn
// in place and erased when it ends, so the command's own output follows on a clean line (a quick
// command's line is erased before anyone sees it). Only
// on a terminal: where stderr is a pipe or a file nothing at all is written, and scripts and
// --json readers see what they saw before. The line says what the command does, never a value.

/** Where the line goes: process.stderr, or a stand-in in tests. */
export interface ProgressStream {
  isTTY?: boolean;
  write(chunk: string): boolean;
}

const CLEAR = '\r\x1b[2K';
const REDRAW_MS = 250;

export class LiveProgress {
  private timer: NodeJS.Timeout | undefined;
  private drawn = false;

  constructor(private readonly out: ProgressStream = process.stderr) {}

  /** Shows `text` and the seconds since (of `totalMs`, where known) until the next show or clear. */
  show(text: string, totalMs = 0): void {
    this.stop();
    if (this.out.isTTY !== true) return;
    const t0 = Date.now();
    const draw = () => {
      const ms = Date.now() - t0;
      this.out.write(`${CLEAR}${text} ${(ms / 1000).toFixed(1)}${totalMs ? ` / ${(totalMs / 1000).toFixed(1)}` : ''} s`);
      this.drawn = true;
    };
    draw();
    // Unref'd: a line left shown never keeps the process alive.
    this.timer = setInterval(draw, REDRAW_MS).unref();
  }

  /** Erases the line, if one was drawn. */
  clear(): void {
    this.stop();
    if (this.drawn) this.out.write(CLEAR);
    this.drawn = false;
  }

  /** Shows `text` while `work` runs, then clears it. */
  async during<T>(text: string, work: Promise<T>, totalMs = 0): Promise<T> {
    this.show(text, totalMs);
    try {
      return await work;
    } finally {
      this.clear();
    }
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
