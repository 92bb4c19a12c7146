// Finishing the key creations the last run left in the journal (gateway/create-journal.ts), at
// the gateway's start before any request is served. A creation is completed when every
// participant holds a share of the key with the same public package (the key is recorded, its
// proposal marked executed, then the key committed at every signer); otherwise it is rolled back:
// every participant forgets its pending share and gives back the authority it spent, so the
// proposal can be approved again. A creation that cannot be decided (a participant does not
// answer) stays journaled for the next start. Each decision is one gateway audit entry under the
// creation's request id, naming the signers that recorded a key share for it. Then the shares
// still pending at any signer are swept: committed if the key is recorded, else forgotten.
import { canonicalJson } from '../contract/canonical.js';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import { keyPackageSchema } from '../signers/protocols/key-package.js';
import type { Trace } from './cluster-outcome.js';
import { commitCreation, participantsOf, recordOfCreation, rollBackCreation, type CreationRecord } from './create-journal.js';
import type { GatewayDeps } from './deps.js';
import type { SignerClient } from './signer-client.js';

export interface ResumedCreation {
  KeyId: string;
  Outcome: 'completed' | 'rolled-back' | 'unfinished';
  /** Why it is still unfinished. */
  Error?: string;
}

type Deps = Pick<GatewayDeps, 'cluster' | 'audit' | 'log' | 'kmsState'>;

/** Completes or rolls back every journaled creation; one audit entry each. */
export async function resumeCreations(deps: Deps): Promise<ResumedCreation[]> {
  const out: ResumedCreation[] = [];
  for (const r of deps.cluster.creations.list()) {
    const trace: Trace = { signers: [] };
    const startedAt = Date.now();
    let result: ResumedCreation;
    try {
      result = await decide(deps, r, trace);
    } catch (e) {
      result = { KeyId: r.keyId, Outcome: 'unfinished', Error: (e as Error).message.slice(0, 1000) };
    }
    out.push(result);
    const level = result.Outcome === 'unfinished' ? 'error' : 'info';
    deps.log[level]({ keyId: r.keyId, session: r.session, outcome: result.Outcome, err: result.Error }, `interrupted key creation: ${result.Outcome}`);
    await deps.audit.append({
      request: r.session,
      op: 'CreateKey',
      keyId: r.keyId,
      signers: trace.signers.length ? trace.signers : undefined,
      session: r.session,
      outcome: result.Outcome === 'completed' ? 'ok' : 'failed',
      reason: result.Outcome === 'completed' ? undefined : (result.Error ?? 'interrupted by a gateway restart; rolled back at every signer'),
      output: result.Outcome === 'completed' ? 'key' : 'none',
      startedAt,
      detail: { resumed: true, outcome: result.Outcome, ...(r.proposal ? { proposal: r.proposal } : {}) },
    });
  }
  return out;
}

async function decide(deps: Deps, r: CreationRecord, trace: Trace): Promise<ResumedCreation> {
  const { cluster, log } = deps;
  const chosen = participantsOf(cluster.active, r);
  const unfinished = (why: string): ResumedCreation => ({ KeyId: r.keyId, Outcome: 'unfinished', Error: why });
  const entries = await Promise.all(chosen.map((c) => c.call(signerRoutes.keys.inventory, { keyId: r.keyId }).then((a) => a.keys.find((k) => k.keyId === r.keyId))));
  const holding = chosen.filter((_, i) => entries[i]?.share);
  trace.signers = holding.map((c) => ({ name: c.name, id: c.id }));
  const recorded = cluster.keys.get(r.keyId);
  const packages = entries.map((e) => (e?.publicPackage === undefined ? undefined : canonicalJson(e.publicPackage)));
  const complete = chosen.length === r.participants.length && packages.every((p) => p !== undefined && p === packages[0]);
  if (recorded || complete) {
    if (!recorded) {
      await cluster.keys.put(recordOfCreation(r, keyPackageSchema.parse(entries[0]!.publicPackage)));
      // The policy asked for, as CreateKey stores it beside the key (none stored: the default one).
      if (r.policy !== undefined) await deps.kmsState.exclusive(() => deps.kmsState.putPolicy(r.keyId, r.policy!));
    }
    if (r.proposal) await cluster.proposalExecuted?.(r.proposal);
    return (await commitCreation(cluster.active, cluster.creations, r, log)) ? { KeyId: r.keyId, Outcome: 'completed' } : unfinished('not every signer committed the key');
  }
  const failed = await rollBackCreation(cluster.active, cluster.creations, r, log);
  return failed.length ? unfinished(`not rolled back everywhere: ${failed.join('; ')}`) : { KeyId: r.keyId, Outcome: 'rolled-back' };
}

/**
 * After the journal, a share still pending at a signer belongs to no creation in progress (none
 * runs before the gateway serves). If the gateway records its key, it was never committed at that
 * signer: it is committed now. If not, it is an orphan of a creation whose journal record is
 * gone: it is forgotten (a signer forgets only a pending share on the gateway's word). A
 * creation still journaled is left to the next start.
 */
export async function sweepPending(deps: Pick<GatewayDeps, 'cluster' | 'log'>): Promise<{ committed: number; forgotten: number }> {
  const { cluster, log } = deps;
  const done = { committed: 0, forgotten: 0 };
  // Signers in parallel: one that hangs costs the start its call's bound once, not once per signer.
  const sweep = async (c: SignerClient) => {
    try {
      for (const { keyId } of (await c.call(signerRoutes.keys.inventory, { pending: true })).keys) {
        if (cluster.creations.get(keyId)) continue;
        if (cluster.keys.get(keyId)) {
          await c.call(signerRoutes.keys.commit, { keyId });
          done.committed++;
        } else {
          await c.call(signerRoutes.keys.forget, { keyId });
          done.forgotten++;
          log.warn({ keyId, signer: c.name }, 'an orphan share of an interrupted key creation was forgotten');
        }
      }
    } catch (e) {
      log.warn({ signer: c.name, err: (e as Error).message }, 'the pending shares of a signer could not be swept; doctor shows what is left');
    }
  };
  await Promise.all(cluster.active.map(sweep));
  return done;
}
