/**
 * What the dashboard server remembers between poll rounds, so the page can draw the last hour and
 * a reload (or a second browser) sees the same picture: a bounded ring of samples, and bounded
 * logs of the recoveries, alarms and evidence incidents the guardians reported.
 *
 * Pure: every function and method takes the time it needs as an argument; nothing here reads a
 * clock, sets a timer or does I/O. The server feeds it one poll round at a time.
 */
import { correctWitnessSize, type FaultModel, quorumSize } from '../core/quorum.js';
import type { Alarm, EvidenceRecord, GuardianReport, RecoveryRecord } from '../runtime/guardian-report.js';
import { type ClusterHealth, formatAge, type HealthVerdict, replicaList } from '../runtime/health.js';
import type { RecoveryParameters, ReplicaReport, ReplicaStatus } from '../runtime/status.js';

/** Named bounds on everything the history keeps; together they fix its memory (see historyBytes). */
export const HISTORY_LIMITS = {
  /** Samples in the ring: one hour at the default sample interval of 500 ms. */
  maxSamples: 7200,
  /** Recoveries remembered (the most recent by start time). */
  maxRecoveries: 512,
  /** Alarms remembered. */
  maxAlarms: 512,
  /** Evidence incidents (distinct accused and kind) remembered. */
  maxIncidents: 256,
  /** Distinct evidence records remembered, to count each one once however many guardians relay it. */
  maxEvidenceRecords: 2048,
  /** Reporters and distinct proofs listed per incident. */
  maxPerIncidentList: 16,
} as const;

export const HISTORY_DEFAULTS = {
  /** How far back the charts reach. */
  windowMs: 60 * 60 * 1000,
  /** Time between two samples; poll rounds in between are not sampled. */
  sampleIntervalMs: 500,
} as const;

/** A verdict with the one the dashboard adds: more than f replicas outlived T since rejuvenation. */
export type DashboardVerdict = HealthVerdict | 'unsafe';

/** What each replica was doing at a sample, as its guardian reports it. */
export const ACTIVITIES = ['unknown', 'running', 'proactive', 'reactive', 'crashed'] as const;
export type Activity = (typeof ACTIVITIES)[number];

const VERDICTS: readonly DashboardVerdict[] = ['healthy', 'degraded', 'stalled', 'unsafe'];

/**
 * A replica whose last executed sequence number is this far below the quorum's is catching up:
 * its own rate then measures how fast it replays, not the workload.
 */
export const CATCHING_UP_LAG = 16;

/** Progress as the quorum makes it: figures at least one correct replica vouches for. */
export interface ClusterProgress {
  /** The (f+1)-th highest last executed sequence number among replicas up: a correct one reached it. */
  readonly executed: number | null;
  /** The quorum-th highest: every correct member of some quorum has executed this far. */
  readonly quorumExecuted: number | null;
  /** The (f+1)-th highest view among replicas up. */
  readonly view: number | null;
  /** Requests per second that a quorum of replicas executed (the quorum-th highest measured rate). */
  readonly committedPerSecond: number | null;
  /** When `executed` last changed (server clock, ms since the epoch); null before the first figure. */
  readonly advancedAtMs: number | null;
  /** Replicas up whose sequence number trails `quorumExecuted` by CATCHING_UP_LAG or more. */
  readonly catchingUp: readonly number[];
}

export interface DashboardHealth extends Omit<ClusterHealth, 'verdict'> {
  readonly verdict: DashboardVerdict;
  readonly progress: ClusterProgress;
}

/**
 * Latency a client beside the dashboard measured over its last few seconds (`phalanx up --workload`
 * and `demo` pass their live workload's): replicas report no client-side figure.
 */
export interface ClientLatency {
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface HistorySample {
  readonly atMs: number;
  readonly verdict: DashboardVerdict;
  readonly up: number;
  readonly committedPerSecond: number | null;
  /** Client latency at this sample; null without a client beside the dashboard or no operation. */
  readonly latencyP50Ms: number | null;
  readonly latencyP99Ms: number | null;
  readonly executed: number | null;
  readonly view: number | null;
  /** Index = replica id. */
  readonly replicas: readonly {
    /** Requests per second this replica executed since the previous sample, as the server measured it. */
    readonly ratePerSecond: number | null;
    readonly exposureMs: number | null;
    readonly activity: Activity;
  }[];
}

/** The ring as JSON: one array per column, oldest sample first; null where there was no figure. */
export interface HistorySeries {
  readonly sampleIntervalMs: number;
  readonly capacity: number;
  readonly atMs: readonly number[];
  readonly verdict: readonly DashboardVerdict[];
  readonly up: readonly number[];
  readonly committedPerSecond: readonly (number | null)[];
  readonly latencyP50Ms: readonly (number | null)[];
  readonly latencyP99Ms: readonly (number | null)[];
  readonly executed: readonly (number | null)[];
  readonly view: readonly (number | null)[];
  /** Index = replica id. */
  readonly replicas: readonly {
    readonly ratePerSecond: readonly (number | null)[];
    readonly exposureMs: readonly (number | null)[];
    readonly activity: readonly Activity[];
  }[];
}

export interface RememberedRecovery extends RecoveryRecord {
  readonly replica: number;
}

export interface RememberedAlarm extends Alarm {
  readonly guardian: number;
}

/** Every evidence record against one replica of one kind: one incident, however often reported. */
export interface EvidenceIncident {
  readonly accused: number;
  readonly kind: string;
  /** Distinct records (by time, reporter and proof); the same record from several guardians counts once. */
  readonly count: number;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  /** Records whose proof checked out, and whose did not. */
  readonly valid: number;
  readonly invalid: number;
  /** Distinct reporters, the first HISTORY_LIMITS.maxPerIncidentList. */
  readonly reporters: readonly string[];
  /** Distinct proofs (the records' detail), the latest HISTORY_LIMITS.maxPerIncidentList, newest last. */
  readonly proofs: readonly string[];
}

/** What GET /api/log returns: the remembered recoveries, alarms and evidence. */
export interface DashboardLogJson {
  readonly version: number;
  readonly recoveries: readonly RememberedRecovery[];
  readonly alarms: readonly RememberedAlarm[];
  readonly incidents: readonly EvidenceIncident[];
  /** Times of the distinct evidence records (for markers), oldest first. */
  readonly evidenceAtMs: readonly {
    readonly atMs: number;
    readonly accused: number;
    readonly kind: string;
  }[];
}

/** What GET /api/history returns: the samples and the log. */
export interface DashboardHistoryJson extends DashboardLogJson {
  readonly series: HistorySeries;
}

/** Progress before any round was observed. */
export const NO_PROGRESS: ClusterProgress = {
  executed: null,
  quorumExecuted: null,
  view: null,
  committedPerSecond: null,
  advancedAtMs: null,
  catchingUp: [],
};

/**
 * Columns of one sample besides the per-replica ones: at, verdict, up, committed, executed, view,
 * client latency p50 and p99.
 */
const CLUSTER_COLUMNS = 8;
const REPLICA_COLUMNS = 3;

/** Bytes the sample ring holds for `n` replicas: fixed when it is made, whatever happens later. */
export function historyBytes(n: number, capacity: number = HISTORY_LIMITS.maxSamples): number {
  return capacity * (CLUSTER_COLUMNS + REPLICA_COLUMNS * n) * Float64Array.BYTES_PER_ELEMENT;
}

function assertInvariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`dashboard history: ${message}`);
}

/** The `rank`-th largest (1 = the largest), or null when fewer values are given. */
function rankedDescending(values: readonly number[], rank: number): number | null {
  if (values.length < rank) return null;
  return [...values].sort((a, b) => b - a)[rank - 1] ?? null;
}

/** A fixed-size ring of samples in one Float64Array (NaN = no figure), so its memory is known up front. */
class SampleRing {
  private readonly cells: Float64Array;
  private readonly width: number;
  private start = 0;
  private length = 0;

  constructor(
    readonly capacity: number,
    private readonly n: number,
  ) {
    assertInvariant(
      Number.isSafeInteger(capacity) && capacity > 0,
      `capacity must be positive, got ${capacity}`,
    );
    this.width = CLUSTER_COLUMNS + REPLICA_COLUMNS * n;
    this.cells = new Float64Array(capacity * this.width);
  }

  get size(): number {
    return this.length;
  }

  push(sample: HistorySample): void {
    assertInvariant(
      sample.replicas.length === this.n,
      `a sample has ${sample.replicas.length} replicas, not ${this.n}`,
    );
    const slot = (this.start + this.length) % this.capacity;
    if (this.length === this.capacity) this.start = (this.start + 1) % this.capacity;
    else this.length++;
    const base = slot * this.width;
    const cells = this.cells;
    const orNaN = (value: number | null): number => (value === null ? Number.NaN : value);
    cells[base] = sample.atMs;
    cells[base + 1] = VERDICTS.indexOf(sample.verdict);
    cells[base + 2] = sample.up;
    cells[base + 3] = orNaN(sample.committedPerSecond);
    cells[base + 4] = orNaN(sample.executed);
    cells[base + 5] = orNaN(sample.view);
    cells[base + 6] = orNaN(sample.latencyP50Ms);
    cells[base + 7] = orNaN(sample.latencyP99Ms);
    sample.replicas.forEach((replica, index) => {
      const at = base + CLUSTER_COLUMNS + REPLICA_COLUMNS * index;
      cells[at] = orNaN(replica.ratePerSecond);
      cells[at + 1] = orNaN(replica.exposureMs);
      cells[at + 2] = ACTIVITIES.indexOf(replica.activity);
    });
  }

  toSeries(sampleIntervalMs: number): HistorySeries {
    const column = (offset: number): (number | null)[] => {
      const values: (number | null)[] = [];
      for (let index = 0; index < this.length; index++) {
        const value = this.cells[((this.start + index) % this.capacity) * this.width + offset]!;
        values.push(Number.isNaN(value) ? null : value);
      }
      return values;
    };
    const present = (values: (number | null)[]): number[] => values.map((value) => value ?? 0);
    return {
      sampleIntervalMs,
      capacity: this.capacity,
      atMs: present(column(0)),
      verdict: column(1).map((code) => VERDICTS[code ?? 0] ?? 'healthy'),
      up: present(column(2)),
      committedPerSecond: column(3),
      executed: column(4),
      view: column(5),
      latencyP50Ms: column(6),
      latencyP99Ms: column(7),
      replicas: Array.from({ length: this.n }, (_, replica) => {
        const at = CLUSTER_COLUMNS + REPLICA_COLUMNS * replica;
        return {
          ratePerSecond: column(at),
          exposureMs: column(at + 1),
          activity: column(at + 2).map((code) => ACTIVITIES[code ?? 0] ?? 'unknown'),
        };
      }),
    };
  }
}

/** A Map that forgets its oldest insertions beyond `limit`. */
function rememberBounded<Key, Value>(map: Map<Key, Value>, key: Key, value: Value, limit: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > limit) {
    const oldest = map.keys().next();
    if (oldest.done === true) break;
    map.delete(oldest.value);
  }
}

function activityOf(guardian: GuardianReport | undefined): Activity {
  if (guardian === undefined || !guardian.up) return 'unknown';
  if (guardian.recovery.inProgress) return guardian.recovery.kind ?? 'proactive';
  return guardian.replicaProcess === 'running' ? 'running' : 'crashed';
}

export interface HistoryOptions {
  readonly cluster: FaultModel;
  readonly sampleIntervalMs: number;
  readonly windowMs: number;
}

/**
 * The dashboard's memory. `observe` takes one poll round (the checked reports and the verdict
 * clusterHealth gave them) and returns the dashboard's verdict, which adds progress measured
 * across rounds and the `unsafe` verdict.
 */
export class DashboardHistory {
  private readonly ring: SampleRing;
  private readonly recoveries = new Map<string, RememberedRecovery>();
  private readonly alarms = new Map<string, RememberedAlarm>();
  private readonly evidenceRecords = new Map<string, { atMs: number; accused: number; kind: string }>();
  private readonly incidents = new Map<string, EvidenceIncident>();
  private lastSampleAtMs = Number.NEGATIVE_INFINITY;
  /** requestsExecuted and time of each replica's previous sample, for its measured rate. */
  private readonly previousExecuted: ({ count: number; atMs: number } | null)[];
  private readonly lastRates: (number | null)[];
  private executed: number | null = null;
  private advancedAtMs: number | null = null;
  private version = 0;

  constructor(private readonly options: HistoryOptions) {
    const capacity = Math.min(
      HISTORY_LIMITS.maxSamples,
      Math.max(1, Math.ceil(options.windowMs / options.sampleIntervalMs)),
    );
    this.ring = new SampleRing(capacity, options.cluster.n);
    this.previousExecuted = Array.from({ length: options.cluster.n }, () => null);
    this.lastRates = Array.from({ length: options.cluster.n }, () => null);
  }

  /** Bytes of the sample ring (the logs beside it are bounded by HISTORY_LIMITS). */
  get ringBytes(): number {
    return historyBytes(this.options.cluster.n, this.ring.capacity);
  }

  get samples(): number {
    return this.ring.size;
  }

  /** Grows whenever a recovery, alarm or evidence record is remembered or changes. */
  get logVersion(): number {
    return this.version;
  }

  observe(
    nowMs: number,
    replicas: readonly ReplicaReport[],
    guardians: readonly GuardianReport[] | undefined,
    health: ClusterHealth,
    recovery: RecoveryParameters | undefined,
    clientLatency: ClientLatency | null = null,
  ): { readonly health: DashboardHealth; readonly sample: HistorySample | null } {
    const { cluster } = this.options;
    assertInvariant(replicas.length === cluster.n, `${replicas.length} replica reports for n = ${cluster.n}`);
    const sampling = nowMs - this.lastSampleAtMs >= this.options.sampleIntervalMs;
    if (sampling) this.measureRates(nowMs, replicas);
    if (guardians !== undefined) this.rememberGuardianLists(guardians);

    const up = replicas.flatMap((report) => (report.up ? [report] : []));
    const witnesses = correctWitnessSize(cluster);
    const quorum = quorumSize(cluster);
    const executed = rankedDescending(
      up.map((status) => status.lastExecuted),
      witnesses,
    );
    if (executed !== null && executed !== this.executed) {
      this.executed = executed;
      this.advancedAtMs = nowMs;
    }
    const quorumExecuted = rankedDescending(
      up.map((status) => status.lastExecuted),
      quorum,
    );
    const rates = this.lastRates.flatMap((rate, replica) =>
      rate !== null && replicas[replica]?.up === true ? [rate] : [],
    );
    const progress: ClusterProgress = {
      executed,
      quorumExecuted,
      view: rankedDescending(
        up.map((status) => status.view),
        witnesses,
      ),
      committedPerSecond: rankedDescending(rates, quorum),
      advancedAtMs: this.advancedAtMs,
      catchingUp:
        quorumExecuted === null
          ? []
          : up
              .filter((status) => status.lastExecuted + CATCHING_UP_LAG <= quorumExecuted)
              .map((status) => status.replica),
    };
    const dashboardHealth = this.verdict(nowMs, up, guardians, health, recovery, progress);
    if (!sampling) return { health: dashboardHealth, sample: null };
    this.lastSampleAtMs = nowMs;
    const sample: HistorySample = {
      atMs: nowMs,
      verdict: dashboardHealth.verdict,
      up: up.length,
      committedPerSecond: progress.committedPerSecond,
      latencyP50Ms: clientLatency?.p50Ms ?? null,
      latencyP99Ms: clientLatency?.p99Ms ?? null,
      executed: progress.executed,
      view: progress.view,
      replicas: replicas.map((report, replica) => {
        const guardian = guardians?.[replica];
        return {
          ratePerSecond: report.up ? this.lastRates[replica]! : null,
          exposureMs: guardian !== undefined && guardian.up ? guardian.exposureMs : null,
          activity: activityOf(guardian),
        };
      }),
    };
    this.ring.push(sample);
    return { health: dashboardHealth, sample };
  }

  toJSON(): DashboardHistoryJson {
    return { series: this.ring.toSeries(this.options.sampleIntervalMs), ...this.logJSON() };
  }

  logJSON(): DashboardLogJson {
    const byTime = <Entry>(entries: Iterable<Entry>, timeOf: (entry: Entry) => number): Entry[] =>
      [...entries].sort((a, b) => timeOf(a) - timeOf(b));
    return {
      version: this.version,
      recoveries: byTime(this.recoveries.values(), (entry) => entry.startedAtMs),
      alarms: byTime(this.alarms.values(), (entry) => entry.atMs),
      incidents: this.incidentList(),
      evidenceAtMs: byTime(this.evidenceRecords.values(), (entry) => entry.atMs),
    };
  }

  /** Incidents, the most recently seen first. */
  incidentList(): EvidenceIncident[] {
    return [...this.incidents.values()].sort((a, b) => b.lastSeenMs - a.lastSeenMs);
  }

  private measureRates(nowMs: number, replicas: readonly ReplicaReport[]): void {
    replicas.forEach((report, replica) => {
      if (!report.up) {
        this.previousExecuted[replica] = null;
        this.lastRates[replica] = null;
        return;
      }
      const previous = this.previousExecuted[replica];
      this.previousExecuted[replica] = { count: report.requestsExecuted, atMs: nowMs };
      // A counter that went down belongs to a restarted process: no rate until the next sample.
      this.lastRates[replica] =
        previous === null ||
        previous === undefined ||
        report.requestsExecuted < previous.count ||
        nowMs <= previous.atMs
          ? null
          : ((report.requestsExecuted - previous.count) * 1000) / (nowMs - previous.atMs);
    });
  }

  private verdict(
    nowMs: number,
    up: readonly ReplicaStatus[],
    guardians: readonly GuardianReport[] | undefined,
    health: ClusterHealth,
    recovery: RecoveryParameters | undefined,
    progress: ClusterProgress,
  ): DashboardHealth {
    const { f } = this.options.cluster;
    const witnesses = f + 1;
    const unsafeReasons: string[] = [];
    const forked = up.filter((status) => status.safeMode === true);
    if (forked.length > 0)
      unsafeReasons.push(
        `${replicaList(forked.map((status) => status.replica))} ${forked.length === 1 ? 'is' : 'are'} ` +
          'in safe mode: proof that more than ' +
          `f = ${f} replicas misbehaved (culprits ${(forked[0]!.safeModeCulprits ?? []).join(', ')}); ` +
          'writes are refused until an operator restarts the cluster without them',
      );
    if (guardians !== undefined) {
      const overT = guardians.flatMap((guardian, replica) => {
        if (!guardian.up || guardian.replica !== replica) return [];
        const guaranteeMs = recovery?.guaranteeMs ?? guardian.guaranteeMs;
        return guardian.exposureMs > guaranteeMs ? [replica] : [];
      });
      // Up to f replicas may be an intruder's at once; beyond that T no longer bounds how many.
      if (overT.length > f)
        unsafeReasons.push(
          `${replicaList(overT)} ran longer than T without a rejuvenation: more than f = ${f} ` +
            'replicas may be compromised at once, which the protocol does not tolerate',
        );
    }
    const stallReasons: string[] = [];
    const stallAfterMs = health.stallAfterMs;
    const waitingLong = up.filter(
      (status) => status.oldestPendingMs !== null && status.oldestPendingMs >= stallAfterMs,
    );
    const stuckForMs = this.advancedAtMs === null ? 0 : nowMs - this.advancedAtMs;
    // The server's own measure: the sequence number f + 1 replicas reached did not move for the
    // whole stall window while requests older than it wait at f + 1 replicas.
    if (
      health.verdict !== 'stalled' &&
      progress.executed !== null &&
      stuckForMs >= stallAfterMs &&
      waitingLong.length >= witnesses
    ) {
      const waiting = rankedDescending(
        waitingLong.map((status) => status.pendingRequests),
        witnesses,
      )!;
      stallReasons.push(
        `no progress for ${formatAge(stuckForMs)}: sequence number ${progress.executed.toLocaleString('en-US')} ` +
          `while ${waiting} ${waiting === 1 ? 'request waits' : 'requests wait'}`,
      );
    }
    const verdict: DashboardVerdict =
      unsafeReasons.length > 0
        ? 'unsafe'
        : stallReasons.length > 0 || health.verdict === 'stalled'
          ? 'stalled'
          : health.verdict;
    return {
      ...health,
      verdict,
      reasons: [...unsafeReasons, ...stallReasons, ...health.reasons],
      progress,
    };
  }

  private rememberGuardianLists(guardians: readonly GuardianReport[]): void {
    guardians.forEach((guardian, replica) => {
      if (!guardian.up || guardian.replica !== replica) return;
      for (const record of guardian.recentRecoveries) {
        const key = `${replica}/${record.kind}/${record.startedAtMs}`;
        const known = this.recoveries.get(key);
        if (known !== undefined && known.durationMs === record.durationMs) continue;
        rememberBounded(this.recoveries, key, { replica, ...record }, HISTORY_LIMITS.maxRecoveries);
        this.version++;
      }
      for (const alarm of guardian.alarms) {
        const key = `${replica}/${alarm.atMs}/${alarm.message}`;
        if (this.alarms.has(key)) continue;
        rememberBounded(this.alarms, key, { guardian: replica, ...alarm }, HISTORY_LIMITS.maxAlarms);
        this.version++;
      }
      for (const record of guardian.evidence) this.rememberEvidence(record);
    });
  }

  private rememberEvidence(record: EvidenceRecord): void {
    const key = JSON.stringify([
      record.atMs,
      record.kind,
      record.accused,
      record.reporter,
      record.valid,
      record.detail,
    ]);
    if (this.evidenceRecords.has(key)) return;
    this.version++;
    rememberBounded(
      this.evidenceRecords,
      key,
      { atMs: record.atMs, accused: record.accused, kind: record.kind },
      HISTORY_LIMITS.maxEvidenceRecords,
    );
    const incidentKey = JSON.stringify([record.accused, record.kind]);
    const known = this.incidents.get(incidentKey);
    const limit = HISTORY_LIMITS.maxPerIncidentList;
    const reporters = known?.reporters ?? [];
    const proofs = known?.proofs ?? [];
    const incident: EvidenceIncident = {
      accused: record.accused,
      kind: record.kind,
      count: (known?.count ?? 0) + 1,
      firstSeenMs: Math.min(known?.firstSeenMs ?? record.atMs, record.atMs),
      lastSeenMs: Math.max(known?.lastSeenMs ?? record.atMs, record.atMs),
      valid: (known?.valid ?? 0) + (record.valid ? 1 : 0),
      invalid: (known?.invalid ?? 0) + (record.valid ? 0 : 1),
      reporters:
        reporters.includes(record.reporter) || reporters.length >= limit
          ? reporters
          : [...reporters, record.reporter],
      proofs: proofs.includes(record.detail) ? proofs : [...proofs, record.detail].slice(-limit),
    };
    rememberBounded(this.incidents, incidentKey, incident, HISTORY_LIMITS.maxIncidents);
  }
}
