// A signer's Prometheus metrics: the gateway's calls by route and outcome and their latency, the
// protocol sessions it gave up by the peer it blamed, the audit chain's length, the store's epoch (governance version and ledger seq, as the posture
// report gives them), the keys held and the RPC listener's open connections. The RPC listener
// answers only the pinned gateway and a public /health, so the metrics have a listener of their
// own, opened only where the configuration's `metricsListen` says — a loopback address, plain
// HTTP, GET /metrics and nothing else — and by default nowhere (docs/operations.md, "Metrics").
// Label values are route paths and refusal codes, both from fixed sets; no value is a secret.
import http from 'node:http';
import type net from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { z } from 'zod';
import { listen } from '../../contract/io/listen.js';
import { LATENCY_BUCKETS, openConnections } from '../../contract/io/metrics.js';
import { splitListen } from './config.js';
import { RpcError, type RpcHandler } from './rpc.js';

/** What the gauges read at each scrape. */
export interface SignerMetricSources {
  /** The head of this signer's audit log (its first entry is seq 0). */
  auditHead(): { seq: number };
  /** Its epoch and keys once it holds policy state; undefined while it awaits admission. */
  state(): { epoch: { governanceVersion: number; ledgerSeq: number }; keys: number } | undefined;
  /** A peer's name by its party id, where this signer's configuration names it. */
  peerName(id: number): string | undefined;
}

/** A scrape that has not sent its request in this long is dropped; the listener holds this many connections at most. */
const REQUEST_TIMEOUT_MS = 10_000;
const MAX_CONNECTIONS = 16;

export class SignerMetrics {
  readonly registry = new Registry();
  private readonly calls: Counter<'route' | 'outcome'>;
  private readonly duration: Histogram<'route'>;
  private readonly aborts: Counter<'peer'>;
  private rpc: net.Server | undefined;

  constructor(private readonly sources: SignerMetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.calls = new Counter({ name: 'mpchsm_signer_calls_total', help: "The gateway's authenticated calls, by route and outcome (ok, or the refusal code)", labelNames: ['route', 'outcome'], registers });
    this.duration = new Histogram({ name: 'mpchsm_signer_call_duration_seconds', help: "Time to answer the gateway's calls, by route", labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
    this.aborts = new Counter({ name: 'mpchsm_signer_protocol_aborts_total', help: 'Protocol sessions this signer gave up (refused as protocol-abort), by the peer whose message it blamed (none: no peer named)', labelNames: ['peer'], registers });
    new Gauge({ name: 'mpchsm_signer_audit_chain_length', help: "Entries in this signer's audit log", registers, collect() { this.set(sources.auditHead().seq + 1); } });
    new Gauge({ name: 'mpchsm_signer_governance_version', help: 'The governance version in force here (0 while awaiting admission)', registers, collect() { this.set(sources.state()?.epoch.governanceVersion ?? 0); } });
    new Gauge({ name: 'mpchsm_signer_ledger_seq', help: 'The last governance change applied here (0 while awaiting admission)', registers, collect() { this.set(sources.state()?.epoch.ledgerSeq ?? 0); } });
    new Gauge({ name: 'mpchsm_signer_keys', help: 'Keys this signer holds a share of', registers, collect() { this.set(sources.state()?.keys ?? 0); } });
    const rpc = () => this.rpc;
    new Gauge({
      name: 'mpchsm_signer_open_connections',
      help: "Open connections on the RPC listener (the gateway's call connections and health checks)",
      registers,
      async collect() {
        const server = rpc();
        this.set(server ? await openConnections(server) : 0);
      },
    });
  }

  /** The `peer` label of a protocol-abort refusal's message: the peer's name, else its party id (1..255), else `none`. */
  private culprit(message: string): string {
    const sender = culpritOf(message);
    return sender === undefined ? 'none' : (this.sources.peerName(sender) ?? `party-${sender}`);
  }

  /** Counts the RPC listener's open connections from now on. */
  watch(rpc: net.Server): void {
    this.rpc = rpc;
  }

  /** The same routes, each call counted by its outcome and timed. */
  instrument(routes: Record<string, RpcHandler>): Record<string, RpcHandler> {
    return Object.fromEntries(
      Object.entries(routes).map(([route, handler]): [string, RpcHandler] => [
        route,
        async (body, meta) => {
          const timer = this.duration.startTimer({ route });
          let outcome = 'internal';
          try {
            const answer = await handler(body, meta);
            outcome = 'ok';
            return answer;
          } catch (e) {
            // As rpc.ts answers it: the refusal's code, a request that fails its schema, else internal.
            outcome = e instanceof RpcError ? e.code : e instanceof z.ZodError ? 'malformed' : 'internal';
            if (e instanceof RpcError && e.code === 'protocol-abort') this.aborts.inc({ peer: this.culprit(e.message) });
            throw e;
          } finally {
            timer();
            this.calls.inc({ route, outcome });
          }
        },
      ]),
    );
  }
}

/** The party a protocol-abort refusal blames: its message is JSON naming the `sender` (sessions.ts, ecdsa.ts). */
function culpritOf(message: string): number | undefined {
  try {
    const sender = (JSON.parse(message) as { sender?: unknown }).sender;
    return Number.isInteger(sender) && (sender as number) >= 1 && (sender as number) <= 255 ? (sender as number) : undefined;
  } catch {
    return undefined;
  }
}

/** Serves GET /metrics at `address` (a loopback HOST:PORT, checked by the configuration's schema). */
export async function startMetricsListener(address: string, metrics: SignerMetrics): Promise<http.Server> {
  const { host, port } = splitListen(address);
  const server = http.createServer({ headersTimeout: REQUEST_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('GET /metrics only\n');
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  server.maxConnections = MAX_CONNECTIONS;
  await listen(server, host, port);
  return server;
}
