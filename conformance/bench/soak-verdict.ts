// The soak benchmark's verdict (soak.ts): each process's resident set at most 200 MB, and no
// growth once warm — the mean of the last third of the samples at most 10% (and 16 MB) above
// the mean of the first third. Warm-up is the first 6 minutes: each signer keeps every request
// it served for the 5-minute evidence window (its replay ledger), so its memory rises until the
// window is full. Apart from soak.ts so a test can import it without running a soak.

/** How often soak.ts samples each process's resident set. */
export const SAMPLE_MS = 10_000;
const LIMIT_MB = 200;
const WARM_UP_MS = 6 * 60_000;

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** The verdict for one process's samples (MB, every SAMPLE_MS). */
export function judge(samples: readonly number[]): { maxMb: number; firstMb: number; lastMb: number; grows: boolean; met: boolean } {
  const steady = samples.slice(Math.min(samples.length - 1, Math.round(WARM_UP_MS / SAMPLE_MS)));
  const third = Math.max(1, Math.floor(steady.length / 3));
  const firstMb = mean(steady.slice(0, third));
  const lastMb = mean(steady.slice(-third));
  const maxMb = Math.max(...samples);
  const grows = lastMb > firstMb * 1.1 && lastMb - firstMb > 16;
  return { maxMb, firstMb, lastMb, grows, met: maxMb <= LIMIT_MB && !grows };
}

