/**
 * What a backup expects of its leader's pace (in the spirit of Aardvark and Prime): the
 * turnaround of each proposal — how long after the leader could first have proposed a batch
 * it did — against what recent views achieved. A leader that delays every proposal to just under
 * the request timeout is never caught by request timers; it is caught here once the median of its
 * last few turnarounds exceeds the expectation.
 *
 * Turnaround of a proposal for sequence s, as this backup sees it: its arrival minus the latest of
 * - when this backup first held the newest request of the batch (the leader cannot propose a
 *   request before a correct client sent it, and clients send to everybody at once);
 * - when this backup executed s − pipelineDepth (a correct leader proposes s only then);
 * - when the current view started here, and when the last checkpoint became stable here (the log
 *   window may have held the leader back).
 * Each bound is one the leader is really held to, so a correct leader's turnaround is its own
 * processing plus one network delay, whatever the load.
 *
 * Expectation: HISTORY_MULTIPLIER × the best median of the last `historyViews` views whose leader
 * nobody here blamed, never below `floorMs` (an honest leader on a slow machine or network must not
 * be rotated for ever), times a backoff that doubles each time this replica blames a leader for
 * its pace and halves each time a view keeps pace, and never above `ceilingMs` (the request
 * timeout catches anything slower anyway). With fewer than `historyViews` views of history, the
 * floor alone.
 *
 * Batch fill, the leader's other duty: a leader that proposes one request per batch however many
 * wait keeps a perfect turnaround and still halves throughput (every request pays the three
 * phases, a signed reply batch and a group commit alone). So a backup also counts, for each new
 * proposal with room left, the clients it left out: clients with a request every correct backup
 * had told the leader it holds (known here: Q − 1 + f backups hold it) since before the leader
 * could propose, by a grace, that is neither in this batch nor in flight. A correct leader takes
 * one request of every client with one it may propose before it stops for room, so it leaves out
 * none but for races of a few milliseconds; the median of the last TURNAROUND_WINDOW counts must
 * stay below MIN_LEFT_OUT_CLIENTS times a backoff of its own (doubles each time this replica blames
 * a leader for it, halves each view that kept it: faulty clients that give the leader and the
 * backups different requests can make a correct leader look as if it left them out, and each time
 * they do they raise the bar for the next).
 *
 * Pure and bounded: times come from the core's clock, the history holds `historyViews` medians,
 * the windows TURNAROUND_WINDOW samples and the execution times `pipelineDepth` + 1 entries.
 */
import { assert } from '../messages/ids.js';

/** Turnarounds of the current view whose median is compared with the expectation. */
export const TURNAROUND_WINDOW = 5;
/** A leader is judged only once this many of its proposals were measured in its view. */
export const MIN_TURNAROUND_SAMPLES = 3;
/** How much slower than the best recent view a leader may be. */
export const HISTORY_MULTIPLIER = 4;
/** Bound on the backoff factor (the ceiling bounds the expectation anyway). */
export const MAX_PACE_BACKOFF = 64;
/** Clients left out of a batch with room, in the median of the window, that blame a leader. */
export const MIN_LEFT_OUT_CLIENTS = 2;
/** Bound on the batch-fill backoff factor. */
export const MAX_FILL_BACKOFF = 64;
/**
 * The grace of the batch-fill count is the turnaround floor divided by this (15 ms by default):
 * enough for the backups' acknowledgements to reach the leader, short against how long requests
 * wait behind a leader that proposes them one at a time.
 */
export const LEFT_OUT_GRACE_DIVISOR = 10;

export interface LeaderPaceConfig {
  /** Lowest expectation in ms; 0 turns the check off. */
  readonly floorMs: number;
  /** Highest expectation in ms (the request timeout). */
  readonly ceilingMs: number;
  /** Views of history the expectation is drawn from (f + 1: at least one had a correct leader). */
  readonly historyViews: number;
  readonly pipelineDepth: number;
}

export interface LeaderPaceReport {
  /** Median of the current view's last turnarounds (null: fewer than MIN_TURNAROUND_SAMPLES). */
  readonly medianMs: number | null;
  readonly expectationMs: number;
  readonly backoff: number;
  readonly samples: number;
  /** Median of the clients left out of the current view's last batches with room (null: too few). */
  readonly leftOutClientsMedian: number | null;
  /** The median at which this replica blames the leader for what it leaves out. */
  readonly leftOutClientsLimit: number;
}

export type PaceVerdict =
  | { readonly kind: 'unmeasured' }
  | { readonly kind: 'kept-pace'; readonly turnaroundMs: number }
  | {
      readonly kind: 'too-slow';
      readonly medianMs: number;
      readonly expectationMs: number;
      readonly samples: number;
    };

export type FillVerdict =
  | { readonly kind: 'filled' }
  | {
      readonly kind: 'leaves-out';
      readonly medianClients: number;
      readonly limit: number;
      readonly samples: number;
    };

function median(values: readonly number[]): number {
  assert(values.length > 0, 'median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

export class LeaderPace {
  readonly #config: LeaderPaceConfig;
  #turnarounds: number[] = [];
  /** Medians of recent unblamed views, newest last. */
  readonly #history: number[] = [];
  #backoff = 1;
  #blamedThisView = false;
  /** Clients left out of the current view's last batches with room, newest last. */
  #leftOut: number[] = [];
  #fillBackoff = 1;
  #fillBlamedThisView = false;
  readonly #executedAt = new Map<number, number>();
  #viewStartedAt = 0;
  #stableAt = 0;

  constructor(config: LeaderPaceConfig) {
    assert(Number.isSafeInteger(config.floorMs) && config.floorMs >= 0, 'pace floor must be ≥ 0');
    assert(config.ceilingMs >= config.floorMs, 'pace ceiling below its floor');
    assert(config.historyViews >= 1 && config.pipelineDepth >= 1, 'pace history and depth must be ≥ 1');
    this.#config = config;
  }

  get enabled(): boolean {
    return this.#config.floorMs > 0;
  }

  /** When the current view started here. */
  get viewStartedAt(): number {
    return this.#viewStartedAt;
  }

  /** How long before the leader could propose a request must have been known held to count. */
  get leftOutGraceMs(): number {
    return this.#config.floorMs / LEFT_OUT_GRACE_DIVISOR;
  }

  get expectationMs(): number {
    const { floorMs, ceilingMs, historyViews } = this.#config;
    const best = this.#history.length >= historyViews ? Math.min(...this.#history) : 0;
    return Math.min(ceilingMs, Math.max(floorMs, HISTORY_MULTIPLIER * best) * this.#backoff);
  }

  get report(): LeaderPaceReport {
    return {
      medianMs: this.#turnarounds.length >= MIN_TURNAROUND_SAMPLES ? median(this.#turnarounds) : null,
      expectationMs: this.expectationMs,
      backoff: this.#backoff,
      samples: this.#turnarounds.length,
      leftOutClientsMedian: this.#leftOut.length >= MIN_TURNAROUND_SAMPLES ? median(this.#leftOut) : null,
      leftOutClientsLimit: this.leftOutClientsLimit,
    };
  }

  get leftOutClientsLimit(): number {
    return MIN_LEFT_OUT_CLIENTS * this.#fillBackoff;
  }

  executed(sequence: number, now: number): void {
    this.#executedAt.set(sequence, now);
    const oldest = sequence - this.#config.pipelineDepth - 1;
    for (const known of this.#executedAt.keys()) if (known < oldest) this.#executedAt.delete(known);
  }

  stabilized(now: number): void {
    this.#stableAt = now;
  }

  /** A new view is installed here: the last view's pace becomes history if nobody here blamed it. */
  viewStarted(now: number): void {
    if (!this.#blamedThisView && this.#turnarounds.length >= MIN_TURNAROUND_SAMPLES) {
      const kept = median(this.#turnarounds);
      if (kept <= this.expectationMs) this.#backoff = Math.max(1, this.#backoff / 2);
      this.#history.push(kept);
      while (this.#history.length > this.#config.historyViews) this.#history.shift();
    }
    if (!this.#fillBlamedThisView && this.#leftOut.length >= MIN_TURNAROUND_SAMPLES)
      this.#fillBackoff = Math.max(1, this.#fillBackoff / 2);
    this.#turnarounds = [];
    this.#blamedThisView = false;
    this.#leftOut = [];
    this.#fillBlamedThisView = false;
    this.#viewStartedAt = now;
  }

  /** This replica blames the leader for its pace: the next leader gets twice the time. */
  blamed(): void {
    this.#blamedThisView = true;
    this.#backoff = Math.min(MAX_PACE_BACKOFF, this.#backoff * 2);
  }

  /** This replica blames the leader for what it leaves out of its batches. */
  blamedForFill(): void {
    this.#fillBlamedThisView = true;
    this.#fillBackoff = Math.min(MAX_FILL_BACKOFF, this.#fillBackoff * 2);
  }

  /**
   * The earliest time, as this replica saw it, at which the leader could have proposed `sequence`:
   * the later of the view's start, the last stable checkpoint and the execution of
   * `sequence` − pipelineDepth (null: that execution is not known here, no fair bound).
   */
  openedAt(sequence: number): number | null {
    const gate = sequence - this.#config.pipelineDepth;
    const opened = Math.max(this.#viewStartedAt, this.#stableAt);
    if (gate < 1) return opened;
    const executedAt = this.#executedAt.get(gate);
    // Not executed here yet (this replica is the slow one), or long ago below a checkpoint it
    // adopted: no fair bound, so no measurement.
    return executedAt === undefined ? null : Math.max(opened, executedAt);
  }

  /**
   * A proposal for `sequence` arrived at `now`; `heldSince` is when this replica first held the
   * newest request of its batch (null: it holds some request of the batch not at all, so the
   * leader may have had it earlier and nothing is measured).
   */
  observe(sequence: number, heldSince: number | null, now: number): PaceVerdict {
    if (!this.enabled || heldSince === null) return { kind: 'unmeasured' };
    const opened = this.openedAt(sequence);
    if (opened === null) return { kind: 'unmeasured' };
    const turnaroundMs = Math.max(0, now - Math.max(heldSince, opened));
    this.#turnarounds.push(turnaroundMs);
    while (this.#turnarounds.length > TURNAROUND_WINDOW) this.#turnarounds.shift();
    if (this.#blamedThisView || this.#turnarounds.length < MIN_TURNAROUND_SAMPLES)
      return { kind: 'kept-pace', turnaroundMs };
    const medianMs = median(this.#turnarounds);
    const expectationMs = this.expectationMs;
    if (medianMs <= expectationMs) return { kind: 'kept-pace', turnaroundMs };
    return { kind: 'too-slow', medianMs, expectationMs, samples: this.#turnarounds.length };
  }

  /**
   * A new proposal with room left out requests of `leftOutClients` clients that every correct
   * backup had told the leader it holds (the replica counts them, see the file comment).
   */
  observeFill(leftOutClients: number): FillVerdict {
    assert(Number.isSafeInteger(leftOutClients) && leftOutClients >= 0, 'left-out count must be ≥ 0');
    if (!this.enabled) return { kind: 'filled' };
    this.#leftOut.push(leftOutClients);
    while (this.#leftOut.length > TURNAROUND_WINDOW) this.#leftOut.shift();
    if (this.#fillBlamedThisView || this.#leftOut.length < MIN_TURNAROUND_SAMPLES) return { kind: 'filled' };
    const medianClients = median(this.#leftOut);
    const limit = this.leftOutClientsLimit;
    if (medianClients < limit) return { kind: 'filled' };
    return { kind: 'leaves-out', medianClients, limit, samples: this.#leftOut.length };
  }
}
