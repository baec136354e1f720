/**
 * `phalanx/metrics`: Prometheus metrics of the client library, for an application that serves
 * its own /metrics. It loads prom-client, which the main entry `phalanx` does not: an application
 * that wants no metrics never loads it. The replicas and guardians serve theirs on their admin
 * ports; docs/metrics.md lists every metric of every process.
 *
 * Usage:
 * ```ts
 * import { Registry } from 'prom-client';
 * import { PhalanxClient } from 'phalanx';
 * import { prometheusClientMetrics } from 'phalanx/metrics';
 *
 * const registry = new Registry();
 * const client = await PhalanxClient.connect({ config, client: keys, metrics: prometheusClientMetrics(registry) });
 * ```
 */
export { CLIENT_SECONDS_BUCKETS, prometheusClientMetrics } from './client/prometheus-metrics.js';
export type { ClientMetricsSink, InvocationPath } from './client/client.js';
