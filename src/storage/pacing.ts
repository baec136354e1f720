/**
 * Pacing of a storage load: the loading work (reading chunks, checking their digests) runs in
 * slices of `busyMs` of the process's CPU time, each followed by a pause of `pauseMs` of wall time.
 *
 * Slices are CPU time, not wall time, because the load runs on a busy machine: a slice of 10 ms
 * of wall time on two cores shared by a dozen busy processes held a millisecond or two of work,
 * so the pacing throttled the load a second time on top of the contention it was meant to ease,
 * and a rejuvenation of a replica holding 1 MB spent 1.3–3.3 s loading it (T_D was 4–5 s).
 *
 * A rejuvenated replica loads its whole checkpoint while the other replicas serve clients, on the
 * same machines. Measured with `phalanx bench recovery --state-mb 100` on a 2-core machine:
 * while the recovering process loaded 100 MB, the cluster's throughput fell by a third, even at
 * nice 19 or under SCHED_IDLE (a CPU priority does not stop a process from contending for memory
 * bandwidth, caches and a host core's other hardware thread); with the process idle for the same
 * time it did not fall at all. Pacing trades load time for that contention: at a third of full duty
 * the load takes about three times as long and contends a third as hard. The guardian's recovery
 * bound T_D still holds the whole recovery, so the pace must leave room for it (see
 * docs/intrusion-tolerance.md).
 *
 * Measured (same bench, 100 MB, worst of 2 slots per run): at half duty (10 ms / 10 ms) the
 * throughput ratio was 0.81–0.88 and a recovery took 3.4–4.3 s; at a third (10 ms / 20 ms),
 * 0.83–0.94 and 3.9–4.6 s. The storage step itself grew from about 1.8 s to 2.1–2.6 s.
 */
import { assert } from '../messages/ids.js';

export interface LoadPacing {
  /** Work between pauses, ms of the process's CPU time (user and system, every thread). */
  readonly busyMs: number;
  /** Length of each pause, ms. */
  readonly pauseMs: number;
}

/** What a rejuvenated replica uses: a third of full duty, in slices short enough not to delay its messages. */
export const RECOVERY_LOAD_PACING: LoadPacing = { busyMs: 10, pauseMs: 20 };

/**
 * For work without a deadline that runs beside the service (a guardian's audit of a stopped
 * replica's accountability log): a fifth of a core at most. Measured unpaced, the audit of
 * 40 MB took about half a core for a second right after each rejuvenation.
 */
export const BACKGROUND_PACING: LoadPacing = { busyMs: 5, pauseMs: 20 };

/** CPU time this process has used, ms: what a slice of work is measured in. */
export function processCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** A pacer's hook as work loops take it: a pause to wait for, or undefined to go on at once. */
export type Pace = () => Promise<void> | undefined;

export class LoadPacer {
  readonly #pacing: LoadPacing;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #sliceStartedAt: number;
  #pausedMs = 0;
  /** The pause in progress: concurrent pieces of work (parallel reads) wait in the same one. */
  #pause: Promise<void> | null = null;

  constructor(
    pacing: LoadPacing,
    clock: { readonly now?: () => number; readonly sleep?: (ms: number) => Promise<void> } = {},
  ) {
    assert(
      Number.isFinite(pacing.busyMs) &&
        pacing.busyMs > 0 &&
        Number.isFinite(pacing.pauseMs) &&
        pacing.pauseMs >= 0,
      `invalid load pacing: busy ${pacing.busyMs} ms, pause ${pacing.pauseMs} ms`,
    );
    this.#pacing = pacing;
    this.#now = clock.now ?? processCpuMs;
    this.#sleep = clock.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#sliceStartedAt = this.#now();
  }

  /**
   * Called between two pieces of work: the pause to wait for once the current slice has used up
   * busyMs, else undefined. Not a promise when no pause is due, so a loop over many small pieces
   * (an audit's entries) pays an await only per pause, not per piece.
   */
  yield(): Promise<void> | undefined {
    if (this.#pause !== null) return this.#pause;
    if (this.#now() - this.#sliceStartedAt < this.#pacing.busyMs) return undefined;
    this.#pause = (async () => {
      if (this.#pacing.pauseMs > 0) {
        await this.#sleep(this.#pacing.pauseMs);
        this.#pausedMs += this.#pacing.pauseMs;
      }
      this.#sliceStartedAt = this.#now();
      this.#pause = null;
    })();
    return this.#pause;
  }

  /** Time spent in pauses so far (for the start-up log). */
  get pausedMs(): number {
    return this.#pausedMs;
  }
}
