/**
 * `phalanx status`: what every replica (and, with guardians, every guardian) reports on its admin
 * port, and the verdict on whether the cluster makes progress (src/runtime/health.ts).
 */
import type { Command } from 'commander';
import type { ClusterConfig } from '../config/cluster-config.js';
import { parseGuardianStatus } from '../dashboard/guardian-status.js';
import { parseReplicaStatus } from '../dashboard/server.js';
import type { GuardianReport, GuardianStatus } from '../runtime/guardian-report.js';
import { type ClusterHealth, clusterHealth, describeRejuvenation, formatAge } from '../runtime/health.js';
import {
  fetchStatusReport,
  MAX_GUARDIAN_STATUS_BYTES,
  MAX_REPLICA_STATUS_BYTES,
  type ReplicaReport,
  type ReplicaStatus,
} from '../runtime/status.js';
import { configOrExit, DEFAULT_CONFIG } from './options.js';

/**
 * Exit statuses (README, CLI reference). A cluster that is only degraded (a replica transferring
 * state, not voting or being rejuvenated by its guardian, a guardian not answering) exits 0: it
 * still makes progress, and a rejuvenation is the schedule at work, not a fault.
 */
export const STATUS_EXIT_CODES = {
  /** Healthy, or degraded with every replica answering or being rejuvenated. */
  ok: 0,
  /** A replica does not answer and no guardian reports rejuvenating it; the rest progress. */
  replicaDown: 1,
  /** A bad option or configuration (configOrExit's status for the latter). */
  usage: 2,
  /** The verdict is stalled: requests wait and nothing executes, or no quorum votes. */
  stalled: 3,
} as const;

/** How long to wait for each admin port. */
const STATUS_FETCH_TIMEOUT_MS = 2000;

/** Longest error text printed for a replica or guardian (errors may quote what it sent). */
const MAX_PRINTED_ERROR_LENGTH = 300;

/** Control characters from a replica's answer would let it drive the operator's terminal. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching them is the point
  const plain = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return plain.length > MAX_PRINTED_ERROR_LENGTH ? `${plain.slice(0, MAX_PRINTED_ERROR_LENGTH - 1)}…` : plain;
}

/**
 * Keeps an answer only if it is a well-formed status of the expected replica (the dashboard's
 * checks), so nothing below trusts a field's type, and `--json` relays known fields only.
 */
function checkedReplicaReport(report: ReplicaReport, replica: number): ReplicaReport {
  if (!report.up) return { up: false, replica, error: printable(report.error) };
  const { up: _up, ...body } = report;
  const parsed = parseReplicaStatus(body, replica);
  return parsed.ok
    ? { up: true, ...parsed.status }
    : { up: false, replica, error: printable(`invalid status: ${parsed.reason}`) };
}

function checkedGuardianReport(report: GuardianReport, replica: number): GuardianReport {
  if (!report.up) return { up: false, replica, error: printable(report.error) };
  const { up: _up, ...body } = report;
  const parsed = parseGuardianStatus(body, replica);
  if (!parsed.ok)
    return { up: false, replica, error: printable(`invalid guardian status: ${parsed.reason}`) };
  const boundary = parsed.status.trustBoundary;
  return {
    up: true,
    ...parsed.status,
    trustBoundary: { enforced: boundary.enforced, reason: printable(boundary.reason) },
  };
}

export async function fetchReplicaReports(
  config: ClusterConfig,
  timeoutMs = STATUS_FETCH_TIMEOUT_MS,
): Promise<ReplicaReport[]> {
  return Promise.all(
    config.replicas.map(async (replica) =>
      checkedReplicaReport(
        await fetchStatusReport<ReplicaStatus>(
          replica.id,
          `http://${replica.adminHost}:${replica.adminPort}/status`,
          timeoutMs,
          MAX_REPLICA_STATUS_BYTES,
        ),
        replica.id,
      ),
    ),
  );
}

/** What every guardian reports; undefined for a configuration without guardians. */
export async function fetchGuardianReports(
  config: ClusterConfig,
  timeoutMs = STATUS_FETCH_TIMEOUT_MS,
): Promise<GuardianReport[] | undefined> {
  if (config.recovery === null) return undefined;
  return Promise.all(
    config.replicas.map(async (replica) =>
      checkedGuardianReport(
        await fetchStatusReport<GuardianStatus>(
          replica.id,
          `http://${replica.adminHost}:${replica.guardianAdminPort}/status`,
          timeoutMs,
          MAX_GUARDIAN_STATUS_BYTES,
        ),
        replica.id,
      ),
    ),
  );
}

export function statusExitCode(health: ClusterHealth): number {
  if (health.verdict === 'stalled') return STATUS_EXIT_CODES.stalled;
  if (health.replicas.some((replica) => replica.condition === 'down')) return STATUS_EXIT_CODES.replicaDown;
  return STATUS_EXIT_CODES.ok;
}

function pendingText(status: ReplicaStatus): string {
  if (status.pendingRequests === 0 || status.oldestPendingMs === null) return String(status.pendingRequests);
  return `${status.pendingRequests} (${formatAge(status.oldestPendingMs)})`;
}

/** The table and the verdict, as `phalanx status` prints them. */
export function formatStatus(
  config: Pick<ClusterConfig, 'n' | 'f' | 'k'>,
  reports: readonly ReplicaReport[],
  health: ClusterHealth,
): string {
  const lines = [
    `n = ${config.n}, f = ${config.f}, k = ${config.k}`,
    'replica  role     view  executed  checkpoint  req/s    peers  pending     state',
  ];
  reports.forEach((report, index) => {
    const id = String(report.replica).padEnd(9);
    const rejuvenation = health.replicas[index]?.rejuvenation ?? null;
    const rejuvenating =
      rejuvenation === null ? null : `rejuvenating (${describeRejuvenation(rejuvenation)})`;
    if (!report.up) {
      lines.push(`${id}${rejuvenating ?? `DOWN     ${report.error}`}`);
      return;
    }
    const conditions = [
      ...(rejuvenating === null ? [] : [rejuvenating]),
      ...(report.stateTransferInProgress ? ['transferring state'] : []),
      ...(report.viewChangeInProgress ? ['view change'] : []),
      ...(report.voting ? [] : ['not voting']),
    ];
    lines.push(
      `${id}${report.role.padEnd(9)}${String(report.view).padEnd(6)}` +
        `${String(report.lastExecuted).padEnd(10)}${String(report.stableCheckpoint).padEnd(12)}` +
        `${String(report.throughputPerSecond).padEnd(9)}${String(report.connectedPeers).padEnd(7)}` +
        `${pendingText(report).padEnd(12)}${conditions.length === 0 ? 'ok' : conditions.join(', ')}`,
    );
  });
  lines.push('', `cluster: ${health.verdict}`, ...health.reasons.map((reason) => `  ${reason}`));
  lines.push(...health.notices);
  return `${lines.join('\n')}\n`;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      'show each replica (role, view, executed and checkpointed sequence, throughput, waiting requests) ' +
        'and whether the cluster makes progress; exit 0 healthy or degraded, 1 a replica down, 3 stalled',
    )
    .option('--config <file>', 'cluster configuration', DEFAULT_CONFIG)
    .option('--json', 'print the checked reports and the verdict as JSON')
    // A usage error must not read as exit 1 (a replica down) to a script watching the cluster.
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : STATUS_EXIT_CODES.usage))
    .action(async (options: { config: string; json?: boolean }) => {
      const config = await configOrExit(options.config);
      const [reports, guardians] = await Promise.all([
        fetchReplicaReports(config),
        fetchGuardianReports(config),
      ]);
      const health = clusterHealth(reports, guardians, {
        n: config.n,
        f: config.f,
        k: config.k,
        requestTimeoutMs: config.protocol.requestTimeoutMs,
        nowMs: Date.now(),
      });
      process.exitCode = statusExitCode(health);
      if (options.json === true) {
        process.stdout.write(
          `${JSON.stringify({
            n: config.n,
            f: config.f,
            k: config.k,
            replicas: reports,
            ...(guardians === undefined ? {} : { guardians }),
            health,
          })}\n`,
        );
        return;
      }
      process.stdout.write(formatStatus(config, reports, health));
    });
}
