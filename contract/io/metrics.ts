// What the gateway's and the signers' Prometheus metrics (gateway/metrics.ts,
// signers/node/metrics.ts) have in common: latency buckets, and a listener's open connections.
import type { Server } from 'node:net';

/** Latency buckets in seconds: from a FROST signature's milliseconds to an RSA key generation's seconds. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The connections `server` holds open now (0 if it cannot say: it is closed). */
export function openConnections(server: Server): Promise<number> {
  return new Promise((resolve) => server.getConnections((err, n) => resolve(err ? 0 : n)));
}
