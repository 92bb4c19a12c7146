// Where a signature's CPU time goes inside the cluster's processes: cuts CPU profiles (taken by
// profile-hook.ts) around one benchmark segment and sorts every sample into a category by its
// stack — protocol maths, channel crypto, JSON, zod, HTTP, audit, logging…
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';

const HOOK = fileURLToPath(new URL('./profile-hook.js', import.meta.url));

/** The environment that makes the cluster's processes load the profiling hook. */
export function profileEnv(dir: string): Record<string, string> {
  const opts = [process.env.NODE_OPTIONS, `--import=${pathToFileURL(HOOK).href}`].filter(Boolean).join(' ');
  return { NODE_OPTIONS: opts, MPCHSM_BENCH_PROFILE_DIR: dir };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(files: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!files.every((f) => existsSync(f))) {
    if (Date.now() > deadline) throw new Error(`profile files did not appear: ${files.filter((f) => !existsSync(f)).join(', ')}`);
    await sleep(20);
  }
}

/** Cuts the profiles of several processes at the same moments (SIGUSR2 to each). */
export class ProfileCutter {
  private seq = 0;

  constructor(
    private readonly dir: string,
    private readonly pids: Readonly<Record<string, number>>,
  ) {}

  /** Waits until every process has loaded the hook (before that, SIGUSR2 would kill it). */
  ready(): Promise<void> {
    return waitFor(Object.values(this.pids).map((pid) => path.join(this.dir, `${pid}.ready`)), 30_000);
  }

  /** Ends the current segment in every process; resolves with each process's profile of it. */
  async cut(): Promise<Record<string, string>> {
    const files = Object.fromEntries(Object.entries(this.pids).map(([name, pid]) => [name, path.join(this.dir, `${pid}.${this.seq}.cpuprofile`)]));
    for (const pid of Object.values(this.pids)) process.kill(pid, 'SIGUSR2');
    await waitFor(Object.values(files), 30_000);
    this.seq++;
    return files;
  }
}

const profileSchema = z.object({
  nodes: z.array(
    z.object({
      id: z.number(),
      callFrame: z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() }),
      children: z.array(z.number()).optional(),
    }),
  ),
  startTime: z.number(),
  endTime: z.number(),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});
type Frame = z.infer<typeof profileSchema>['nodes'][number]['callFrame'];

export interface ProfileSummary {
  wallMs: number;
  /** Sampled time not idle. */
  cpuMs: number;
  /** CPU ms by category, largest first. */
  categories: [string, number][];
  /** mpchsm functions by inclusive time (their own and everything they call), largest first. */
  top: [string, number][];
}

const LOGGING = new Set(['pino', 'sonic-boom', 'thread-stream', 'pino-std-serializers', 'fast-redact', 'quick-format-unescaped', 'safe-stable-stringify', 'atomic-sleep']);
const HTTP_LIBS = new Set(['koa', 'koa-compose', 'on-finished', 'statuses', 'http-errors', 'accepts', 'cookies', 'content-type', 'type-is', 'raw-body']);
const pkgOf = (url: string) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];

/** The category of one sample, from its stack (leaf first). `dist` is the project's dist/ URL prefix. */
export function categorise(stack: readonly Frame[], dist: string): string {
  const leaf = stack[0];
  if (!leaf) return 'other';
  if (leaf.functionName === '(garbage collector)') return 'garbage collection';
  if (leaf.functionName === '(program)') return 'V8/native, unattributed';
  if (leaf.url === '' && (leaf.functionName === 'parse' || leaf.functionName === 'stringify')) return 'JSON parse/stringify';
  // Native leaves (writev, RegExp…) belong to the first frame that has a source.
  const sourced = stack.find((f) => f.url !== '');
  const pkg = sourced ? pkgOf(sourced.url) : undefined;
  if (pkg === 'zod') return 'input validation (zod)';
  if (pkg && LOGGING.has(pkg)) return 'logging (pino)';
  const owner = stack.find((f) => f.url.startsWith(dist))?.url.slice(dist.length);
  if (owner) {
    if (owner.startsWith('signers/protocols/')) return 'protocol maths';
    if (/^contract\/identity\/(envelope|signed-request|identity|curve25519)\.js$/.test(owner)) return 'channel crypto (signed RPC, envelopes)';
    if (owner === 'gateway/verify.js') return 'verify before release';
    if (owner === 'policy/sigv4.js') return 'SigV4 check';
    if (owner.startsWith('audit/')) return 'audit log';
    if (/^signers\/node\/(store|seal)\.js$/.test(owner)) return 'sealed share store';
    if (owner.startsWith('policy/')) return 'policy';
  }
  if (pkg && HTTP_LIBS.has(pkg)) return 'HTTP, sockets, files (Node, koa)';
  if (!sourced || sourced.url.startsWith('node:')) return 'HTTP, sockets, files (Node, koa)';
  if (pkg) return `other library (${pkg})`;
  return 'other mpchsm code';
}

export function summariseProfile(file: string, root: string): ProfileSummary {
  const p = profileSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  const dist = pathToFileURL(path.join(root, 'dist')).href + '/';
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // Sample i lasts until sample i+1.
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? 0)));

  const categories = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let cpuUs = 0;
  for (const [id, us] of selfUs) {
    const stack: Frame[] = [];
    for (let n = byId.get(id); n; n = byId.get(parent.get(n.id) ?? -1)) stack.push(n.callFrame);
    const leaf = stack[0]!;
    if (leaf.functionName === '(idle)' || leaf.functionName === '(root)') continue;
    cpuUs += us;
    const cat = categorise(stack, dist);
    categories.set(cat, (categories.get(cat) ?? 0) + us);
    // Each mpchsm function on the stack, once per sample (recursion counts once).
    const names = new Set(stack.filter((f) => f.url.startsWith(dist)).map((f) => `${f.functionName || '(anonymous)'} ${f.url.slice(dist.length)}:${f.lineNumber + 1}`));
    for (const name of names) inclusive.set(name, (inclusive.get(name) ?? 0) + us);
  }
  const ms = (m: Map<string, number>, n: number): [string, number][] =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => [k, v / 1000]);
  return { wallMs: (p.endTime - p.startTime) / 1000, cpuMs: cpuUs / 1000, categories: ms(categories, 50), top: ms(inclusive, 25) };
}
