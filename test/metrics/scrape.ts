// Reading Prometheus text format as a scraper does, for the metrics tests: every sample with its
// name, labels and value, and lookups of one sample or of a label's values.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class Scrape {
  readonly samples: Sample[];

  constructor(readonly text: string) {
    this.samples = text
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((line) => {
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!m) throw new Error(`not a sample line: ${line}`);
        const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
        return { name: m[1]!, labels, value: Number(m[3]) };
      });
  }

  /** The value of the sample `name` whose labels include `labels` (0 if there is none, as a counter not yet moved). */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.find(name, labels)?.value ?? 0;
  }

  find(name: string, labels: Record<string, string> = {}): Sample | undefined {
    return this.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** Every value label `label` takes among the samples of `name`. */
  labelValues(name: string, label: string): Set<string> {
    return new Set(this.samples.filter((s) => s.name === name && label in s.labels).map((s) => s.labels[label]!));
  }

  /** The sum of every sample of `name` whose labels include `labels`. */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
  }
}

/** GET `url` (plain HTTP) as a scraper: its status, content type and samples. */
export async function scrape(url: string): Promise<{ status: number; contentType: string; scrape: Scrape }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', scrape: res.status === 200 ? new Scrape(text) : new Scrape('') };
}
