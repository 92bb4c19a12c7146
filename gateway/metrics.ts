// The gateway's Prometheus metrics, answered at GET /metrics on the KMS listener (no SigV4, as a
// scraper asks; no audit entry, no log line): requests by facade, operation and outcome and their
// latency, protocol aborts by signer, quorum availability, the audit chain's length and the
// listeners' open connections (docs/operations.md, "Metrics"). A scrape reads what the gateway
// holds in memory and asks no signer. Every label value is from a fixed set (the operations the
// gateway serves, error names, the signers' names), never the request's own input, and no value
// is a secret.
import type net from 'node:net';
import type Koa from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LATENCY_BUCKETS, openConnections } from '../contract/io/metrics.js';
import { CKR } from '../contract/pkcs11/ck.js';
import { OP } from '../contract/pkcs11/wire.js';
import type { KmsErrorName } from './kms/errors.js';
import type { KmsRequest } from './kms/mw/state.js';
import { parseTarget } from './kms/mw/target.js';
import type { AbortReason } from './planner.js';

/** What the gauges read at each scrape. */
export interface GatewayMetricSources {
  /** Each active signer and whether it is reachable (Cluster.reachability). */
  reachability(): { name: string; reachable: boolean }[];
  threshold: number;
  /** The head of the gateway's audit log (its first entry is seq 0). */
  auditHead(): { seq: number };
}

type Listener = 'kms' | 'pkcs11';
const P11_OPERATIONS = new Set(Object.keys(OP).map((k) => k.toLowerCase()));
const CKR_NAMES = new Map<number, string>(Object.entries(CKR).map(([name, rv]) => [rv, `CKR_${name}`]));

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'facade' | 'operation' | 'outcome'>;
  private readonly duration: Histogram<'facade' | 'operation'>;
  private readonly aborts: Counter<'signer' | 'reason'>;
  private readonly listeners = new Map<Listener, net.Server>();

  constructor(sources: GatewayMetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: 'mpchsm_gateway_requests_total', help: 'Requests answered, by facade (kms, pkcs11), operation and outcome (ok, or the error name)', labelNames: ['facade', 'operation', 'outcome'], registers });
    this.duration = new Histogram({ name: 'mpchsm_gateway_request_duration_seconds', help: 'Time from a request to its answer (its audit entry included), by facade and operation', labelNames: ['facade', 'operation'], buckets: LATENCY_BUCKETS, registers });
    this.aborts = new Counter({ name: 'mpchsm_gateway_protocol_aborts_total', help: "Signers' parts in sessions given up, by signer and reason (bad-partial, timeout, unreachable, failed)", labelNames: ['signer', 'reason'], registers });
    const reachable = () => sources.reachability().filter((s) => s.reachable).length;
    new Gauge({ name: 'mpchsm_gateway_threshold', help: 'Signers a session needs', registers, collect() { this.set(sources.threshold); } });
    new Gauge({ name: 'mpchsm_gateway_signers_active', help: 'Signers the gateway plans with', registers, collect() { this.set(sources.reachability().length); } });
    new Gauge({ name: 'mpchsm_gateway_signers_reachable', help: 'Active signers not held down by the planner (unreachable or failing until a health probe re-admits them)', registers, collect() { this.set(reachable()); } });
    new Gauge({ name: 'mpchsm_gateway_quorum_available', help: '1 when at least threshold signers are reachable, else 0', registers, collect() { this.set(reachable() >= sources.threshold ? 1 : 0); } });
    new Gauge({
      name: 'mpchsm_gateway_signer_reachable',
      help: 'Per active signer: 1 reachable, 0 held down by the planner',
      labelNames: ['signer'],
      registers,
      collect() {
        this.reset();
        for (const s of sources.reachability()) this.set({ signer: s.name }, s.reachable ? 1 : 0);
      },
    });
    new Gauge({ name: 'mpchsm_gateway_audit_chain_length', help: "Entries in the gateway's audit log", registers, collect() { this.set(sources.auditHead().seq + 1); } });
    const listeners = this.listeners;
    new Gauge({
      name: 'mpchsm_gateway_open_connections',
      help: 'Open connections by listener (kms, pkcs11)',
      labelNames: ['listener'],
      registers,
      async collect() {
        for (const [name, server] of listeners) this.set({ listener: name }, await openConnections(server));
      },
    });
  }

  /** Counts a listener's open connections from now on. */
  watch(listener: Listener, server: net.Server): void {
    this.listeners.set(listener, server);
  }

  /** A signer's part in a session given up (Cluster.signerAborted). */
  readonly protocolAbort = (signer: string, reason: AbortReason): void => {
    this.aborts.inc({ signer, reason });
  };

  /** One PKCS#11 request answered: its operation as the listener named it, the CKR it was answered with. */
  pkcs11Request(op: string, rv: number, seconds: number): void {
    const operation = P11_OPERATIONS.has(op) ? op : 'unknown';
    this.requests.inc({ facade: 'pkcs11', operation, outcome: rv === CKR.OK ? 'ok' : (CKR_NAMES.get(rv) ?? 'CKR_other') });
    this.duration.observe({ facade: 'pkcs11', operation }, seconds);
  }

  /**
   * Before the KMS API's chain: answers GET /metrics, and counts and times every other request
   * under the operation its X-Amz-Target names if the gateway serves it, else `unknown`.
   */
  middleware(): Koa.Middleware<KmsRequest> {
    return async (ctx, next) => {
      if (ctx.method === 'GET' && ctx.path === '/metrics') {
        ctx.set('Content-Type', this.registry.contentType);
        ctx.body = await this.registry.metrics();
        return;
      }
      const labels = { facade: 'kms', operation: parseTarget(ctx.get('x-amz-target'))?.operation ?? 'unknown' };
      const timer = this.duration.startTimer(labels);
      let outcome: string = 'KMSInternalException' satisfies KmsErrorName;
      try {
        await next();
        outcome = kmsOutcome(ctx.state);
      } finally {
        timer();
        this.requests.inc({ ...labels, outcome });
      }
    };
  }
}

/** `ok`, or the AWS error name the request was answered with (an answer withheld for want of its audit entry: KMSInternalException). */
function kmsOutcome(s: KmsRequest): string {
  if (s.status < 300) return 'ok';
  return s.outcome === 'ok' ? ('KMSInternalException' satisfies KmsErrorName) : s.outcome;
}
