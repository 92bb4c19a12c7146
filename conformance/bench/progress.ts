// The benchmark's progress on stderr (its report goes to stdout): a line per step, and on a
// terminal the live line of cli/progress.ts while a point runs.
import { LiveProgress } from '../../cli/progress.js';

export class Progress {
  private readonly live = new LiveProgress();

  step(msg: string): void {
    this.live.clear();
    process.stderr.write(`bench: ${msg}\n`);
  }

  /** `ms`: how long the work is planned to run, where known (0: not known). */
  during<T>(label: string, ms: number, work: Promise<T>): Promise<T> {
    return this.live.during(`bench: ${label}`, work, ms);
  }
}
