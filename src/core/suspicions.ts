/**
 * Suspicions are unprovable complaints ("the leader is slow", "replica 3 stopped answering"). One
 * replica's complaint proves nothing: it may itself be faulty, and up to f replicas may be. f + 1
 * complaints from distinct replicas include at least one from a correct replica, so they are
 * acted upon (docs/design.md §4: the accused is scheduled into the next reactive recovery slot).
 *
 * Complaints are counted within a sliding window: a correct replica that suspected a leader an
 * hour ago and has not complained since is no longer suspecting it, and counting its stale vote
 * would let f faulty replicas reach the threshold by waiting for any correct one to complain once.
 */
import { assert, type ReplicaId } from '../messages/ids.js';

export interface SuspicionTrackerOptions {
  /** Replicas in the configuration; ids are 0..n-1, and reports naming others are rejected. */
  readonly n: number;
  /** Replicas that may be faulty at once: f + 1 distinct reporters are needed. */
  readonly f: number;
  /** A report counts for this long after it was made (then it expires unless renewed). */
  readonly windowMs: number;
}

export interface SuspicionSnapshot {
  readonly accused: ReplicaId;
  /** Distinct replicas whose report on `accused` is still current, ascending. */
  readonly reporters: readonly ReplicaId[];
}

interface AccusedState {
  /** Reporter → time of its latest report, ms. One entry per reporter, so at most n − 1 entries. */
  readonly reportedAtMs: Map<ReplicaId, number>;
  /** The threshold was reached since the last clear(): it is announced only once. */
  thresholdReached: boolean;
}

export class SuspicionTracker {
  readonly n: number;
  readonly f: number;
  readonly windowMs: number;
  /** Indexed by accused; memory is bounded by n × (n − 1) votes. */
  readonly #byAccused: AccusedState[];

  constructor(options: SuspicionTrackerOptions) {
    assert(Number.isSafeInteger(options.n) && options.n >= 1, `invalid n: ${options.n}`);
    assert(Number.isSafeInteger(options.f) && options.f >= 0, `invalid f: ${options.f}`);
    assert(
      Number.isFinite(options.windowMs) && options.windowMs > 0,
      `invalid windowMs: ${options.windowMs}`,
    );
    this.n = options.n;
    this.f = options.f;
    this.windowMs = options.windowMs;
    this.#byAccused = Array.from({ length: options.n }, () => ({
      reportedAtMs: new Map<ReplicaId, number>(),
      thresholdReached: false,
    }));
  }

  /** Distinct current reporters needed to act on a suspicion. */
  get threshold(): number {
    return this.f + 1;
  }

  /**
   * Records that `reporter` suspects `accused` at `nowMs`. Returns true exactly when the number
   * of distinct reporters whose report is current reaches f + 1 for the first time since the last
   * clear(accused); false otherwise, including for rejected reports (an id outside 0..n-1, or a
   * replica suspecting itself: the threshold counts witnesses, and a replica is no witness of its
   * own fault). A repeated report from one reporter only renews its vote. A vote expires when it
   * is more than windowMs old.
   */
  report(accused: ReplicaId, reporter: ReplicaId, nowMs: number, reportedAtMs: number = nowMs): boolean {
    if (!this.#isReplica(accused) || !this.#isReplica(reporter) || accused === reporter) return false;
    const state = this.#byAccused[accused]!;
    this.#expireVotes(state, nowMs);
    const previous = state.reportedAtMs.get(reporter);
    // A report stamped earlier than one already held (clocks of callers need not agree) must not
    // shorten the vote's life.
    const at = Number.isFinite(reportedAtMs) ? Math.min(reportedAtMs, nowMs) : nowMs;
    state.reportedAtMs.set(reporter, previous === undefined ? at : Math.max(previous, at));
    if (state.thresholdReached || state.reportedAtMs.size < this.threshold) return false;
    state.thresholdReached = true;
    return true;
  }

  /**
   * When the threshold was reached by the reports' own stamps: the (f+1)-th earliest current vote
   * against `accused` (null below the threshold). Every holder of the same votes computes the same
   * time whatever order they arrived in, which is what lets guardians agree on the order of
   * accusations (the reactive slots serve the oldest first).
   */
  thresholdTimeMs(accused: ReplicaId, nowMs: number): number | null {
    if (!this.#isReplica(accused)) return null;
    const state = this.#byAccused[accused]!;
    this.#expireVotes(state, nowMs);
    const times = [...state.reportedAtMs.values()].sort((a, b) => a - b);
    return times[this.threshold - 1] ?? null;
  }

  /**
   * Forgets every vote against `accused` and re-arms its threshold, e.g. once it has been
   * rejuvenated: complaints about its previous incarnation say nothing about the new one.
   */
  clear(accused: ReplicaId): void {
    if (!this.#isReplica(accused)) return;
    const state = this.#byAccused[accused]!;
    state.reportedAtMs.clear();
    state.thresholdReached = false;
  }

  /**
   * Drops every vote more than windowMs old. Calling it is optional (report() and snapshot()
   * expire what they look at); it only returns memory early. It does not re-arm a threshold.
   */
  expire(nowMs: number): void {
    for (const state of this.#byAccused) this.#expireVotes(state, nowMs);
  }

  /** Current suspicions, by accused ascending; replicas nobody currently suspects are left out. */
  snapshot(nowMs: number): SuspicionSnapshot[] {
    this.expire(nowMs);
    const snapshot: SuspicionSnapshot[] = [];
    this.#byAccused.forEach((state, accused) => {
      if (state.reportedAtMs.size === 0) return;
      const reporters = [...state.reportedAtMs.keys()].sort((a, b) => a - b);
      snapshot.push({ accused: accused as ReplicaId, reporters });
    });
    return snapshot;
  }

  #isReplica(id: number): boolean {
    return Number.isSafeInteger(id) && id >= 0 && id < this.n;
  }

  #expireVotes(state: AccusedState, nowMs: number): void {
    for (const [reporter, reportedAtMs] of state.reportedAtMs) {
      if (nowMs - reportedAtMs > this.windowMs) state.reportedAtMs.delete(reporter);
    }
  }
}
