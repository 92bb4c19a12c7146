// Recovering a gateway whose directory was lost (docs/operations.md, "Total loss of the
// gateway"). `mpchsm gateway init --recover` leaves the marker file RECOVERY_MARKER beside the
// restored identity; the first start after it, founded again on the same genesis, rebuilds from
// the signers' own sealed copies what the lost directory held and the signers keep: before the
// governance loads, the governance chain, the principals added since the genesis and the
// numbered change log's position; then every key's record, policy, description, tags, rotated
// materials and rotation setting (key-recovery.ts), then the aliases. Nothing is taken from
// fewer than the cluster's threshold of signers agreeing; what they do not agree on is left out
// and logged. The new audit log's first entries record the recovery (op RecoverGateway, and one
// RecoverKey per key); each signer records that it was read for it.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import type { Cluster } from './cluster.js';
import type { GatewayDeps } from './deps.js';
import { seedChangeLog } from './governance/change-log.js';
import { recoverKeys } from './key-recovery.js';
import type { SignerClient } from './signer-client.js';
import { canonicalJson } from '../contract/canonical.js';
import { writeFileAtomic } from '../contract/io/atomic.js';
import type { RouteAnswer } from '../contract/signer-rpc/route.js';
import { verifyGovernanceChain } from '../policy/index.js';
import { GovernanceChain, governanceFile } from './governance/chain.js';
import type { PrincipalRegistry } from './principals.js';

export const RECOVERY_MARKER = 'recovering.json';
export const recoveryMarker = (dir: string) => path.join(dir, RECOVERY_MARKER);
export const recovering = (dir: string) => existsSync(recoveryMarker(dir));

type Answered = Required<Pick<RouteAnswer<typeof signerRoutes.keys.inventory>, 'aliases' | 'seq' | 'governance' | 'principals'>>;
/** What the signers answered for the recovery, per signer. */
export interface SignersRead {
  signers: ({ client: SignerClient } & Answered)[];
}

/** The answers at least `threshold` signers gave alike (by canonical JSON), each once. */
function agreed<T>(answers: readonly T[], threshold: number): T[] {
  const counts = new Map<string, { v: T; n: number }>();
  for (const v of answers) {
    const k = canonicalJson(v);
    counts.set(k, { v, n: (counts.get(k)?.n ?? 0) + 1 });
  }
  return [...counts.values()].filter((c) => c.n >= threshold).map((c) => c.v);
}

/**
 * Reads every active signer for the recovery (at least `threshold` must answer); puts in force
 * the governance chain and adds the principals at least `threshold` of them agree on; starts the
 * change log after the last change any of them processed. Before the governance and the change
 * log are loaded: no change may be numbered before this.
 */
export async function recoverBeforePolicy(dir: string, cluster: Pick<Cluster, 'active'>, principals: PrincipalRegistry, threshold: number, log: Logger): Promise<SignersRead> {
  const active = cluster.active;
  const answers = await Promise.allSettled(active.map((c) => c.call(signerRoutes.keys.inventory, { recovery: true })));
  const signers: SignersRead['signers'] = [];
  answers.forEach((a, i) => {
    const v = a.status === 'fulfilled' ? a.value : undefined;
    if (v?.seq !== undefined && v.aliases && v.governance && v.principals) signers.push({ client: active[i]!, aliases: v.aliases, seq: v.seq, governance: v.governance, principals: v.principals });
    else log.warn({ signer: active[i]!.name, err: a.status === 'rejected' ? (a.reason as Error).message : 'an answer without the recovery state' }, 'a signer could not be read for the recovery');
  });
  if (signers.length < threshold) throw new Error(`recovery needs ${threshold} signers to answer; ${signers.length} did: start the gateway again once they are up`);
  // The longest chain enough signers hold, if it verifies and continues the genesis's (GovernanceChain.load checks it again).
  const founded = GovernanceChain.load(dir).links;
  const chain = agreed(signers.map((s) => s.governance), threshold).sort((a, b) => b.length - a.length)[0];
  if (chain && chain.length > founded.length && canonicalJson(chain.slice(0, founded.length)) === canonicalJson(founded) && verifyGovernanceChain(chain).ok)
    await writeFileAtomic(governanceFile(dir), Buffer.from(JSON.stringify({ chain }, null, 2) + '\n'), 0o644);
  const known = new Set(principals.all().map((p) => p.name));
  const added = agreed(signers.flatMap((s) => s.principals), threshold).filter((p) => !known.has(p.name));
  await principals.addAll(added);
  const next = await seedChangeLog(dir, Object.fromEntries(signers.map((s) => [s.client.id, s.seq])));
  const behind = signers.filter((s) => s.seq < next - 1);
  // Changes a signer missed were pending in the lost log: it takes no further change in order (docs/operations.md).
  if (behind.length > 0) log.error({ signers: behind.map((s) => s.client.name), next }, 'signers are behind the others: the changes they missed were lost with the gateway directory; restore or re-admit them');
  log.warn({ governanceLinks: chain?.length ?? founded.length, principals: added.map((p) => p.name), next }, 'recovering: governance, principals and the change log taken from the signers');
  return { signers };
}

/**
 * Recovers every key the signers hold, then the aliases at least `threshold` signers agree on
 * and whose key was recovered; audits the recovery and removes the marker. Answers what it made.
 */
export async function recoverGateway(deps: Pick<GatewayDeps, 'cluster' | 'audit' | 'log' | 'kmsState' | 'dir' | 'config'>, read: SignersRead): Promise<{ keys: number; aliases: number; notRecovered: string[] }> {
  const startedAt = Date.now();
  const outcomes = await recoverKeys(deps, true);
  const votes = new Map<string, Map<string, number>>();
  for (const s of read.signers) {
    for (const [name, keyId] of Object.entries(s.aliases)) {
      const forName = votes.get(name) ?? new Map<string, number>();
      forName.set(keyId, (forName.get(keyId) ?? 0) + 1);
      votes.set(name, forName);
    }
  }
  let aliases = 0;
  const skipped: string[] = [];
  await deps.kmsState.exclusive(async () => {
    for (const [name, targets] of [...votes].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const agreed = [...targets].filter(([, n]) => n >= deps.config.threshold);
      const keyId = agreed.length === 1 ? agreed[0]![0] : undefined;
      if (keyId === undefined || !deps.cluster.keys.get(keyId)) {
        skipped.push(name);
        continue;
      }
      await deps.kmsState.putAlias(name, keyId);
      aliases++;
    }
  });
  if (skipped.length > 0) deps.log.error({ aliases: skipped }, 'aliases the signers do not agree on, or whose key was not recovered, are left out');
  const notRecovered = outcomes.filter((o) => !o.recovered).map((o) => o.keyId);
  const keys = outcomes.length - notRecovered.length;
  await deps.audit.append({
    request: randomUUID(),
    op: 'RecoverGateway',
    signers: read.signers.map((s) => ({ name: s.client.name, id: s.client.id })),
    outcome: notRecovered.length === 0 && skipped.length === 0 ? 'ok' : 'failed',
    ...(notRecovered.length + skipped.length > 0 ? { reason: `not recovered: keys ${notRecovered.join(', ') || 'none'}; aliases ${skipped.join(', ') || 'none'}`.slice(0, 1000) } : {}),
    output: 'none',
    startedAt,
    detail: { keys, aliases, seq: Math.max(...read.signers.map((s) => s.seq)) },
  });
  await rm(recoveryMarker(deps.dir), { force: true });
  deps.log.warn({ keys, aliases, notRecovered }, 'the gateway directory was recovered from the signers');
  return { keys, aliases, notRecovered };
}
