/**
 * Prometheus metrics of one guardian (prom-client), served on its admin port at GET /metrics.
 *
 * Everything is read at scrape time from the guardian's status snapshot (what GET /status
 * returns) and the state of its standby process: the guardian's recovery code calls nothing
 * here. The status holds the latest recoveries, alarms and evidence (newest first, at most a
 * few dozen each); a cursor per list remembers what earlier scrapes already counted, so the
 * counters and histograms count each record once (see NewestFirstCursor for the limits). docs/metrics.md lists every metric; the test
 * test/integration/guardians/metrics.test.ts checks this file against that list.
 *
 * Usage (inside the guardian, which keeps no field for it: see guardianMetricsOf):
 * ```ts
 * const metrics = guardianMetricsOf(this, status);
 * response.writeHead(200, { 'content-type': metrics.contentType }).end(await metrics.render({ status, standby }));
 * ```
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  type Alarm,
  type EvidenceRecord,
  RECOVERY_STEPS,
  type GuardianStatus,
  type RecoveryKind,
  type RecoveryRecord,
} from '../runtime/guardian-report.js';

/** The standby replica process a guardian starts before its proactive slot. */
export type StandbyState = 'none' | 'starting' | 'ready';
export const STANDBY_STATES: readonly StandbyState[] = ['none', 'starting', 'ready'];
const REPLICA_PROCESS_STATES: readonly GuardianStatus['replicaProcess'][] = [
  'running',
  'starting',
  'stopped',
];
const RECOVERY_KINDS: readonly RecoveryKind[] = ['proactive', 'reactive'];

/** What one scrape reads. */
export interface GuardianScrape {
  readonly status: GuardianStatus;
  readonly standby: StandbyState;
}

/**
 * Buckets of a whole recovery, as fractions of T_D: the bucket le = T_D counts the recoveries
 * within the bound, and the ones above it show by how much it was missed.
 */
export const RECOVERY_BOUND_FRACTIONS = [0.1, 0.25, 0.5, 0.75, 0.9, 1, 1.25, 1.5, 2, 3];
/** Buckets of one recovery step, in seconds (a step is anything from milliseconds to most of T_D). */
export const RECOVERY_STEP_SECONDS_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Evidence kinds are the codec's (and 'undecodable'); anything else is counted as 'other'. */
const EVIDENCE_KIND_PATTERN = /^[a-z][a-z-]{0,47}$/;

/**
 * The records of a newest-first list that a previous call has not seen. The list only grows at
 * its front and, once at its cap, loses entries at its back; so the entries seen last time
 * reappear, shifted by the number of new ones, and cut at the back. The shift is at least the
 * growth of the list (exact while the list is below its cap); beyond that, the smallest shift at
 * which the old entries line up is taken. Entries are compared by content: equal records still
 * count once each while the list grows, but once it is full, a run of identical records (same
 * content, same millisecond) is ambiguous and counts low, and if more records arrive between two
 * calls than the list keeps, those that fell off are never counted.
 */
export class NewestFirstCursor<Entry> {
  #seen: readonly string[] = [];
  readonly #key: (entry: Entry) => string;

  constructor(key: (entry: Entry) => string = (entry) => JSON.stringify(entry)) {
    this.#key = key;
  }

  fresh(list: readonly Entry[]): Entry[] {
    const keys = list.map(this.#key);
    const seen = this.#seen;
    this.#seen = keys;
    let shift = Math.max(0, keys.length - seen.length);
    for (; shift < keys.length; shift++) if (this.#linesUp(keys, seen, shift)) break;
    return list.slice(0, seen.length === 0 ? keys.length : shift);
  }

  /** Whether `seen` reappears in `keys` from `shift` on (as far as keys reach). */
  #linesUp(keys: readonly string[], seen: readonly string[], shift: number): boolean {
    if (seen.length === 0) return false;
    for (let index = 0; index < seen.length && shift + index < keys.length; index++)
      if (keys[shift + index] !== seen[index]) return false;
    return true;
  }
}

export class GuardianMetrics {
  readonly #registry = new Registry();
  readonly #gauges: Record<
    | 'trustBoundaryEnforced'
    | 'keyEpoch'
    | 'keyEpochAcceptedUntil'
    | 'exposure'
    | 'exposureBound'
    | 'recoveryBound'
    | 'recoveryPeriod'
    | 'recoveryInProgress'
    | 'recoveryElapsed'
    | 'lastRejuvenation'
    | 'nextProactive'
    | 'connectedGuardians'
    | 'pendingAccusations'
    | 'suspectedReplicas'
    | 'faultyReplicas'
    | 'provenReplicas'
    | 'faultThreshold'
    | 'safeMode',
    Gauge
  >;
  readonly #recoveryStep: Gauge;
  readonly #replicaProcess: Gauge;
  readonly #standby: Gauge;
  readonly #recoveries: Counter;
  readonly #recoveriesOverBound: Counter;
  readonly #recoverySeconds: Histogram;
  readonly #stepSeconds: Histogram;
  readonly #alarms: Counter;
  readonly #evidence: Counter;
  readonly #recoveryCursor = new NewestFirstCursor<RecoveryRecord>();
  readonly #alarmCursor = new NewestFirstCursor<Alarm>();
  readonly #evidenceCursor = new NewestFirstCursor<EvidenceRecord>();

  /** T_D fixes the buckets of the recovery histogram. */
  constructor(replica: number, recoveryBoundMs: number) {
    this.#registry.setDefaultLabels({ replica: String(replica) });
    const registers = [this.#registry];
    const gauge = (name: string, help: string, labelNames: readonly string[] = []): Gauge =>
      new Gauge({ name, help, labelNames, registers });
    this.#gauges = {
      trustBoundaryEnforced: gauge(
        'phalanx_guardian_trust_boundary_enforced',
        'Replica runs as a user of its own (1), or as the guardian user (0; GET /status says why)',
      ),
      keyEpoch: gauge('phalanx_guardian_key_epoch', 'Current key epoch of the replica'),
      keyEpochAcceptedUntil: gauge(
        'phalanx_guardian_key_epoch_accepted_until_timestamp_seconds',
        'Until when the current key epoch is accepted (Unix time; 0: no lifetime applies)',
      ),
      exposure: gauge('phalanx_guardian_exposure_seconds', 'Time since the replica was last rejuvenated'),
      exposureBound: gauge(
        'phalanx_guardian_exposure_bound_seconds',
        'T = T_P + T_D: the longest any replica may go without a rejuvenation',
      ),
      recoveryBound: gauge(
        'phalanx_guardian_recovery_bound_seconds',
        'T_D: the longest one recovery may take',
      ),
      recoveryPeriod: gauge('phalanx_guardian_recovery_period_seconds', 'T_P: the proactive recovery period'),
      recoveryInProgress: gauge(
        'phalanx_guardian_recovery_in_progress',
        'A rejuvenation of the replica is running (1) or not (0)',
      ),
      recoveryElapsed: gauge(
        'phalanx_guardian_recovery_elapsed_seconds',
        'Time since the running rejuvenation started (0 when none runs); compare with T_D',
      ),
      lastRejuvenation: gauge(
        'phalanx_guardian_last_rejuvenation_timestamp_seconds',
        'When the last rejuvenation finished, or the guardian first started its replica (Unix time)',
      ),
      nextProactive: gauge(
        'phalanx_guardian_next_proactive_timestamp_seconds',
        "When the replica's next proactive slot starts (Unix time)",
      ),
      connectedGuardians: gauge(
        'phalanx_guardian_connected_guardians',
        'Other guardians with an authenticated control connection',
      ),
      pendingAccusations: gauge(
        'phalanx_guardian_pending_accusations',
        'Replicas accused (proven or f + 1 suspicions) and waiting for their reactive recovery',
      ),
      suspectedReplicas: gauge(
        'phalanx_guardian_suspected_replicas',
        'Replicas currently suspected by at least one replica',
      ),
      faultyReplicas: gauge(
        'phalanx_guardian_faulty_replicas',
        'Replicas counted against f now: proven faulty or accused, and not rejuvenated since',
      ),
      provenReplicas: gauge(
        'phalanx_guardian_proven_replicas',
        'Replicas with a verified proof against them, not rejuvenated since (more than f: beyond what the cluster tolerates)',
      ),
      faultThreshold: gauge(
        'phalanx_guardian_fault_threshold',
        'f: the replicas the configuration tolerates as faulty',
      ),
      safeMode: gauge(
        'phalanx_guardian_safe_mode',
        'The guardian keeps a fork proof (1): every process it starts starts in safe mode',
      ),
    };
    this.#recoveryStep = gauge(
      'phalanx_guardian_recovery_step',
      'The step the running rejuvenation is in (1), every other step 0',
      ['step'],
    );
    this.#replicaProcess = gauge(
      'phalanx_guardian_replica_process',
      'State of the replica process (1 for the current state)',
      ['state'],
    );
    this.#standby = gauge(
      'phalanx_guardian_standby',
      'State of the standby process started before a proactive slot (1 for the current state)',
      ['state'],
    );
    this.#recoveries = new Counter({
      name: 'phalanx_guardian_recoveries_total',
      help: 'Rejuvenations of the replica completed, by kind',
      labelNames: ['kind'],
      registers,
    });
    this.#recoveriesOverBound = new Counter({
      name: 'phalanx_guardian_recoveries_over_bound_total',
      help: 'Rejuvenations that took longer than T_D (each also raised an alarm), by kind',
      labelNames: ['kind'],
      registers,
    });
    const boundSeconds = recoveryBoundMs / 1000;
    this.#recoverySeconds = new Histogram({
      name: 'phalanx_guardian_recovery_duration_seconds',
      help: 'Duration of a whole rejuvenation, by kind; the buckets are fractions of T_D (le = T_D: within the bound)',
      labelNames: ['kind'],
      buckets: RECOVERY_BOUND_FRACTIONS.map((fraction) => fraction * boundSeconds),
      registers,
    });
    this.#stepSeconds = new Histogram({
      name: 'phalanx_guardian_recovery_step_duration_seconds',
      help: 'Duration of each step of a rejuvenation, by step',
      labelNames: ['step'],
      buckets: RECOVERY_STEP_SECONDS_BUCKETS,
      registers,
    });
    this.#alarms = new Counter({
      name: 'phalanx_guardian_alarms_total',
      help: 'Alarms raised (a recovery over T_D, a failed code check, ...)',
      registers,
    });
    this.#evidence = new Counter({
      name: 'phalanx_guardian_evidence_total',
      help: 'Evidence of misbehaviour received, by kind and whether it verified',
      labelNames: ['kind', 'valid'],
      registers,
    });
    // Labelled series exist from the start, so a query finds them at 0 before anything happened.
    for (const kind of RECOVERY_KINDS) {
      this.#recoveries.inc({ kind }, 0);
      this.#recoveriesOverBound.inc({ kind }, 0);
    }
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  async render(scrape: GuardianScrape): Promise<string> {
    const { status } = scrape;
    const gauges = this.#gauges;
    gauges.trustBoundaryEnforced.set(status.trustBoundary.enforced ? 1 : 0);
    gauges.keyEpoch.set(status.keyEpoch);
    gauges.keyEpochAcceptedUntil.set(
      status.keyEpochAcceptedUntilMs === null ? 0 : status.keyEpochAcceptedUntilMs / 1000,
    );
    gauges.exposure.set(status.exposureMs / 1000);
    gauges.exposureBound.set(status.guaranteeMs / 1000);
    gauges.recoveryBound.set(status.recoveryBoundMs / 1000);
    gauges.recoveryPeriod.set(status.periodMs / 1000);
    const recovery = status.recovery;
    gauges.recoveryInProgress.set(recovery.inProgress ? 1 : 0);
    // The running recovery's elapsed time, on the guardian's own clock: exposure started at the
    // last rejuvenation, so now = lastRejuvenationAtMs + exposureMs whenever there was one.
    const now = status.lastRejuvenationAtMs === null ? null : status.lastRejuvenationAtMs + status.exposureMs;
    gauges.recoveryElapsed.set(
      recovery.inProgress && recovery.startedAtMs !== null && now !== null
        ? Math.max(0, now - recovery.startedAtMs) / 1000
        : 0,
    );
    gauges.lastRejuvenation.set(
      status.lastRejuvenationAtMs === null ? 0 : status.lastRejuvenationAtMs / 1000,
    );
    gauges.nextProactive.set(status.nextProactiveAtMs / 1000);
    gauges.connectedGuardians.set(status.connectedGuardians);
    gauges.pendingAccusations.set(status.pendingReactive.length);
    gauges.suspectedReplicas.set(status.suspicions.length);
    gauges.faultyReplicas.set(status.faultyReplicas.counted.length);
    gauges.provenReplicas.set(status.faultyReplicas.proven.length);
    gauges.faultThreshold.set(status.faultyReplicas.f);
    gauges.safeMode.set(status.safeMode === null ? 0 : 1);
    for (const step of RECOVERY_STEPS) this.#recoveryStep.set({ step }, recovery.step === step ? 1 : 0);
    for (const state of REPLICA_PROCESS_STATES)
      this.#replicaProcess.set({ state }, status.replicaProcess === state ? 1 : 0);
    for (const state of STANDBY_STATES) this.#standby.set({ state }, scrape.standby === state ? 1 : 0);

    for (const record of this.#recoveryCursor.fresh(status.recentRecoveries)) {
      this.#recoveries.inc({ kind: record.kind });
      if (record.exceededBound) this.#recoveriesOverBound.inc({ kind: record.kind });
      this.#recoverySeconds.observe({ kind: record.kind }, record.durationMs / 1000);
      for (const step of record.steps) this.#stepSeconds.observe({ step: step.step }, step.durationMs / 1000);
    }
    this.#alarms.inc(this.#alarmCursor.fresh(status.alarms).length);
    for (const record of this.#evidenceCursor.fresh(status.evidence)) {
      const kind = EVIDENCE_KIND_PATTERN.test(record.kind) ? record.kind : 'other';
      this.#evidence.inc({ kind, valid: record.valid ? 'true' : 'false' });
    }
    return this.#registry.metrics();
  }
}

const perGuardian = new WeakMap<object, GuardianMetrics>();

/**
 * The metrics of one guardian object, made at its first scrape (T_D from that status). Kept
 * beside the guardian rather than in a field of it, so the guardian's only tie to this module is
 * its GET /metrics handler.
 */
export function guardianMetricsOf(guardian: object, status: GuardianStatus): GuardianMetrics {
  let metrics = perGuardian.get(guardian);
  if (metrics === undefined) {
    metrics = new GuardianMetrics(status.replica, status.recoveryBoundMs);
    perGuardian.set(guardian, metrics);
  }
  return metrics;
}
