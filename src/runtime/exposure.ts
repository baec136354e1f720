/**
 * What the guardians' reports say about the guarantee itself, beside progress (health.ts): each
 * replica's exposure against T = T_P + T_D, each rejuvenation in progress against T_D, and the
 * two findings that make a cluster **unsafe** — the conditions under which Phalanx no longer
 * promises safety (docs/intrusion-tolerance.md, "The guarantee"):
 *
 * - a replica has been exposed longer than T: it was not rejuvenated in time, so an intruder may
 *   have held it longer than the bound the f-threshold is counted over;
 * - more than f replicas stand proven faulty at once: valid evidence against each, and no
 *   rejuvenation of it since (its guardian's lastRejuvenationAtMs is older than the evidence).
 *
 * Pure: the caller passes the time the reports were collected. Guardians are the trusted
 * component, so one guardian's word about its own replica is taken as it is (unlike replica
 * reports, which need f + 1 to agree).
 */
import type { GuardianReport, GuardianStatus, RecoveryKind, RecoveryStep } from './guardian-report.js';
import { formatAge, replicaList } from './health.js';

/** A rejuvenation in progress, timed against T_D. */
export interface TimedRejuvenation {
  readonly kind: RecoveryKind | null;
  readonly step: RecoveryStep | null;
  /** The key epoch the rejuvenated replica will use. */
  readonly keyEpoch: number;
  /** Since the rejuvenation started; null when the guardian gave no start time. */
  readonly elapsedMs: number | null;
  /** Since the current step started. */
  readonly stepElapsedMs: number | null;
  /** T_D. */
  readonly recoveryBoundMs: number;
}

export interface ReplicaExposure {
  readonly replica: number;
  readonly keyEpoch: number;
  /** Since the replica's last rejuvenation (how long an intruder could have held it). */
  readonly exposureMs: number;
  /** T = T_P + T_D. */
  readonly guaranteeMs: number;
  readonly rejuvenation: TimedRejuvenation | null;
}

export interface GuaranteeFindings {
  /** One per guardian that answered for its own replica, in replica order. */
  readonly exposures: readonly ReplicaExposure[];
  /** Why the cluster is unsafe, in words; empty when it is not. */
  readonly unsafe: readonly string[];
  /** Rejuvenations running past T_D: the guardian raises an alarm, the cluster is degraded. */
  readonly overdue: readonly string[];
}

function elapsedSince(startMs: number | null, nowMs: number): number | null {
  return startMs === null ? null : Math.max(0, nowMs - startMs);
}

function timedRejuvenation(status: GuardianStatus, nowMs: number): TimedRejuvenation | null {
  if (!status.recovery.inProgress) return null;
  return {
    kind: status.recovery.kind,
    step: status.recovery.step,
    keyEpoch: status.keyEpoch,
    elapsedMs: elapsedSince(status.recovery.startedAtMs, nowMs),
    stepElapsedMs: elapsedSince(status.recovery.stepStartedAtMs, nowMs),
    recoveryBoundMs: status.recoveryBoundMs,
  };
}

/** "step validating-state (0.3 s), key epoch 5, 1.2 s of T_D = 8 s". */
export function describeTimedRejuvenation(rejuvenation: TimedRejuvenation): string {
  const parts: string[] = [];
  if (rejuvenation.step !== null)
    parts.push(
      `step ${rejuvenation.step}${rejuvenation.stepElapsedMs === null ? '' : ` (${formatAge(rejuvenation.stepElapsedMs)})`}`,
    );
  parts.push(`key epoch ${rejuvenation.keyEpoch}`);
  const bound = `T_D = ${formatAge(rejuvenation.recoveryBoundMs)}`;
  parts.push(rejuvenation.elapsedMs === null ? bound : `${formatAge(rejuvenation.elapsedMs)} of ${bound}`);
  return parts.join(', ');
}

/** "41 s of T = 1 min 4 s". */
export function describeExposure(exposure: Pick<ReplicaExposure, 'exposureMs' | 'guaranteeMs'>): string {
  return `${formatAge(exposure.exposureMs)} of T = ${formatAge(exposure.guaranteeMs)}`;
}

/**
 * The findings from one round of guardian reports (index = replica id; a report counts only for
 * the replica it names), collected at `nowMs`. `f`: how many replicas may be faulty at once.
 */
export function guaranteeFindings(
  guardians: readonly GuardianReport[],
  parameters: { readonly f: number; readonly nowMs: number },
): GuaranteeFindings {
  const { f, nowMs } = parameters;
  const answered = guardians.flatMap((report, index) =>
    report.up && report.replica === index ? [report] : [],
  );
  const exposures = answered.map((status): ReplicaExposure => ({
    replica: status.replica,
    keyEpoch: status.keyEpoch,
    exposureMs: status.exposureMs,
    guaranteeMs: status.guaranteeMs,
    rejuvenation: timedRejuvenation(status, nowMs),
  }));

  const unsafe: string[] = [];
  for (const exposure of exposures) {
    if (exposure.exposureMs <= exposure.guaranteeMs) continue;
    unsafe.push(
      `replica ${exposure.replica} has been exposed for ${formatAge(exposure.exposureMs)}, over ` +
        `T = ${formatAge(exposure.guaranteeMs)}: it was not rejuvenated in time, so the bound on ` +
        'how long an intruder holds a replica does not hold for it',
    );
  }

  // Proven faulty and not rejuvenated since: every guardian holds the evidence it verified; the
  // accused's own guardian says when it last rejuvenated it (unknown when it does not answer:
  // then the evidence counts, which errs on the side of saying so).
  const lastRejuvenation = new Map(answered.map((status) => [status.replica, status.lastRejuvenationAtMs]));
  const proven = new Set<number>();
  for (const status of answered)
    for (const record of status.evidence) {
      if (!record.valid || record.accused < 0 || record.accused >= guardians.length) continue;
      const rejuvenatedAtMs = lastRejuvenation.get(record.accused) ?? null;
      if (rejuvenatedAtMs !== null && rejuvenatedAtMs >= record.atMs) continue;
      proven.add(record.accused);
    }
  if (proven.size > f) {
    const accused = [...proven].sort((a, b) => a - b);
    unsafe.push(
      `${replicaList(accused)} stand proven faulty (valid evidence, not rejuvenated since): ` +
        `more than f = ${f} at once, beyond what the protocol tolerates`,
    );
  }

  const overdue = exposures.flatMap((exposure) => {
    const rejuvenation = exposure.rejuvenation;
    if (rejuvenation === null || rejuvenation.elapsedMs === null) return [];
    if (rejuvenation.elapsedMs <= rejuvenation.recoveryBoundMs) return [];
    return [
      `the rejuvenation of replica ${exposure.replica} has run ${formatAge(rejuvenation.elapsedMs)}, over ` +
        `T_D = ${formatAge(rejuvenation.recoveryBoundMs)}${rejuvenation.step === null ? '' : ` (at step ${rejuvenation.step})`}`,
    ];
  });
  return { exposures, unsafe, overdue };
}
