/**
 * Whether a cluster makes progress, judged only from what its replicas (and guardians) report on
 * their admin ports. One pure function, so `phalanx status` and the dashboard give the same
 * verdict for the same reports.
 *
 * A replica answering its admin port says nothing about whether the cluster orders requests: a
 * cluster stuck in view changes answers on every port while every write fails. So the verdict
 * looks at progress: requests that wait far longer than the request timeout while no batch
 * executes mean a stall, and so does the loss of a voting quorum.
 *
 * Reports come from replicas that may be Byzantine, so every count that decides the verdict needs
 * f + 1 replicas to agree: up to f liars can neither fake a stall nor hide one.
 */
import { correctWitnessSize, type FaultModel, quorumSize } from '../core/quorum.js';
import type { GuardianReport, RecoveryKind, RecoveryStep } from './guardian-report.js';
import type { ReplicaReport, ReplicaStatus } from './status.js';

export type HealthVerdict = 'healthy' | 'degraded' | 'stalled';

/**
 * A request waiting this many request timeouts is a stall when nothing executes meanwhile. One
 * timeout makes the replicas suspect the leader; a working view change replaces it and executes
 * the request well within a second one, so requests older than two have outlived the remedy.
 */
export const STALL_AFTER_REQUEST_TIMEOUTS = 2;

export interface HealthParameters extends FaultModel {
  /** The protocol's request timeout (`protocol.requestTimeoutMs`). */
  readonly requestTimeoutMs: number;
  /** When the reports were collected (ms since the epoch): judges key-epoch expiry; omitted, it is not judged. */
  readonly nowMs?: number;
}

/** How the verdict counts one replica, the most telling first when several apply. */
export type ReplicaCondition = 'rejuvenating' | 'down' | 'transferring-state' | 'not-voting' | 'ok';

/** A rejuvenation in progress, as the replica's guardian reports it. */
export interface Rejuvenation {
  readonly kind: RecoveryKind | null;
  readonly step: RecoveryStep | null;
  /** The guardian's key epoch: the one the rejuvenated replica will use. */
  readonly keyEpoch: number;
}

export interface ReplicaHealth {
  readonly replica: number;
  readonly condition: ReplicaCondition;
  /** Its guardian's rejuvenation in progress; null when none (or without guardians). */
  readonly rejuvenation: Rejuvenation | null;
  /** Its guardian was asked and did not answer. */
  readonly guardianDown: boolean;
}

export interface ClusterHealth {
  readonly verdict: HealthVerdict;
  /** Why, in plain words naming replicas; empty when healthy. */
  readonly reasons: readonly string[];
  /**
   * What does not change the verdict but must be said plainly: replicas running as their
   * guardian's user (the trust boundary is not enforced), in the guardians' words.
   */
  readonly notices: readonly string[];
  /** Q = ⌈(n + f + 1) / 2⌉. */
  readonly quorum: number;
  /** Replicas up and voting. */
  readonly votingReplicas: number;
  /** STALL_AFTER_REQUEST_TIMEOUTS × the request timeout. */
  readonly stallAfterMs: number;
  /** One entry per replica, index = replica id. */
  readonly replicas: readonly ReplicaHealth[];
}

/** "replica 3", "replicas 1 and 3", "replicas 0, 1 and 2". */
export function replicaList(replicas: readonly number[]): string {
  if (replicas.length === 1) return `replica ${replicas[0]}`;
  const head = replicas.slice(0, -1).join(', ');
  return `replicas ${head} and ${replicas[replicas.length - 1]}`;
}

function verbFor(replicas: readonly number[], singular: string, plural: string): string {
  return replicas.length === 1 ? singular : plural;
}

/** Tenths of a second below 10 s, whole seconds below 2 min, then minutes and seconds. */
export function formatAge(ms: number): string {
  if (ms < 10_000) {
    const tenths = Math.round(ms / 100) / 10;
    return `${Number.isInteger(tenths) ? String(tenths) : tenths.toFixed(1)} s`;
  }
  const seconds = Math.round(ms / 1000);
  if (seconds < 120) return `${seconds} s`;
  const rest = seconds % 60;
  return `${Math.floor(seconds / 60)} min${rest === 0 ? '' : ` ${rest} s`}`;
}

/** "step validating-state, key epoch 5", as the CLI and the dashboard show a rejuvenation. */
export function describeRejuvenation(rejuvenation: Rejuvenation): string {
  const step = rejuvenation.step === null ? '' : `step ${rejuvenation.step}, `;
  return `${step}key epoch ${rejuvenation.keyEpoch}`;
}

/** The `rank`-th largest value (1 = the largest); at least one of `rank` reporters vouches for it. */
function rankedDescending(values: readonly number[], rank: number): number | undefined {
  return [...values].sort((a, b) => b - a)[rank - 1];
}

function rejuvenationOf(guardian: GuardianReport | undefined, replica: number): Rejuvenation | null {
  if (guardian === undefined || !guardian.up || guardian.replica !== replica) return null;
  if (!guardian.recovery.inProgress) return null;
  return { kind: guardian.recovery.kind, step: guardian.recovery.step, keyEpoch: guardian.keyEpoch };
}

function conditionOf(report: ReplicaReport, rejuvenation: Rejuvenation | null): ReplicaCondition {
  if (rejuvenation !== null) return 'rejuvenating';
  if (!report.up) return 'down';
  if (report.stateTransferInProgress) return 'transferring-state';
  if (!report.voting) return 'not-voting';
  return 'ok';
}

/** Why requests wait without progress, or nothing when they do not. */
function progressStall(up: readonly ReplicaStatus[], witnesses: number, stallAfterMs: number): string[] {
  const waiting = up.filter(
    (status) => status.oldestPendingMs !== null && status.oldestPendingMs >= stallAfterMs,
  );
  const executedLately = up.filter(
    (status) => status.msSinceLastExecution !== null && status.msSinceLastExecution < stallAfterMs,
  );
  if (waiting.length < witnesses || executedLately.length >= witnesses) return [];
  // Figures at least one correct replica vouches for: the (f+1)-th most waiting, the (f+1)-th
  // most recent execution (a liar can neither inflate the first nor shorten the second alone).
  const requests = rankedDescending(
    waiting.map((status) => status.pendingRequests),
    witnesses,
  )!;
  const oldestMs = rankedDescending(
    waiting.map((status) => status.oldestPendingMs ?? 0),
    witnesses,
  )!;
  const sinceExecution = [
    ...up.map((status) => status.msSinceLastExecution ?? Number.POSITIVE_INFINITY),
  ].sort((a, b) => a - b)[witnesses - 1];
  const idleFor =
    sinceExecution === undefined || sinceExecution === Number.POSITIVE_INFINITY
      ? 'since the replicas started'
      : `for ${formatAge(sinceExecution)}`;
  const reasons = [
    `no batch executed ${idleFor} while ${requests} ${requests === 1 ? 'request waits' : 'requests wait'} ` +
      `(the oldest for ${formatAge(oldestMs)})`,
  ];
  const changingViews = up.filter((status) => status.viewChangeInProgress).map((status) => status.replica);
  if (changingViews.length > 0)
    reasons.push(`${replicaList(changingViews)} ${verbFor(changingViews, 'is', 'are')} in a view change`);
  return reasons;
}

/**
 * The verdict on a cluster from one round of reports (index = replica id):
 * - stalled: fewer than a quorum of replicas are up and voting, or requests older than
 *   STALL_AFTER_REQUEST_TIMEOUTS request timeouts wait at f + 1 or more replicas while fewer than
 *   f + 1 executed a batch within that time;
 * - degraded: not stalled, but a replica is down, being rejuvenated, transferring state or not
 *   voting, or a guardian does not answer;
 * - healthy otherwise, including an idle cluster (nothing waits, so nothing needs to execute).
 *
 * `guardians` is undefined for a cluster without guardians; with them, a replica whose guardian
 * reports a rejuvenation in progress counts as rejuvenating, not down.
 */
export function clusterHealth(
  reports: readonly ReplicaReport[],
  guardians: readonly GuardianReport[] | undefined,
  parameters: HealthParameters,
): ClusterHealth {
  const quorum = quorumSize(parameters);
  const stallAfterMs = STALL_AFTER_REQUEST_TIMEOUTS * parameters.requestTimeoutMs;
  const replicas = reports.map((report, index): ReplicaHealth => {
    const guardian = guardians?.[index];
    const rejuvenation = rejuvenationOf(guardian, report.replica);
    return {
      replica: report.replica,
      condition: conditionOf(report, rejuvenation),
      rejuvenation,
      guardianDown: guardian !== undefined && !guardian.up,
    };
  });
  const up = reports.flatMap((report) => (report.up ? [report] : []));
  const votingReplicas = up.filter((status) => status.voting).length;

  const stallReasons: string[] = [];
  if (votingReplicas < quorum)
    stallReasons.push(
      `only ${votingReplicas} of ${reports.length} replicas ${votingReplicas === 1 ? 'is' : 'are'} up and voting; ` +
        `a quorum needs ${quorum}`,
    );
  stallReasons.push(...progressStall(up, correctWitnessSize(parameters), stallAfterMs));

  const having = (condition: ReplicaCondition): number[] =>
    replicas.filter((health) => health.condition === condition).map((health) => health.replica);
  const degradedReasons: string[] = [];
  const down = having('down');
  if (down.length > 0) degradedReasons.push(`${replicaList(down)} ${verbFor(down, 'is', 'are')} down`);
  for (const health of replicas) {
    if (health.rejuvenation === null) continue;
    const kind = health.rejuvenation.kind === null ? '' : `${health.rejuvenation.kind}, `;
    degradedReasons.push(
      `replica ${health.replica} is being rejuvenated (${kind}${describeRejuvenation(health.rejuvenation)})`,
    );
  }
  const transferring = having('transferring-state');
  if (transferring.length > 0)
    degradedReasons.push(
      `${replicaList(transferring)} ${verbFor(transferring, 'is', 'are')} transferring state`,
    );
  const notVoting = having('not-voting');
  if (notVoting.length > 0)
    degradedReasons.push(`${replicaList(notVoting)} ${verbFor(notVoting, 'is', 'are')} not voting`);
  // As for rejuvenations, an answer counts only from the guardian of the replica it names.
  const upGuardians = (guardians ?? []).flatMap((guardian, index) =>
    guardian.up && guardian.replica === reports[index]?.replica ? [guardian] : [],
  );
  if (parameters.nowMs !== undefined) {
    const nowMs = parameters.nowMs;
    for (const guardian of upGuardians) {
      const acceptedUntilMs = guardian.keyEpochAcceptedUntilMs;
      if (acceptedUntilMs === null || acceptedUntilMs >= nowMs) continue;
      degradedReasons.push(
        `replica ${guardian.replica}'s key epoch ${guardian.keyEpoch} expired ${formatAge(nowMs - acceptedUntilMs)} ago: ` +
          'nobody accepts its signatures until its guardian rotates it',
      );
    }
  }
  const guardiansDown = replicas.filter((health) => health.guardianDown).map((health) => health.replica);
  if (guardiansDown.length > 0)
    degradedReasons.push(
      guardiansDown.length === 1
        ? `the guardian of replica ${guardiansDown[0]} does not answer`
        : `the guardians of ${replicaList(guardiansDown)} do not answer`,
    );

  const verdict: HealthVerdict =
    stallReasons.length > 0 ? 'stalled' : degradedReasons.length > 0 ? 'degraded' : 'healthy';
  // Said plainly: without the boundary an intruder in a replica can read its guardian's identity key.
  const unenforced = new Map<string, number[]>();
  for (const guardian of upGuardians)
    if (!guardian.trustBoundary.enforced)
      unenforced.set(guardian.trustBoundary.reason, [
        ...(unenforced.get(guardian.trustBoundary.reason) ?? []),
        guardian.replica,
      ]);
  const notices = [...unenforced].map(([reason, replicas]) => `${replicaList(replicas)}: ${reason}`);
  return {
    verdict,
    reasons: [...stallReasons, ...degradedReasons],
    notices,
    quorum,
    votingReplicas,
    stallAfterMs,
    replicas,
  };
}
