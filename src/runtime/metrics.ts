/**
 * Prometheus metrics of one replica (prom-client), served on the admin port at /metrics, and
 * the throughput figure the dashboard shows. docs/metrics.md lists every metric; the test
 * test/integration/metrics.test.ts checks this file against that list.
 *
 * The durations are measured here, in the runtime, from what the node sees: a request's arrival
 * and its reply leaving, the executed batch that takes a checkpoint and the checkpoint becoming
 * stable, the start and end of a view change. The core has no clock of its own to offer (it
 * reports a state transfer's duration in its tick time, which is used as is).
 */
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LogDetails } from '../core/actions.js';
import type { ReplicaStatus } from './status.js';

/** Throughput is averaged over this many one-second samples. */
const THROUGHPUT_WINDOW_SECONDS = 5;
/**
 * Requests whose arrival time is remembered until their reply leaves. Beyond this, new arrivals
 * go untimed (counted in phalanx_request_timings_dropped_total): the table never grows with load.
 */
export const MAX_TIMED_REQUESTS = 50_000;
/**
 * A request that got no reply from this replica within this long is forgotten (a duplicate, a
 * request another replica's leader refused, a client that went away).
 */
export const TIMED_REQUEST_MAX_AGE_MS = 60_000;
/** Own checkpoints remembered until they become stable (older ones are dropped first). */
const MAX_PENDING_CHECKPOINTS = 64;

/** Latency buckets of one request, in seconds: a fast-path read to a request stuck in a view change. */
export const REQUEST_SECONDS_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Batch sizes, in requests (the core's batches hold up to a few hundred). */
export const BATCH_REQUESTS_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
/** Checkpoints, state transfers and view changes: milliseconds to minutes. */
export const PROTOCOL_SECONDS_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];

type RequestKind = 'ordered' | 'read-only';

export class ReplicaMetrics {
  readonly #registry = new Registry();
  readonly #requests: Counter;
  readonly #batches: Counter;
  readonly #rejections: Counter;
  readonly #events: Counter;
  readonly #flushSeconds: Histogram;
  readonly #requestSeconds: Record<RequestKind, Histogram.Internal<string>>;
  readonly #requestTimingsDropped: Counter;
  readonly #batchRequests: Histogram;
  readonly #checkpointStableSeconds: Histogram;
  readonly #checkpointStoreSeconds: Histogram;
  readonly #stateTransferSeconds: Histogram;
  readonly #viewChangeSeconds: Histogram;
  /** Arrival time (performance.now()) of each request not answered yet, oldest first. */
  readonly #arrivals = new Map<string, number>();
  /** When this replica executed the batch at each checkpoint sequence not stable yet. */
  readonly #checkpointsTaken = new Map<number, number>();
  /** When the view change in progress started (null: none). */
  #viewChangeStartedAt: number | null = null;
  readonly #gauges: Record<
    | 'view'
    | 'lastExecuted'
    | 'stableCheckpoint'
    | 'pending'
    | 'peers'
    | 'keyEpoch'
    | 'leaderTurnaround'
    | 'leaderTurnaroundExpectation'
    | 'leaderLeftOutClients'
    | 'leaderLeftOutClientsLimit'
    | 'safeMode',
    Gauge
  >;
  #requestsExecuted = 0;
  readonly #checkpointInterval: number;
  /** (time in ms, requests executed so far), one per second at most. */
  readonly #samples: { time: number; count: number }[] = [];

  constructor(replica: number, checkpointInterval: number) {
    this.#checkpointInterval = checkpointInterval;
    this.#registry.setDefaultLabels({ replica: String(replica) });
    const registers = [this.#registry];
    this.#requests = new Counter({
      name: 'phalanx_requests_executed_total',
      help: 'Client requests executed',
      registers,
    });
    this.#batches = new Counter({
      name: 'phalanx_batches_executed_total',
      help: 'Batches executed',
      registers,
    });
    this.#rejections = new Counter({
      name: 'phalanx_rejected_inputs_total',
      help: 'Input refused (frames, messages, connections), by kind',
      labelNames: ['what'],
      registers,
    });
    this.#events = new Counter({
      name: 'phalanx_protocol_events_total',
      help: 'Protocol events: view changes, checkpoints, state transfers, evidence',
      labelNames: ['event'],
      registers,
    });
    this.#flushSeconds = new Histogram({
      name: 'phalanx_storage_flush_seconds',
      help: 'Time to make a group of log records durable (write + fsync)',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers,
    });
    const requestSeconds = new Histogram({
      name: 'phalanx_request_duration_seconds',
      help: "Time from a client request's arrival at this replica to this replica's reply leaving it",
      labelNames: ['kind'],
      buckets: REQUEST_SECONDS_BUCKETS,
      registers,
    });
    // Both series exist from the start (a quantile query finds them before the first request).
    requestSeconds.zero({ kind: 'ordered' });
    requestSeconds.zero({ kind: 'read-only' });
    // Children made once: observing through a child skips hashing the labels on every reply.
    this.#requestSeconds = {
      ordered: requestSeconds.labels({ kind: 'ordered' }),
      'read-only': requestSeconds.labels({ kind: 'read-only' }),
    };
    this.#requestTimingsDropped = new Counter({
      name: 'phalanx_request_timings_dropped_total',
      help: `Requests left out of phalanx_request_duration_seconds: more than ${MAX_TIMED_REQUESTS} unanswered at once`,
      registers,
    });
    this.#batchRequests = new Histogram({
      name: 'phalanx_batch_requests',
      help: 'Requests per executed batch',
      buckets: BATCH_REQUESTS_BUCKETS,
      registers,
    });
    this.#checkpointStableSeconds = new Histogram({
      name: 'phalanx_checkpoint_stable_seconds',
      help: 'Time from executing the batch that takes a checkpoint to a quorum certifying it (stable)',
      buckets: PROTOCOL_SECONDS_BUCKETS,
      registers,
    });
    this.#checkpointStoreSeconds = new Histogram({
      name: 'phalanx_checkpoint_store_seconds',
      help: 'Time to make a stable checkpoint durable (written in the background)',
      buckets: PROTOCOL_SECONDS_BUCKETS,
      registers,
    });
    this.#stateTransferSeconds = new Histogram({
      name: 'phalanx_state_transfer_seconds',
      help: 'Duration of completed state transfers (fetching a certified checkpoint from other replicas)',
      buckets: PROTOCOL_SECONDS_BUCKETS,
      registers,
    });
    this.#viewChangeSeconds = new Histogram({
      name: 'phalanx_view_change_seconds',
      help: 'Time from this replica starting a view change to installing the new view',
      buckets: PROTOCOL_SECONDS_BUCKETS,
      registers,
    });
    const gauge = (name: string, help: string): Gauge => new Gauge({ name, help, registers });
    this.#gauges = {
      view: gauge('phalanx_view', 'Current view'),
      lastExecuted: gauge('phalanx_last_executed_sequence', 'Last executed sequence number'),
      stableCheckpoint: gauge('phalanx_stable_checkpoint_sequence', 'Last stable checkpoint'),
      pending: gauge('phalanx_pending_requests', 'Requests waiting to be ordered'),
      leaderTurnaround: gauge(
        'phalanx_leader_turnaround_ms',
        "Median turnaround of the leader's last proposals as this replica measured it (0: not measured)",
      ),
      leaderTurnaroundExpectation: gauge(
        'phalanx_leader_turnaround_expectation_ms',
        'Turnaround above which this replica replaces the leader',
      ),
      leaderLeftOutClients: gauge(
        'phalanx_leader_left_out_clients',
        "Median number of clients the leader's last batches with room left out, as this replica counted them (0: not counted)",
      ),
      leaderLeftOutClientsLimit: gauge(
        'phalanx_leader_left_out_clients_limit',
        'Median left-out count at which this replica replaces the leader',
      ),
      peers: gauge('phalanx_connected_peers', 'Authenticated connections'),
      keyEpoch: gauge('phalanx_key_epoch', 'Current key epoch'),
      safeMode: gauge(
        'phalanx_safe_mode',
        '1 in safe mode: proof that more than f replicas misbehaved (a fork); no writes are executed',
      ),
    };
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  get requestsExecuted(): number {
    return this.#requestsExecuted;
  }

  executed(sequence: number, requests: number): void {
    this.#requestsExecuted += requests;
    this.#requests.inc(requests);
    this.#batches.inc();
    this.#batchRequests.observe(requests);
    if (sequence % this.#checkpointInterval === 0) {
      if (this.#checkpointsTaken.size >= MAX_PENDING_CHECKPOINTS) {
        const oldest = this.#checkpointsTaken.keys().next().value;
        if (oldest !== undefined) this.#checkpointsTaken.delete(oldest);
      }
      this.#checkpointsTaken.set(sequence, performance.now());
    }
    this.#sample();
  }

  /** A client request arrived (a retransmission keeps the first arrival's time). */
  requestArrived(client: string, requestNumber: number): void {
    const key = `${client}\n${requestNumber}`;
    if (this.#arrivals.has(key)) return;
    const now = performance.now();
    if (this.#arrivals.size >= MAX_TIMED_REQUESTS) this.#forgetOlderThan(now - TIMED_REQUEST_MAX_AGE_MS);
    if (this.#arrivals.size >= MAX_TIMED_REQUESTS) {
      this.#requestTimingsDropped.inc();
      return;
    }
    this.#arrivals.set(key, now);
  }

  /** This replica's reply to a request left (was handed to the transport). */
  replySent(client: string, requestNumber: number, readOnly: boolean): void {
    const key = `${client}\n${requestNumber}`;
    const arrivedAt = this.#arrivals.get(key);
    if (arrivedAt === undefined) return;
    this.#arrivals.delete(key);
    this.#requestSeconds[readOnly ? 'read-only' : 'ordered'].observe((performance.now() - arrivedAt) / 1000);
  }

  /** Arrivals are in insertion order, so the stale ones are at the front. */
  #forgetOlderThan(cutoff: number): void {
    for (const [key, arrivedAt] of this.#arrivals) {
      if (arrivedAt >= cutoff) return;
      this.#arrivals.delete(key);
    }
  }

  checkpointStored(seconds: number): void {
    this.#checkpointStoreSeconds.observe(seconds);
  }

  rejected(what: string): void {
    this.#rejections.inc({ what });
  }

  logged(event: string, details: LogDetails): void {
    this.#timeProtocolEvent(event, details);
    if (event === 'rejected-input') this.#rejections.inc({ what: String(details.what ?? 'input') });
    else if (
      event === 'view-installed' ||
      event === 'checkpoint-stable' ||
      event.startsWith('state-transfer-') ||
      event.endsWith('-detected') ||
      event === 'conflicting-checkpoint' ||
      event === 'invalid-new-view' ||
      event === 'double-commit'
    ) {
      this.#events.inc({ event });
    }
  }

  #timeProtocolEvent(event: string, details: LogDetails): void {
    switch (event) {
      case 'checkpoint-stable': {
        const sequence = Number(details.sequence);
        const takenAt = this.#checkpointsTaken.get(sequence);
        if (takenAt !== undefined)
          this.#checkpointStableSeconds.observe((performance.now() - takenAt) / 1000);
        for (const taken of this.#checkpointsTaken.keys())
          if (taken <= sequence) this.#checkpointsTaken.delete(taken);
        break;
      }
      case 'state-transfer-completed':
        if (typeof details.durationMs === 'number')
          this.#stateTransferSeconds.observe(details.durationMs / 1000);
        break;
      case 'view-change-started':
        // A view change that times out moves on to the next view: timed from its first start.
        this.#viewChangeStartedAt ??= performance.now();
        break;
      case 'view-installed':
        if (this.#viewChangeStartedAt !== null)
          this.#viewChangeSeconds.observe((performance.now() - this.#viewChangeStartedAt) / 1000);
        this.#viewChangeStartedAt = null;
        break;
    }
  }

  flushed(seconds: number): void {
    this.#flushSeconds.observe(seconds);
  }

  #sample(): void {
    const now = performance.now();
    const last = this.#samples[this.#samples.length - 1];
    if (last !== undefined && now - last.time < 1000) return;
    this.#samples.push({ time: now, count: this.#requestsExecuted });
    while (this.#samples.length > THROUGHPUT_WINDOW_SECONDS + 1) this.#samples.shift();
  }

  throughputPerSecond(): number {
    this.#sample();
    const first = this.#samples[0];
    if (first === undefined) return 0;
    const elapsed = (performance.now() - first.time) / 1000;
    if (elapsed <= 0) return 0;
    return Math.round(((this.#requestsExecuted - first.count) / elapsed) * 10) / 10;
  }

  async render(status: ReplicaStatus): Promise<string> {
    this.#gauges.view.set(status.view);
    this.#gauges.lastExecuted.set(status.lastExecuted);
    this.#gauges.stableCheckpoint.set(status.stableCheckpoint);
    this.#gauges.pending.set(status.pendingRequests);
    this.#gauges.leaderTurnaround.set(status.leaderTurnaroundMs ?? 0);
    this.#gauges.leaderTurnaroundExpectation.set(status.leaderTurnaroundExpectationMs);
    this.#gauges.leaderLeftOutClients.set(status.leaderLeftOutClients ?? 0);
    this.#gauges.leaderLeftOutClientsLimit.set(status.leaderLeftOutClientsLimit ?? 0);
    this.#gauges.peers.set(status.connectedPeers);
    this.#gauges.keyEpoch.set(status.keyEpoch);
    this.#gauges.safeMode.set(status.safeMode === true ? 1 : 0);
    return this.#registry.metrics();
  }
}
