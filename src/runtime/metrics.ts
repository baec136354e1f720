/**
 * Prometheus metrics of one replica (prom-client), served on the admin port at /metrics, and
 * the throughput figure the dashboard shows.
 */
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LogDetails } from '../core/actions.js';
import type { ReplicaStatus } from './status.js';

/** Throughput is averaged over this many one-second samples. */
const THROUGHPUT_WINDOW_SECONDS = 5;

export class ReplicaMetrics {
  readonly #registry = new Registry();
  readonly #requests: Counter;
  readonly #batches: Counter;
  readonly #rejections: Counter;
  readonly #events: Counter;
  readonly #flushSeconds: Histogram;
  readonly #gauges: Record<
    'view' | 'lastExecuted' | 'stableCheckpoint' | 'pending' | 'peers' | 'keyEpoch',
    Gauge
  >;
  #requestsExecuted = 0;
  /** (time in ms, requests executed so far), one per second at most. */
  readonly #samples: { time: number; count: number }[] = [];

  constructor(replica: number) {
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
    const gauge = (name: string, help: string): Gauge => new Gauge({ name, help, registers });
    this.#gauges = {
      view: gauge('phalanx_view', 'Current view'),
      lastExecuted: gauge('phalanx_last_executed_sequence', 'Last executed sequence number'),
      stableCheckpoint: gauge('phalanx_stable_checkpoint_sequence', 'Last stable checkpoint'),
      pending: gauge('phalanx_pending_requests', 'Requests waiting to be ordered'),
      peers: gauge('phalanx_connected_peers', 'Authenticated connections'),
      keyEpoch: gauge('phalanx_key_epoch', 'Current key epoch'),
    };
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  get requestsExecuted(): number {
    return this.#requestsExecuted;
  }

  executed(requests: number): void {
    this.#requestsExecuted += requests;
    this.#requests.inc(requests);
    this.#batches.inc();
    this.#sample();
  }

  rejected(what: string): void {
    this.#rejections.inc({ what });
  }

  logged(event: string, details: LogDetails): void {
    if (event === 'rejected-input') this.#rejections.inc({ what: String(details.what ?? 'input') });
    else if (
      event === 'view-installed' ||
      event === 'checkpoint-stable' ||
      event.startsWith('state-transfer-') ||
      event.endsWith('-detected') ||
      event === 'conflicting-checkpoint'
    ) {
      this.#events.inc({ event });
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
    this.#gauges.peers.set(status.connectedPeers);
    this.#gauges.keyEpoch.set(status.keyEpoch);
    return this.#registry.metrics();
  }
}
