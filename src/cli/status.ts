/**
 * `phalanx status`: what every replica (and, with guardians, every guardian) reports on its admin
 * port, and one verdict: whether the cluster makes progress (src/runtime/health.ts), and, from
 * the guardians, whether the guarantee still holds (src/runtime/exposure.ts: unsafe).
 */
import type { Command } from 'commander';
import type { ClusterConfig } from '../config/cluster-config.js';
import { parseGuardianStatus } from '../dashboard/guardian-status.js';
import { parseReplicaStatus } from '../dashboard/server.js';
import type { GuardianReport, GuardianStatus } from '../runtime/guardian-report.js';
import {
  describeExposure,
  describeTimedRejuvenation,
  type GuaranteeFindings,
  guaranteeFindings,
} from '../runtime/exposure.js';
import {
  type ClusterHealth,
  clusterHealth,
  describeRejuvenation,
  formatAge,
  type HealthVerdict,
} from '../runtime/health.js';
import {
  fetchStatusReport,
  MAX_GUARDIAN_STATUS_BYTES,
  MAX_REPLICA_STATUS_BYTES,
  type ReplicaReport,
  type ReplicaStatus,
} from '../runtime/status.js';
import { configOrExit, DEFAULT_CONFIG, OPTION_RANGES, rangedOption, USAGE_EXIT_CODE } from './options.js';

/**
 * Exit statuses (README, CLI reference; `phalanx status --help`): a script watching the cluster
 * needs to tell "the cluster needs attention" (1) from "cannot ask it at all" (2).
 */
export const STATUS_EXIT_CODES = {
  /** Healthy. */
  healthy: 0,
  /** Degraded, stalled or unsafe: the verdict line and the reasons say which and why. */
  unhealthy: 1,
  /** No replica (and no guardian) answered its admin port. */
  unreachable: 2,
  /** A bad option or configuration (configOrExit's status for the latter). */
  usage: USAGE_EXIT_CODE,
} as const;

/** The verdict `phalanx status` prints: clusterHealth's, or worse when the guarantee is broken. */
export type StatusVerdict = HealthVerdict | 'unsafe' | 'unreachable';

export interface StatusReport {
  readonly verdict: StatusVerdict;
  /** Why, in words, the gravest first; empty when healthy. */
  readonly reasons: readonly string[];
  readonly health: ClusterHealth;
  /** With guardians: exposure, rejuvenations against T_D, and the unsafe findings. */
  readonly guarantee: GuaranteeFindings | null;
}

/** Combines the progress verdict with the guardians' findings about the guarantee. */
export function statusReport(
  reports: readonly ReplicaReport[],
  guardians: readonly GuardianReport[] | undefined,
  health: ClusterHealth,
  parameters: { readonly f: number; readonly nowMs: number },
): StatusReport {
  const guarantee = guardians === undefined ? null : guaranteeFindings(guardians, parameters);
  const nothingAnswered =
    reports.every((report) => !report.up) && (guardians ?? []).every((report) => !report.up);
  if (nothingAnswered) {
    const first = reports[0];
    return {
      verdict: 'unreachable',
      reasons: [
        `no replica${guardians === undefined ? '' : ' or guardian'} answered its admin port` +
          (first !== undefined && !first.up ? ` (replica ${first.replica}: ${first.error})` : ''),
      ],
      health,
      guarantee,
    };
  }
  // A replica in safe mode holds proof of a fork: more than f replicas misbehaved.
  const forked = reports.flatMap((report) =>
    report.up && report.safeMode === true
      ? [
          `replica ${report.replica} is in safe mode: proof that more than f = ${parameters.f} replicas ` +
            `misbehaved (culprits ${(report.safeModeCulprits ?? []).join(', ')}); writes are refused`,
        ]
      : [],
  );
  const unsafe = [...forked, ...(guarantee?.unsafe ?? [])];
  const overdue = guarantee?.overdue ?? [];
  const verdict: StatusVerdict =
    unsafe.length > 0
      ? 'unsafe'
      : health.verdict === 'healthy' && overdue.length > 0
        ? 'degraded'
        : health.verdict;
  return { verdict, reasons: [...unsafe, ...health.reasons, ...overdue], health, guarantee };
}

export function statusExitCode(report: Pick<StatusReport, 'verdict'>): number {
  if (report.verdict === 'healthy') return STATUS_EXIT_CODES.healthy;
  if (report.verdict === 'unreachable') return STATUS_EXIT_CODES.unreachable;
  return STATUS_EXIT_CODES.unhealthy;
}

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

function pendingText(status: ReplicaStatus): string {
  if (status.pendingRequests === 0 || status.oldestPendingMs === null) return String(status.pendingRequests);
  return `${status.pendingRequests} (${formatAge(status.oldestPendingMs)})`;
}

/** The table and the verdict, as `phalanx status` prints them. */
export function formatStatus(
  config: Pick<ClusterConfig, 'n' | 'f' | 'k'>,
  reports: readonly ReplicaReport[],
  status: StatusReport,
): string {
  const { health, guarantee } = status;
  const exposures = new Map((guarantee?.exposures ?? []).map((exposure) => [exposure.replica, exposure]));
  const lines = [
    `n = ${config.n}, f = ${config.f}, k = ${config.k}`,
    'replica  role     view  executed  checkpoint  req/s    peers  pending     state',
  ];
  reports.forEach((report, index) => {
    const id = String(report.replica).padEnd(9);
    const rejuvenation = health.replicas[index]?.rejuvenation ?? null;
    const exposure = exposures.get(report.replica);
    const timed = exposure?.rejuvenation ?? null;
    const rejuvenating =
      rejuvenation === null
        ? null
        : timed === null || exposure === undefined
          ? `rejuvenating (${describeRejuvenation(rejuvenation)})`
          : `rejuvenating (${describeTimedRejuvenation(timed)}; exposure ${describeExposure(exposure)})`;
    if (!report.up) {
      lines.push(`${id}${rejuvenating ?? `DOWN     ${report.error}`}`);
      return;
    }
    const conditions = [
      ...(report.safeMode === true
        ? [`SAFE MODE (beyond f; culprits ${(report.safeModeCulprits ?? []).join(', ')})`]
        : []),
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
  if (guarantee !== null && guarantee.exposures.length > 0) {
    const bound = guarantee.exposures[0]!.guaranteeMs;
    lines.push(
      '',
      `exposure (of T = ${formatAge(bound)}): ` +
        guarantee.exposures
          .map(
            (exposure) =>
              `${exposure.replica}: ${formatAge(exposure.exposureMs)} (epoch ${exposure.keyEpoch})`,
          )
          .join(', '),
    );
  }
  lines.push('', `cluster: ${status.verdict}`, ...status.reasons.map((reason) => `  ${reason}`));
  lines.push(...health.notices);
  return `${lines.join('\n')}\n`;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      'show each replica, its exposure against T and any rejuvenation against T_D, and one verdict ' +
        '(healthy, degraded, stalled, unsafe) with the reasons',
    )
    .option('--config <file>', 'cluster configuration', DEFAULT_CONFIG)
    .option('--json', 'print the checked reports, the verdict and its reasons as one JSON object')
    .option(
      '--timeout <ms>',
      'wait this long for each admin port (100 to 60000)',
      rangedOption('--timeout', OPTION_RANGES.adminTimeoutMs),
      STATUS_FETCH_TIMEOUT_MS,
    )
    .addHelpText(
      'after',
      '\nExit status: 0 healthy; 1 degraded, stalled or unsafe (the verdict line says which, and why);\n' +
        '2 no replica or guardian answered, or a bad option or configuration file.\n',
    )
    .action(async (options: { config: string; json?: boolean; timeout: number }) => {
      const config = await configOrExit(options.config);
      const [reports, guardians] = await Promise.all([
        fetchReplicaReports(config, options.timeout),
        fetchGuardianReports(config, options.timeout),
      ]);
      const nowMs = Date.now();
      const health = clusterHealth(reports, guardians, {
        n: config.n,
        f: config.f,
        k: config.k,
        requestTimeoutMs: config.protocol.requestTimeoutMs,
        nowMs,
      });
      const status = statusReport(reports, guardians, health, { f: config.f, nowMs });
      process.exitCode = statusExitCode(status);
      if (options.json === true) {
        process.stdout.write(
          `${JSON.stringify({
            n: config.n,
            f: config.f,
            k: config.k,
            verdict: status.verdict,
            reasons: status.reasons,
            notices: health.notices,
            replicas: reports,
            ...(guardians === undefined ? {} : { guardians }),
            ...(status.guarantee === null ? {} : { exposures: status.guarantee.exposures }),
            health,
          })}\n`,
        );
        return;
      }
      process.stdout.write(formatStatus(config, reports, status));
    });
}
