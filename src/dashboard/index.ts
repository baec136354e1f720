/**
 * Cluster web dashboard: polls every replica's admin endpoint and serves a live page.
 *
 * ```ts
 * import { DashboardServer } from './index.js';
 *
 * const dashboard = await DashboardServer.start({
 *   cluster: { n: 4, f: 1, k: 0 },
 *   replicaAdminUrls: ['http://127.0.0.1:9100', 'http://127.0.0.1:9101', 'http://127.0.0.1:9102', 'http://127.0.0.1:9103'],
 * });
 * console.log(`open ${dashboard.url}`);
 * // … later
 * await dashboard.close();
 * ```
 */
export {
  type DashboardPage,
  type DashboardPageOptions,
  renderDashboardPage,
  SPARKLINE_SAMPLES,
} from './page.js';
export {
  DASHBOARD_DEFAULTS,
  DASHBOARD_LIMITS,
  DashboardServer,
  type DashboardServerOptions,
  parseReplicaStatus,
  type ReplicaStatusParse,
} from './server.js';
