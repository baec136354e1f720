/**
 * The recovery checkers of the simulator's --recovery mode (src/sim/guardians.ts). They judge what
 * the guardians' cores did, from the actions the driver carried out and on the simulated clock,
 * never from the cores' own belief:
 * - at most k replicas rejuvenating at once: every rejuvenation counts from its 'recovery-begun'
 *   to its 'recovery-over' (one that ends up keeping the disk too: its replica is down all the
 *   same; a guardian's first start does not count). A rejuvenation after a crash is outside the schedule: an
 *   overlap it takes part in is counted (crashOverlaps), not a violation, since the simulator's
 *   crashes of correct replicas come on top of the f the model budgets (see docs/ARCHITECTURE.md);
 * - every replica's exposure stays within T = T_P + T_D: from its last amnesiac restart on a fresh
 *   key epoch (or time 0) to the retirement of that epoch by its next rejuvenation, or to now.
 *   A rejuvenation that kept its disk (GuardianCore#decideDisk: too many others out) does not
 *   end the exposure; the core then owes the full rejuvenation to a reactive slot, so after one
 *   the bound is T + T_P (one more period to reach a reactive slot), and the overrun of T is
 *   counted (exposureOverrunsOwed) rather than judged. The bound assumes every recovery finishes
 *   within T_D: once one did not (its core raised the alarm) since the replica was last fresh, an
 *   overrun is counted (exposureOverrunsSlowRecovery), not judged;
 * - no correct replica is accused by any core on proof, nor on suspicions that no correct replica
 *   shared: f + 1 reporters include a correct one, so an accusation of a correct replica with no
 *   correct replica's suspicion of it within the suspicion window (2 T_D, plus the control
 *   channel's delay) was made on the word of Byzantine replicas alone ('frame' tries exactly
 *   that). Accusations a guardian makes of its own replica because a rejuvenation kept its disk
 *   ("rejuvenation owed") are the schedule's bookkeeping. Accusations of a correct replica on
 *   f + 1 suspicions one of which came from a correct replica are counted
 *   (correctAccusedOnSuspicion), not a violation: suspicions come from timeouts, which network
 *   faults and a faulty client's requests trip on correct replicas too;
 * - a replica proven to misbehave is rejuvenated by the reactive slot that serves it: the m-th
 *   reactive slot starting after the accusation (plus the decision lead), m = ⌈a/k⌉ with a the
 *   replicas the accusing core had accused then (a slot serves k of them, oldest first);
 * - each recovery's duration in simulated time, for the report.
 */
import {
  exposureBoundMs,
  mostAtOnce,
  type ScheduleParameters,
  slotAt,
  type TimeInterval,
} from '../../core/schedule.js';
import { assert } from '../../messages/ids.js';
import type { AccusationCause } from '../../recovery/core/guardian-core.js';

/** How late a suspicion may reach a core after its replica reported it (control channel, ticks). */
const SUSPICION_RELAY_SLACK_MS = 200;

/** At most this many violations are kept (the report keeps 20 of all checkers anyway). */
const MAX_RECORDED_VIOLATIONS = 20;

export interface RecoveryStatistics {
  /** Rejuvenations that restarted their replica amnesiac on a fresh key epoch, finished. */
  readonly rejuvenations: number;
  /** Of those, reactive ones (on evidence, f + 1 suspicions, an owed rejuvenation or a crash). */
  readonly reactiveRejuvenations: number;
  /** Of the reactive ones, those that followed a crash of the replica. */
  readonly crashRejuvenations: number;
  /** Key epochs retired by a fresh one (every issued epoch after epoch 0). */
  readonly retiredEpochs: number;
  /** Restarts that kept the disk (after a crash, or when too many replicas were out). */
  readonly restartsFromDisk: number;
  /** Accusations made by the cores, of any replica (counted once per core and accusation). */
  readonly accusations: number;
  /** Exposures over T_P + T_D of a replica whose last rejuvenation kept its disk (within T + T_P). */
  readonly exposureOverrunsOwed: number;
  /** Exposures over the bound after a recovery overran T_D (the bound's premise failed). */
  readonly exposureOverrunsSlowRecovery: number;
  /** Overlaps beyond k in which a rejuvenation after a crash took part (not a violation). */
  readonly crashOverlaps: number;
  /** Accusations of a correct replica on f + 1 suspicions a correct replica shared (not a violation). */
  readonly correctAccusedOnSuspicion: number;
  /** Suspicions Byzantine replicas reported to their guardians. */
  readonly byzantineSuspicions: number;
  /** The most replicas rejuvenating at the same instant. */
  readonly maxConcurrentRejuvenations: number;
  /** The longest exposure of a replica while the bound's premises held (judged against T). */
  readonly maxExposureMs: number;
  /** The longest exposure after a kept disk or a rejuvenation over T_D (reported, see above). */
  readonly maxExposureBeyondModelMs: number;
  readonly exposureBoundMs: number;
  /** Duration of each finished non-first recovery, in simulated ms, in the order they ended. */
  readonly recoveryDurationsMs: readonly number[];
  /** Recoveries that passed T_D (their core raised the alarm): reported, not a violation. */
  readonly recoveriesOverBound: number;
}

interface OpenRecovery {
  readonly kind: 'proactive' | 'reactive';
  /** A restart after a crash (or a failed recovery): outside the schedule, which budgets k. */
  readonly afterCrash: boolean;
  readonly begunAtMs: number;
  amnesiacAtMs: number | null;
  /** When this rejuvenation's fresh epoch retired the replica's exposed one. */
  retiredAtMs: number | null;
}

interface ProofObligation {
  readonly accused: number;
  readonly accuser: number;
  readonly accusedAtMs: number;
  readonly deadlineMs: number;
}

export class RecoveryChecker {
  readonly #schedule: ScheduleParameters;
  readonly #isCorrect: (replica: number) => boolean;
  readonly #decisionLeadMs: number;
  readonly #boundMs: number;
  readonly #violations: string[] = [];
  readonly #open = new Map<number, OpenRecovery>();
  /** [begun, over] of every rejuvenation that ended (not the first starts). */
  readonly #intervals: {
    readonly replica: number;
    readonly fromMs: number;
    readonly toMs: number;
    readonly afterCrash: boolean;
  }[] = [];
  readonly #freshSinceMs: number[];
  readonly #exposureReported = new Set<number>();
  readonly #accusationsSeen = new Set<string>();
  readonly #obligations: ProofObligation[] = [];
  /** Per replica, when each rejuvenation of it began (any kind, not a first start). */
  readonly #rejuvenationStarts = new Map<number, number[]>();
  readonly #durations: number[] = [];
  #rejuvenations = 0;
  #reactive = 0;
  #crash = 0;
  #retiredEpochs = 0;
  #fromDisk = 0;
  #accusations = 0;
  #maxExposureMs = 0;
  #maxExposureBeyondModelMs = 0;
  #overBound = 0;
  #crashOverlaps = 0;
  #exposureOverrunsOwed = 0;
  #exposureOverrunsSlowRecovery = 0;
  /** When a recovery last ended over T_D (or was still running past it). */
  #lastSlowRecoveryAtMs = Number.NEGATIVE_INFINITY;
  /** Replicas whose rejuvenation kept the disk since they were last fresh. */
  readonly #keptDisk = new Set<number>();
  readonly #owedOverrunCounted = new Set<number>();
  #correctAccusedOnSuspicion = 0;
  /** Per accused replica, when a correct replica last reported a suspicion of it to its guardian. */
  readonly #correctSuspicionAtMs = new Map<number, number>();
  /** Suspicions Byzantine replicas reported (a framing attempt, or a faulty replica's timers). */
  #byzantineSuspicions = 0;

  constructor(schedule: ScheduleParameters, isCorrect: (replica: number) => boolean, decisionLeadMs: number) {
    this.#schedule = schedule;
    this.#isCorrect = isCorrect;
    this.#decisionLeadMs = decisionLeadMs;
    this.#boundMs = exposureBoundMs(schedule);
    this.#freshSinceMs = Array.from({ length: schedule.n }, () => 0);
  }

  get violations(): readonly string[] {
    return this.#violations;
  }

  #violation(text: string): void {
    if (this.#violations.length < MAX_RECORDED_VIOLATIONS) this.#violations.push(text);
  }

  onBegun(
    replica: number,
    kind: 'proactive' | 'reactive',
    first: boolean,
    afterCrash: boolean,
    nowMs: number,
  ): void {
    if (first) return;
    assert(!this.#open.has(replica), `replica ${replica}'s core began a recovery while one was open`);
    this.#open.set(replica, { kind, afterCrash, begunAtMs: nowMs, amnesiacAtMs: null, retiredAtMs: null });
    this.#checkConcurrency(nowMs);
    const starts = this.#rejuvenationStarts.get(replica);
    if (starts === undefined) this.#rejuvenationStarts.set(replica, [nowMs]);
    else starts.push(nowMs);
  }

  /** A rejuvenation of `replica` issued a fresh epoch: the exposed one is retired now. */
  onEpochRetired(replica: number, nowMs: number): void {
    this.#retiredEpochs++;
    const open = this.#open.get(replica);
    if (open !== undefined) open.retiredAtMs = nowMs;
    this.#judgeExposure(replica, nowMs);
  }

  #judgeExposure(replica: number, nowMs: number): void {
    const exposure = nowMs - this.#freshSinceMs[replica]!;
    const owed = this.#keptDisk.has(replica);
    // Within the model: no rejuvenation of it kept its disk, and none anywhere overran T_D, since
    // it was last fresh. Beyond it, the exposure is reported apart (and judged against T + T_P
    // after a kept disk only).
    if (!owed && this.#lastSlowRecoveryAtMs < this.#freshSinceMs[replica]!)
      this.#maxExposureMs = Math.max(this.#maxExposureMs, exposure);
    else this.#maxExposureBeyondModelMs = Math.max(this.#maxExposureBeyondModelMs, exposure);
    if (owed && exposure > this.#boundMs && !this.#owedOverrunCounted.has(replica)) {
      this.#owedOverrunCounted.add(replica);
      this.#exposureOverrunsOwed++;
    }
    const bound = owed ? this.#boundMs + this.#schedule.periodMs : this.#boundMs;
    if (exposure > bound && !this.#exposureReported.has(replica)) {
      this.#exposureReported.add(replica);
      if (this.#lastSlowRecoveryAtMs >= this.#freshSinceMs[replica]!) {
        this.#exposureOverrunsSlowRecovery++;
        return;
      }
      this.#violation(
        `recovery: replica ${replica} exposed ${exposure} ms at ${nowMs} ms (fresh since ${this.#freshSinceMs[replica]} ms), over ${owed ? `T_P + T_D + T_P = ${bound} ms (a rejuvenation kept its disk)` : `T_P + T_D = ${bound} ms`}`,
      );
    }
  }

  /** The driver started the replica: amnesiac (a rejuvenation) or from its disk. */
  onStarted(replica: number, amnesiac: boolean, nowMs: number): void {
    const open = this.#open.get(replica);
    if (open === undefined) return;
    if (amnesiac) open.amnesiacAtMs = nowMs;
    else {
      this.#fromDisk++;
      this.#keptDisk.add(replica);
    }
  }

  onOver(replica: number, nowMs: number, exceededBound: boolean): void {
    const open = this.#open.get(replica);
    if (open === undefined) return;
    this.#open.delete(replica);
    this.#durations.push(nowMs - open.begunAtMs);
    if (exceededBound || nowMs - open.begunAtMs > this.#schedule.recoveryBoundMs) {
      this.#overBound++;
      this.#lastSlowRecoveryAtMs = nowMs;
    }
    this.#intervals.push({
      replica,
      fromMs: open.begunAtMs,
      toMs: nowMs,
      afterCrash: open.afterCrash,
    });
    if (open.amnesiacAtMs === null) return;
    this.#rejuvenations++;
    if (open.kind === 'reactive') this.#reactive++;
    if (open.afterCrash) this.#crash++;
    this.#freshSinceMs[replica] = open.amnesiacAtMs;
    this.#exposureReported.delete(replica);
    this.#keptDisk.delete(replica);
    this.#owedOverrunCounted.delete(replica);
  }

  /** Replica `reporter` told its guardian it suspects `accused`. */
  onSuspicion(reporter: number, accused: number, nowMs: number): void {
    if (this.#isCorrect(reporter)) this.#correctSuspicionAtMs.set(accused, nowMs);
    else this.#byzantineSuspicions++;
  }

  /** A core holds an accusation of `accused` (`pendingCount`: how many it holds in all). */
  onAccusation(
    accuser: number,
    accused: number,
    accusedAtMs: number,
    cause: AccusationCause,
    reason: string,
    pendingCount: number,
  ): void {
    const key = `${accuser}:${accused}:${accusedAtMs}`;
    if (this.#accusationsSeen.has(key)) return;
    this.#accusationsSeen.add(key);
    this.#accusations++;
    if (cause === 'owed') return;
    if (this.#isCorrect(accused) && cause === 'suspicions') {
      const sharedAtMs = this.#correctSuspicionAtMs.get(accused);
      const windowMs = 2 * this.#schedule.recoveryBoundMs + SUSPICION_RELAY_SLACK_MS;
      if (sharedAtMs === undefined || accusedAtMs - sharedAtMs > windowMs)
        this.#violation(
          `recovery: guardian ${accuser} accused correct replica ${accused} at ${accusedAtMs} ms on suspicions no correct replica shared (${reason})`,
        );
      else this.#correctAccusedOnSuspicion++;
    } else if (this.#isCorrect(accused))
      this.#violation(
        `recovery: guardian ${accuser} accused correct replica ${accused} at ${accusedAtMs} ms (${reason})`,
      );
    if (cause === 'proof') {
      const slots = Math.max(1, Math.ceil(pendingCount / this.#schedule.k));
      this.#obligations.push({
        accused,
        accuser,
        accusedAtMs,
        deadlineMs: this.#reactiveSlotEnd(accusedAtMs + this.#decisionLeadMs, slots),
      });
    }
  }

  /** The end of the `count`-th reactive slot starting at or after `fromMs`. */
  #reactiveSlotEnd(fromMs: number, count: number): number {
    let slot = slotAt(this.#schedule, fromMs);
    let found = 0;
    for (;;) {
      if (slot.kind === 'reactive' && slot.startMs >= fromMs && ++found === count) return slot.endMs;
      slot = slotAt(this.#schedule, slot.endMs);
    }
  }

  /** Called on the driver's ticks: exposure and overdue proofs, at `nowMs`. */
  onTick(nowMs: number, running: (replica: number) => boolean): void {
    for (const open of this.#open.values())
      if (nowMs - open.begunAtMs > this.#schedule.recoveryBoundMs) this.#lastSlowRecoveryAtMs = nowMs;
    for (let replica = 0; replica < this.#schedule.n; replica++) {
      // A replica that is down runs nothing an intruder could use; one whose epoch was just
      // retired is judged again once its rejuvenation is over.
      if (!running(replica) || this.#open.get(replica)?.retiredAtMs != null) continue;
      this.#judgeExposure(replica, nowMs);
    }
    for (let index = this.#obligations.length - 1; index >= 0; index--) {
      const obligation = this.#obligations[index]!;
      const served = (this.#rejuvenationStarts.get(obligation.accused) ?? []).some(
        (startedAtMs) => startedAtMs >= obligation.accusedAtMs && startedAtMs <= obligation.deadlineMs,
      );
      if (served) this.#obligations.splice(index, 1);
      else if (nowMs > obligation.deadlineMs) {
        this.#obligations.splice(index, 1);
        this.#violation(
          `recovery: replica ${obligation.accused}, proven to misbehave (guardian ${obligation.accuser}, ${obligation.accusedAtMs} ms), was not rejuvenated by ${obligation.deadlineMs} ms`,
        );
      }
    }
  }

  #checkConcurrency(nowMs: number): void {
    // One whose deadline is now is over at this instant, though its guardian may tick after the
    // one that begins the next slot (the run's end sweep judges real overruns, from recovery-over).
    const amnesiac = [...this.#open].filter(([, open]) => this.#deadlineOf(open) > nowMs);
    if (amnesiac.length <= this.#schedule.k) return;
    const names = amnesiac.map(
      ([id, open]) => `r${id} ${open.kind}${open.afterCrash ? ' after a crash' : ''}`,
    );
    if (amnesiac.some(([, open]) => open.afterCrash)) {
      this.#crashOverlaps++;
      return;
    }
    this.#violation(
      `recovery: ${amnesiac.length} replicas rejuvenating at once at ${nowMs} ms (${names.join(', ')}), over k = ${this.#schedule.k}`,
    );
  }

  /** The most rejuvenations open at one instant (`scheduledOnly`: none after a crash). */
  #concurrency(scheduledOnly: boolean): number {
    // An end at t comes before a start at t.
    const intervals: TimeInterval[] = this.#intervals.filter(
      (interval) => !scheduledOnly || !interval.afterCrash,
    );
    for (const open of this.#open.values())
      if (!scheduledOnly || !open.afterCrash) intervals.push({ fromMs: open.begunAtMs, toMs: null });
    return mostAtOnce(intervals);
  }

  /** GuardianCore's deadline of a rejuvenation: T_D after its start, or its slot's end if sooner. */
  #deadlineOf(open: OpenRecovery): number {
    const byBound = open.begunAtMs + this.#schedule.recoveryBoundMs;
    return open.afterCrash ? byBound : Math.min(byBound, slotAt(this.#schedule, open.begunAtMs).endMs);
  }

  statistics(): RecoveryStatistics {
    return {
      rejuvenations: this.#rejuvenations,
      reactiveRejuvenations: this.#reactive,
      crashRejuvenations: this.#crash,
      retiredEpochs: this.#retiredEpochs,
      restartsFromDisk: this.#fromDisk,
      accusations: this.#accusations,
      crashOverlaps: this.#crashOverlaps,
      exposureOverrunsOwed: this.#exposureOverrunsOwed,
      exposureOverrunsSlowRecovery: this.#exposureOverrunsSlowRecovery,
      correctAccusedOnSuspicion: this.#correctAccusedOnSuspicion,
      byzantineSuspicions: this.#byzantineSuspicions,
      maxConcurrentRejuvenations: this.#concurrency(false),
      maxExposureMs: this.#maxExposureMs,
      maxExposureBeyondModelMs: this.#maxExposureBeyondModelMs,
      exposureBoundMs: this.#boundMs,
      recoveryDurationsMs: this.#durations.slice(),
      recoveriesOverBound: this.#overBound,
    };
  }

  /** The end of the run: the concurrency over the whole run, judged once more from the intervals. */
  finish(): void {
    const most = this.#concurrency(true);
    if (most <= this.#schedule.k || this.#violations.some((text) => text.includes('rejuvenating at once')))
      return;
    const scheduled = this.#intervals.filter((interval) => !interval.afterCrash);
    const overlapping = scheduled.filter((one) =>
      scheduled.some((other) => other !== one && other.fromMs < one.toMs && one.fromMs < other.toMs),
    );
    this.#violation(
      `recovery: ${most} replicas rejuvenating at once, over k = ${this.#schedule.k}: ${overlapping
        .slice(0, 6)
        .map((interval) => `r${interval.replica} ${interval.fromMs}–${interval.toMs} ms`)
        .join(', ')}`,
    );
  }
}
