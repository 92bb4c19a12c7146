// Anchoring the gateway's audit head at the signers, so that cutting entries off the end of its
// log is caught. Every signer call carries the gateway's head (`callerHead`), which the signer
// records, but the entries after the last call would stay unanchored; so within about a second
// of the log's head moving, and once more at shutdown (after the closing checkpoint), every
// active signer is asked to record the current head (contract/signer-rpc/audit.ts). `audit
// verify` then reports a gateway log that ends before a head a signer anchored (audit/verify.ts).
// At most one anchor a signer per `everyMs`; a signer that was down is anchored at the next tick.
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import type { GatewayDeps } from './deps.js';

const ANCHOR_TIMEOUT_MS = 2_000;
const STOP_WITHIN_MS = 3_000;

export interface AuditAnchor {
  /** Anchors the head now (bounded by the call timeout), then stops. */
  stop(): Promise<void>;
}

export function startAuditAnchor(deps: Pick<GatewayDeps, 'cluster' | 'audit' | 'log'>, everyMs = 1_000): AuditAnchor {
  /** Per signer id: the last head seq it acknowledged holding. */
  const anchored = new Map<number, number>();
  let running: Promise<void> | undefined;

  const anchor = async () => {
    const head = deps.audit.head();
    const behind = deps.cluster.active.filter((c) => (anchored.get(c.id) ?? -1) < head.seq);
    await Promise.all(
      behind.map(async (c) => {
        try {
          const r = await c.call(signerRoutes.audit.anchor, {}, { timeoutMs: ANCHOR_TIMEOUT_MS });
          // The latest head it holds (none: it recorded none yet, too soon after another).
          anchored.set(c.id, r.head?.seq ?? -1);
        } catch (e) {
          deps.log.debug({ signer: c.name, err: (e as Error).message }, 'audit anchor not recorded; retrying at the next tick');
        }
      }),
    );
  };
  const tick = () => {
    running ??= anchor().finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => void tick(), everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      const last = async () => {
        await running;
        await tick();
        // A signer records at most a few anchors a second: one asked just before may have declined.
        if (deps.cluster.active.some((c) => (anchored.get(c.id) ?? -1) < deps.audit.head().seq)) {
          await new Promise((r) => setTimeout(r, 250));
          await tick();
        }
      };
      // A hung signer does not hold the shutdown up for longer than this.
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([last(), new Promise((r) => (timeout = setTimeout(r, STOP_WITHIN_MS)))]);
      clearTimeout(timeout);
    },
  };
}
