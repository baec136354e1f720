/**
 * Budgets for work that remote input can ask for, per sender: a token bucket that refills at a
 * rate and holds at most a burst. Pure: the caller passes the time (the core's logical ms).
 *
 * Usage:
 * ```ts
 * const budgets = new SenderBudgets<string>({ ratePerSecond: 1024, burst: 2048, maxSenders: 100 });
 * if (!budgets.take('client-a', 512, nowMs)) dropIt();
 * ```
 */
import { assert } from '../messages/ids.js';

export interface BudgetLimits {
  /** Units (bytes, requests) granted per second. */
  readonly ratePerSecond: number;
  /** Most units a sender can spend at once after being idle. */
  readonly burst: number;
  /** Senders tracked at most; beyond, the table starts over (everyone gets a full bucket again). */
  readonly maxSenders: number;
}

interface Bucket {
  tokens: number;
  updatedAtMs: number;
  /** Whether the last request was refused (so a refusal is reported once per episode). */
  refusing: boolean;
}

export type BudgetVerdict = 'granted' | 'refused' | 'refused-first';

export class SenderBudgets<Sender> {
  readonly #limits: BudgetLimits;
  readonly #buckets = new Map<Sender, Bucket>();

  constructor(limits: BudgetLimits) {
    assert(limits.ratePerSecond > 0 && limits.burst > 0 && limits.maxSenders > 0, 'budgets must be positive');
    this.#limits = limits;
  }

  /** Whether `sender` has nothing left to spend now (without spending or refilling anything). */
  exhausted(sender: Sender, nowMs: number): boolean {
    const bucket = this.#buckets.get(sender);
    if (bucket === undefined) return false;
    const elapsedMs = Math.max(0, nowMs - bucket.updatedAtMs);
    return bucket.tokens + (elapsedMs * this.#limits.ratePerSecond) / 1000 < 1;
  }

  /**
   * Spends `units` of `sender`'s budget if it has them. 'refused-first' is the first refusal
   * after a grant: the moment worth a log line. A request larger than the burst is granted only
   * from a full bucket (it is not starved forever), and leaves the bucket in debt.
   */
  take(sender: Sender, units: number, nowMs: number): BudgetVerdict {
    let bucket = this.#buckets.get(sender);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#limits.maxSenders) this.#buckets.clear();
      bucket = { tokens: this.#limits.burst, updatedAtMs: nowMs, refusing: false };
      this.#buckets.set(sender, bucket);
    }
    const elapsedMs = Math.max(0, nowMs - bucket.updatedAtMs);
    bucket.tokens = Math.min(
      this.#limits.burst,
      bucket.tokens + (elapsedMs * this.#limits.ratePerSecond) / 1000,
    );
    bucket.updatedAtMs = nowMs;
    const affordable = units <= bucket.tokens || bucket.tokens >= this.#limits.burst;
    if (affordable) {
      bucket.tokens -= units;
      bucket.refusing = false;
      return 'granted';
    }
    const first = !bucket.refusing;
    bucket.refusing = true;
    return first ? 'refused-first' : 'refused';
  }
}
