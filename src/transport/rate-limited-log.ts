/**
 * Rate limiting for log lines that hostile input can trigger. Every refused frame, message or
 * connection used to write one line: 40 000 one-byte frames grew every replica's log by 6.6 MB,
 * so an attacker could fill the disk through the logs. Here each kind of line (a key: who
 * offended, and how) gets its first occurrence written, then at most one line per interval; the
 * line that is written says how many were suppressed since the previous one, so nothing is lost
 * from the count, only from the repetition.
 *
 * Memory is bounded too: at most `maxTrackedKeys` keys are tracked. When the table is full, keys
 * whose interval has passed and that owe no count are forgotten; if none can be, the new key is
 * counted under the catch-all OVERFLOW_KEY (so an attacker who varies its address or its garbage
 * still gets one line per interval for all of that, not one per variant).
 *
 * Time is a parameter (or an injected clock), never read from a timer: the class is a pure
 * bookkeeping object, unit-tested without waiting. Counts suppressed at the end of a burst are
 * reported by `overdue`, which the owner calls from a timer or tick it already has.
 *
 * Usage:
 * ```ts
 * const limiter = new RateLimitedLog();
 * const permit = limiter.admit(`frame:${peer}:${kind}`);
 * if (permit !== null) logger.warn({ peer, reason, suppressed: permit.suppressed }, 'rejected frame');
 * // every interval or so:
 * for (const owed of limiter.overdue()) logger.warn({ key: owed.key, suppressed: owed.suppressed }, 'rejections suppressed');
 * ```
 */
import { InvariantViolation } from '../messages/ids.js';

export const RATE_LIMITED_LOG_LIMITS = {
  /**
   * Per key, at most one line per this many milliseconds after the first: 10 s keeps a flood
   * visible within seconds while costing a log at most a few lines per minute per offender.
   */
  defaultIntervalMilliseconds: 10_000,
  /**
   * Keys tracked at once. A key is a few dozen bytes, so the table stays below ~50 KB. Lines of
   * one key (summaries included) are an interval apart and at most maxTrackedKeys + 1 keys hold
   * lines at a time, so with the interval above a log gets about 26 rate-limited lines (~5 KB) a
   * second at most, whatever the input.
   */
  defaultMaxTrackedKeys: 256,
} as const;

/** Where lines of new keys are counted while the table is full. */
export const OVERFLOW_KEY = '(other offenders)';

export interface RateLimitedLogOptions {
  /** At most one line per key per this many milliseconds (after the first). */
  readonly intervalMilliseconds?: number;
  /** Keys tracked at once, the catch-all excluded. */
  readonly maxTrackedKeys?: number;
  /** Milliseconds from any fixed origin; `performance.now` by default. */
  readonly now?: () => number;
}

/** Leave to write one line. */
export interface LogPermit {
  /** The key the line counts under: the one asked for, or OVERFLOW_KEY when the table was full. */
  readonly key: string;
  /** Lines suppressed under that key since the last one written (0 for a first occurrence). */
  readonly suppressed: number;
}

interface KeyState {
  /** When the last line for this key was written. */
  writtenAt: number;
  /** Lines suppressed since then. */
  suppressed: number;
}

function checkPositiveInteger(value: number, name: string): void {
  if (!(Number.isSafeInteger(value) && value > 0))
    throw new InvariantViolation(`${name} must be a positive integer, got ${value}`);
}

export class RateLimitedLog {
  readonly intervalMilliseconds: number;
  readonly maxTrackedKeys: number;
  readonly #now: () => number;
  readonly #keys = new Map<string, KeyState>();
  /** The catch-all's state, kept outside the table so that it always has room. */
  #overflow: KeyState | null = null;
  /** Forgetting idle keys walks the table, so a full table is swept at most once per interval. */
  #sweptAt = Number.NEGATIVE_INFINITY;
  #suppressedTotal = 0;
  /** Keys (the catch-all included) with a count not reported yet. */
  #owing = 0;

  constructor(options: RateLimitedLogOptions = {}) {
    this.intervalMilliseconds =
      options.intervalMilliseconds ?? RATE_LIMITED_LOG_LIMITS.defaultIntervalMilliseconds;
    this.maxTrackedKeys = options.maxTrackedKeys ?? RATE_LIMITED_LOG_LIMITS.defaultMaxTrackedKeys;
    checkPositiveInteger(this.intervalMilliseconds, 'intervalMilliseconds');
    checkPositiveInteger(this.maxTrackedKeys, 'maxTrackedKeys');
    this.#now = options.now ?? (() => performance.now());
  }

  /** Keys in the table (the catch-all not counted). */
  get trackedKeys(): number {
    return this.#keys.size;
  }

  /** Lines suppressed since this object was made, under every key. */
  get suppressedTotal(): number {
    return this.#suppressedTotal;
  }

  /**
   * Whether a line for `key` may be written at `now`: a permit (write the line, with its
   * `suppressed` count), or null (do not write it; it is counted).
   */
  admit(key: string, now: number = this.#now()): LogPermit | null {
    let state = this.#keys.get(key);
    if (state === undefined) {
      if (this.#keys.size >= this.maxTrackedKeys) this.#sweep(now);
      if (this.#keys.size < this.maxTrackedKeys) {
        this.#keys.set(key, { writtenAt: now, suppressed: 0 });
        return { key, suppressed: 0 };
      }
      if (this.#overflow === null) {
        this.#overflow = { writtenAt: now, suppressed: 0 };
        return { key: OVERFLOW_KEY, suppressed: 0 };
      }
      state = this.#overflow;
      key = OVERFLOW_KEY;
    }
    if (now - state.writtenAt >= this.intervalMilliseconds) {
      const suppressed = state.suppressed;
      if (suppressed > 0) this.#owing--;
      state.writtenAt = now;
      state.suppressed = 0;
      return { key, suppressed };
    }
    if (state.suppressed === 0) this.#owing++;
    state.suppressed++;
    this.#suppressedTotal++;
    return null;
  }

  /**
   * The counts owed: for every key (the catch-all included) with lines suppressed and no line
   * written for a whole interval, a permit for one summary line. Each is then counted as written
   * at `now`. Call it now and then (every interval is enough) so that the end of a burst is
   * reported even when the offender stops.
   */
  overdue(now: number = this.#now()): LogPermit[] {
    const owed: LogPermit[] = [];
    const settle = (key: string, state: KeyState): void => {
      if (state.suppressed === 0 || now - state.writtenAt < this.intervalMilliseconds) return;
      owed.push({ key, suppressed: state.suppressed });
      state.writtenAt = now;
      state.suppressed = 0;
      this.#owing--;
    };
    for (const [key, state] of this.#keys) settle(key, state);
    if (this.#overflow !== null) settle(OVERFLOW_KEY, this.#overflow);
    return owed;
  }

  /** Whether any key has suppressed lines not reported yet (so `overdue` will have work). */
  get owesCounts(): boolean {
    return this.#owing > 0;
  }

  /** Forgets keys whose interval has passed and that owe no count (their next line is a first one anyway). */
  #sweep(now: number): void {
    if (now - this.#sweptAt < this.intervalMilliseconds) return;
    this.#sweptAt = now;
    for (const [key, state] of this.#keys) {
      if (state.suppressed === 0 && now - state.writtenAt >= this.intervalMilliseconds)
        this.#keys.delete(key);
    }
  }
}
