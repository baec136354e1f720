/**
 * A ClientMetricsSink that feeds prom-client metrics registered in a Registry the application
 * passes in (its own, the one it serves on its /metrics endpoint). The client library itself
 * loads no metrics library: only an application importing `phalanx/metrics` loads prom-client.
 * docs/metrics.md lists the metrics.
 *
 * Usage:
 * ```ts
 * import { Registry } from 'prom-client';
 * import { prometheusClientMetrics } from 'phalanx/metrics';
 *
 * const registry = new Registry();
 * const metrics = prometheusClientMetrics(registry); // once per registry; share it among clients
 * const client = await PhalanxClient.connect({ config, client: keys, metrics });
 * // serve `await registry.metrics()` with content type registry.contentType
 * ```
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { ClientMetricsSink, InvocationPath, PhalanxErrorCode } from './client.js';

/** Latency buckets of one invocation, in seconds (a fast-path read to a retransmitted write). */
export const CLIENT_SECONDS_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];
const ERROR_CODES: readonly PhalanxErrorCode[] = [
  'timeout',
  'rejected',
  'unavailable',
  'overloaded',
  'closed',
  'safe-mode',
];
const PATHS: readonly InvocationPath[] = ['ordered', 'fast-path'];

/** Registers the client metrics in `registry` (a second call on one registry throws: names are taken). */
export function prometheusClientMetrics(registry: Registry): ClientMetricsSink {
  const registers = [registry];
  const duration = new Histogram({
    name: 'phalanx_client_request_duration_seconds',
    help: 'Time from invoke() to the answer (a quorum of matching replies), by path: ordered or read-only fast path',
    labelNames: ['path'],
    buckets: CLIENT_SECONDS_BUCKETS,
    registers,
  });
  const errors = new Counter({
    name: 'phalanx_client_errors_total',
    help: 'Invocations that failed, by PhalanxError code',
    labelNames: ['kind'],
    registers,
  });
  const retransmissions = new Counter({
    name: 'phalanx_client_retransmissions_total',
    help: 'Requests sent again to every replica because no quorum of replies came in time',
    registers,
  });
  const fallbacks = new Counter({
    name: 'phalanx_client_read_only_fallbacks_total',
    help: 'Read-only requests whose replies did not agree in time, sent again to be ordered',
    registers,
  });
  const evidence = new Counter({
    name: 'phalanx_client_evidence_reports_total',
    help: 'Lying replies proven by this client and reported to the replicas',
    registers,
  });
  // Every label value exists from the start: a rate() over errors finds its series at 0.
  for (const kind of ERROR_CODES) errors.inc({ kind }, 0);
  for (const path of PATHS) duration.zero({ path });
  // Children made once: observing through a child skips hashing the labels on every answer.
  const byPath = new Map(PATHS.map((path) => [path, duration.labels({ path })]));
  const byCode = new Map(ERROR_CODES.map((kind) => [kind, errors.labels({ kind })]));
  return {
    completed: (path, seconds) => byPath.get(path)?.observe(seconds),
    failed: (code) => byCode.get(code)?.inc(),
    retransmitted: (requests) => retransmissions.inc(requests),
    fellBack: () => fallbacks.inc(),
    evidenceReported: () => evidence.inc(),
  };
}
