/**
 * Cluster web dashboard: polls every replica's admin endpoint and serves a live page.
 *
 * ```ts
 * import { DashboardServer } from './index.js';
 *
 * const dashboard = await DashboardServer.start({
 *   cluster: { n: 4, f: 1, k: 0 },
 *   replicaAdminUrls: ['http://127.0.0.1:9100', 'http://127.0.0.1:9101', 'http://127.0.0.1:9102', 'http://127.0.0.1:9103'],
 *   // Optional: each replica's guardian and the configured recovery timing (T = T_P + T_D).
 *   // guardianAdminUrls: ['http://127.0.0.1:9200', …],
 *   // recovery: { guaranteeMs: 64_000, recoveryBoundMs: 8_000, periodMs: 56_000 },
 *   // The cluster's protocol.requestTimeoutMs, which the stall verdict is measured against:
 *   // requestTimeoutMs: 2000,
 * });
 * console.log(`open ${dashboard.url}`);
 * // … later
 * await dashboard.close();
 * ```
 */
export { GUARDIAN_STATUS_LIMITS, type GuardianStatusParse, parseGuardianStatus } from './guardian-status.js';
export {
  type DashboardPage,
  type DashboardPageOptions,
  RECENT_ENTRIES_SHOWN,
  CHART_WINDOW_MS,
  renderDashboardPage,
} from './page.js';
export {
  type ClientLatency,
  type DashboardHealth,
  type DashboardHistoryJson,
  type DashboardLogJson,
  type DashboardVerdict,
  type EvidenceIncident,
  HISTORY_DEFAULTS,
  HISTORY_LIMITS,
  historyBytes,
} from './history.js';
export {
  DASHBOARD_DEFAULTS,
  DASHBOARD_LIMITS,
  type DashboardClusterStatus,
  DashboardServer,
  type DashboardServerOptions,
  parseReplicaStatus,
  type ReplicaStatusParse,
} from './server.js';
