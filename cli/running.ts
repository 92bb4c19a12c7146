// A local cluster as it runs: what DIR/cluster.json says of its processes, `mpchsm status` and
// `mpchsm down`. Apart from `up` (cluster.ts) so these load none of what making a cluster needs.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readJsonFile } from '../contract/io/json-file.js';
import { layout, type Layout } from './layout.js';
import { getJson, partyRuns, stopPid } from './processes.js';
import { stopSwtpm } from './swtpm.js';

export const clusterJsonSchema = z.object({
  /** `console`: the approval console's address, when `up --console` started it. */
  gateway: z.object({ pid: z.number().int(), url: z.string(), console: z.string().optional() }),
  /** `metrics`: where the signer answers GET /metrics, when `up --metrics` started it. */
  signers: z.array(z.object({ name: z.string(), pid: z.number().int(), url: z.string(), metrics: z.string().optional() })),
  threshold: z.number().int(),
  signers_total: z.number().int(),
});
export type ClusterJson = z.infer<typeof clusterJsonSchema>;

export async function down(dir: string): Promise<void> {
  const L = layout(dir);
  const cluster = readCluster(L);
  if (!cluster) {
    progress(`nothing is running from ${L.root}`);
    return;
  }
  // Gateway first, so no new request reaches a signer that is going away. A pid no longer ours
  // (the machine restarted since) is left alone.
  const [gateway, ...signers] = partsOf(L, cluster);
  if (partyRuns(gateway!.pid, gateway!.dir)) await stopPid(gateway!.pid);
  await Promise.all(signers.filter((s) => partyRuns(s.pid, s.dir)).map((s) => stopPid(s.pid)));
  await stopSwtpms(L);
  progress('stopped');
}

const healthSchema = z.object({ keys: z.number().int().optional(), retired: z.boolean().optional(), awaiting: z.string().optional(), store: z.string().optional() }).passthrough();

/** Prints each process, its health and key count; returns the exit status (0: all healthy). */
export async function status(dir: string, json: boolean): Promise<number> {
  const L = layout(dir);
  const cluster = readCluster(L);
  if (!cluster) {
    console.log(json ? JSON.stringify({ running: false }) : `no cluster has been started from ${L.root}`);
    return 1;
  }
  const rows = await Promise.all(
    partsOf(L, cluster).map(async ({ dir, ...p }) => {
      if (!partyRuns(p.pid, dir)) return { ...p, state: 'stopped', keys: undefined as number | undefined };
      try {
        const h = healthSchema.parse(await getJson(`${p.url}/health`, 2000));
        // A removed signer that applied its removal says so; it takes part in nothing any more.
        // A signer that cannot write its store (a full disk) cannot record a release: it serves nothing.
        const state = h.retired ? 'retired' : h.awaiting ? `awaiting ${h.awaiting}` : h.store && h.store !== 'writable' ? `unhealthy: store ${h.store}` : 'healthy';
        return { ...p, state, keys: h.keys };
      } catch (e) {
        return { ...p, state: `unhealthy: ${(e as Error).message}`, keys: undefined };
      }
    }),
  );
  if (json) console.log(JSON.stringify({ running: true, threshold: cluster.threshold, signers_total: cluster.signers_total, processes: rows }));
  else {
    console.log(`cluster ${L.root}: threshold ${cluster.threshold} of ${cluster.signers_total}`);
    for (const r of rows) console.log(`  ${r.name.padEnd(10)} pid ${String(r.pid).padEnd(8)} ${r.url.padEnd(24)} ${r.state}${r.keys === undefined ? '' : `, ${r.keys} keys`}${'metrics' in r && r.metrics ? `, metrics ${r.metrics}` : ''}${'console' in r && r.console ? `, approval console ${r.console}` : ''}`);
  }
  return rows.every((r) => r.state === 'healthy' || r.state === 'retired' || r.state.startsWith('awaiting')) ? 0 : 1;
}

/** The gateway, then each signer, as cluster.json names them, with the directory each runs from. */
export const partsOf = (L: Layout, c: ClusterJson) => [{ name: 'gateway', ...c.gateway, dir: L.gateway }, ...c.signers.map((s) => ({ ...s, dir: L.signer(s.name) }))];

export function readCluster(L: Layout): ClusterJson | undefined {
  if (!existsSync(L.clusterJson)) return undefined;
  return readJsonFile(L.clusterJson, clusterJsonSchema);
}

/** Where signer `name`'s software TPM (up --seal swtpm) keeps its state. */
export const swtpmState = (L: Layout, name: string) => path.join(L.root, 'swtpm', name);

/** Stops every signer's software TPM (after the signers). */
export async function stopSwtpms(L: Layout): Promise<void> {
  const root = path.join(L.root, 'swtpm');
  if (existsSync(root)) await Promise.all(readdirSync(root).map((name) => stopSwtpm(swtpmState(L, name))));
}

/** A line of what `up`, `down` and `signer add` are doing. */
export function progress(line: string): void {
  console.log(`mpchsm: ${line}`);
}
