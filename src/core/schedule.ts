/**
 * The recovery schedule (PRRW: Sousa, Bessani et al., TPDS 2010) as a pure function of the
 * configuration's schedule parameters (`scheduleOf` in src/config/cluster-config.ts) and a time:
 * no clock, timer, I/O or randomness, so every guardian that reads the same configuration and the
 * same (synchronized) time decides the same thing. It lives in core/ because it is pure and the
 * key-epoch lifetimes of crypto/ are computed from it.
 *
 * Time is cut into periods of T_P (`periodMs`) starting at `originMs`. A period holds
 * P = ⌈n/k⌉ proactive slots and R = ⌈f/k⌉ reactive slots, each T_D (`recoveryBoundMs`) long, one
 * after the other from the start of the period; whatever is left of the period after those
 * S = P + R slots is one idle slot. Proactive slot i rejuvenates the group
 * {i·k, …, min(n, (i+1)·k) − 1}, so every replica is rejuvenated exactly once per period; a
 * reactive slot rejuvenates up to k replicas caught misbehaving (`reactiveAssignment`). Slots
 * never overlap and none holds more than k replicas, so at most k replicas recover at once.
 *
 * Layout rule. The P proactive slots are cut into R runs, run j (0 ≤ j < R) holding
 * ⌊(j+1)·P/R⌋ − ⌊j·P/R⌋ consecutive groups (⌊P/R⌋ or ⌈P/R⌉ of them, the first run being a
 * shortest one), and reactive slot j comes right after run j; the idle remainder closes the
 * period. With f = 0 there are no reactive slots. So, start to start, two consecutive reactive
 * slots of one period are at most ⌈P/R⌉ + 1 slots apart, and the last reactive slot of a period
 * and the first of the next are ⌊P/R⌋ + 1 slots plus the idle time apart (putting the shortest
 * run first is what keeps the idle time out of a longer gap). `maximumReactiveWaitMs` is the
 * exact longest of these gaps: once an accusation is `decisionLeadMs` old, the accused replica
 * waits at most that long for a reactive slot to start. With R = 1 every position gives the same
 * gap (one whole period), so spreading only matters from R = 2 on.
 *
 * Worked example: n = 6, f = 1, k = 1, T_D = 8 s gives P = 6, R = 1, S = 7 slots, the minimum
 * T_P = 56 s and the exposure bound T = T_P + T_D = 64 s. With T_P = 56 s and origin 0, period 0
 * is: [0, 8) s replica 0, [8, 16) replica 1, …, [40, 48) replica 5, [48, 56) reactive, and then
 * period 1 starts over. With n = 11, f = 2, k = 1: P = 11, R = 2 and the layout is
 * 0 1 2 3 4 R 5 6 7 8 9 10 R.
 *
 * Times before `originMs`: the schedule extends backwards with negative period numbers (period
 * −1 ends at `originMs`), so every function is defined for every time and all the guarantees
 * hold everywhere; `originMs` only sets the phase.
 *
 * Usage:
 * ```ts
 * const parameters = { n: 6, f: 1, k: 1, recoveryBoundMs: 8000, periodMs: 56_000, originMs: 0 };
 * scheduleProblems(parameters); // []
 * slotAt(parameters, 50_000); // { kind: 'reactive', period: 0, index: 6, startMs: 48000, endMs: 56000, replicas: [] }
 * nextProactiveSlotOf(parameters, replicaId(2), 20_000).startMs; // 72000 (period 1)
 * ```
 */
import { assert, InvariantViolation, type ReplicaId, replicaId } from '../messages/ids.js';
import { type FaultModel, faultModelProblems } from './quorum.js';

/** Everything the schedule depends on; every guardian must use the same values. */
export interface ScheduleParameters {
  /** Replicas in the configuration. */
  readonly n: number;
  /** Replicas that may be Byzantine at the same time. */
  readonly f: number;
  /** Replicas that may be recovering at the same time (at least 1 for a schedule to exist). */
  readonly k: number;
  /** T_D: the bound on one recovery, and the length of every slot (ms). */
  readonly recoveryBoundMs: number;
  /** T_P: the length of a period (ms), at least `minimumPeriodMs`. */
  readonly periodMs: number;
  /** Where period 0 starts (ms on the guardians' shared clock). */
  readonly originMs: number;
}

export type SlotKind = 'proactive' | 'reactive' | 'idle';

/** One slot of the schedule; (period, index) names it uniquely. */
export interface Slot {
  readonly kind: SlotKind;
  /** Period number: ⌊(startMs − originMs) / T_P⌋, negative before the origin. */
  readonly period: number;
  /**
   * Position in the period, counting every kind: 0 … S − 1 for the proactive and reactive slots
   * (in the order of the layout rule), S for the idle slot. Not the proactive group number: use
   * `proactiveGroupOf` for that.
   */
  readonly index: number;
  /** Inclusive. */
  readonly startMs: number;
  /** Exclusive: the next slot starts here. */
  readonly endMs: number;
  /** proactive: the group, in increasing order; otherwise [] (see `reactiveAssignment`). */
  readonly replicas: readonly ReplicaId[];
}

/** A replica reported to the guardians as misbehaving (proof, or f + 1 suspicions), and when. */
export interface Accusation {
  readonly replica: ReplicaId;
  readonly accusedAtMs: number;
  /**
   * A rejuvenation owed for a kept disk, not a fault: served after every proven or suspected
   * replica (an intruder caught in the act must not wait behind exposure bookkeeping).
   */
  readonly owed?: boolean;
}

/** ⌈n/k⌉ + ⌈f/k⌉ slots of T_D: the shortest period that fits every proactive and reactive slot. */
export function minimumPeriodMs(model: FaultModel, recoveryBoundMs: number): number {
  if (model.k < 1) return Number.POSITIVE_INFINITY;
  return (Math.ceil(model.n / model.k) + Math.ceil(model.f / model.k)) * recoveryBoundMs;
}

/** P = ⌈n/k⌉: proactive slots (groups) per period. */
export function proactiveSlotsPerPeriod(model: FaultModel): number {
  return Math.ceil(model.n / model.k);
}

/** R = ⌈f/k⌉: reactive slots per period, enough to rejuvenate f accused replicas k at a time. */
export function reactiveSlotsPerPeriod(model: FaultModel): number {
  return Math.ceil(model.f / model.k);
}

/** Problems with schedule parameters, each a full sentence; empty when they are valid. */
export function scheduleProblems(parameters: ScheduleParameters): string[] {
  const problems = faultModelProblems(parameters);
  const { n, f, k, recoveryBoundMs, periodMs, originMs } = parameters;
  if (k === 0) {
    problems.push('k = 0: a recovery schedule needs k ≥ 1, otherwise no replica may ever be rejuvenated');
  }
  if (!Number.isSafeInteger(recoveryBoundMs) || recoveryBoundMs < 1) {
    problems.push(`recoveryBoundMs (T_D) must be a positive integer number of ms, got ${recoveryBoundMs}`);
  }
  if (!Number.isSafeInteger(periodMs) || periodMs < 1) {
    problems.push(`periodMs (T_P) must be a positive integer number of ms, got ${periodMs}`);
  }
  if (!Number.isSafeInteger(originMs)) {
    problems.push(`originMs must be an integer number of ms, got ${originMs}`);
  }
  // The period check only makes sense once every number it uses is sound.
  if (problems.length > 0) return problems;
  const minimum = minimumPeriodMs(parameters, recoveryBoundMs);
  if (periodMs < minimum) {
    problems.push(
      `periodMs (T_P) = ${periodMs} ms is too short: with n = ${n}, f = ${f}, k = ${k} a period holds ` +
        `⌈n/k⌉ + ⌈f/k⌉ = ${minimum / recoveryBoundMs} slots of T_D = ${recoveryBoundMs} ms, ` +
        `so it must be at least ${minimum} ms`,
    );
  }
  return problems;
}

/**
 * T = T_P + T_D, the exposure bound. Guarantee (given that every recovery completes within its
 * slot of T_D): for every replica and every time t, a proactive rejuvenation of that replica
 * starts after t and completes by t + T, so nothing an attacker did to it at t survives past
 * t + T; equivalently, at every time t the replica's last completed proactive rejuvenation
 * started less than T before t. The bound is tight: the start of one proactive slot of a replica
 * and the end of its next one are exactly T apart.
 */
export function exposureBoundMs(parameters: ScheduleParameters): number {
  assertValidParameters(parameters);
  return parameters.periodMs + parameters.recoveryBoundMs;
}

/**
 * Key epochs under the schedule (docs/intrusion-tolerance.md, "Key epochs"): an epoch issued at
 * `issuedAtMs` is valid until the end of its replica's first proactive slot starting T_D or more
 * after the issue (at most I + T_P + 2·T_D), extended by `clockSkewAllowanceMs`: the rejuvenation
 * in that slot replaces it, and a guardian still busy starting its replica (a first start may take
 * seconds) skips a slot that comes sooner, so the epoch must not expire before the one that does.
 * An issue time comes from a certificate a guardian signed: one the schedule cannot place makes
 * the epoch expired (−∞), never an exception. The one rule behind epochLifetimeOfSchedule
 * (src/crypto/key-certificates.ts, for KeyRegistry) and the guardian core's CertificateTable.
 */
export function epochValidUntilMs(
  parameters: ScheduleParameters,
  replica: ReplicaId,
  issuedAtMs: number,
  clockSkewAllowanceMs: number,
): number {
  return (
    placedOrExpired(
      () => nextProactiveSlotOf(parameters, replica, issuedAtMs + parameters.recoveryBoundMs).endMs,
    ) + clockSkewAllowanceMs
  );
}

/**
 * Until when an epoch retired by a successor issued at `successorIssuedAtMs` stays accepted: the
 * end of the slot holding the successor's issue (at most I' + T_D), so that signatures made just
 * before the rotation still count while the recovery runs, and at any instant only the retired
 * epochs of the replicas rotated in the current slot (at most k) are accepted. Not extended by
 * the skew allowance: a verifier whose clock runs ahead only ends a grace early.
 */
export function retiredEpochAcceptedUntilMs(
  parameters: ScheduleParameters,
  successorIssuedAtMs: number,
): number {
  return placedOrExpired(() => slotAt(parameters, successorIssuedAtMs).endMs);
}

function placedOrExpired(place: () => number): number {
  try {
    return place();
  } catch {
    return Number.NEGATIVE_INFINITY;
  }
}

/**
 * The slot kinds of a period in order, without the idle remainder (S = P + R entries): the
 * layout rule of the module comment.
 */
export function periodLayout(parameters: ScheduleParameters): ('proactive' | 'reactive')[] {
  assertValidParameters(parameters);
  return [...layoutOf(parameters).kinds];
}

/** The period that contains `timeMs` (negative before the origin). */
export function periodOf(parameters: ScheduleParameters, timeMs: number): number {
  assertValidParameters(parameters);
  assertTime(timeMs);
  return periodContaining(parameters, timeMs);
}

/** When period `period` starts; it ends where period + 1 starts. */
export function periodStartMs(parameters: ScheduleParameters, period: number): number {
  assertValidParameters(parameters);
  assertPeriod(period);
  return startOfPeriod(parameters, period);
}

/** The proactive group (= proactive slot number, 0 … P − 1) of `replica`: ⌊replica / k⌋. */
export function proactiveGroupOf(parameters: ScheduleParameters, replica: ReplicaId): number {
  assertValidParameters(parameters);
  assertMember(parameters, replica);
  return Math.floor(replica / parameters.k);
}

/** The slot that contains `timeMs`: its start ≤ timeMs < its end. */
export function slotAt(parameters: ScheduleParameters, timeMs: number): Slot {
  assertValidParameters(parameters);
  assertTime(timeMs);
  return slotContaining(parameters, layoutOf(parameters), timeMs);
}

/**
 * The first slot of `kind` that starts at or after `timeMs`. Throws when f = 0 and `kind` is
 * 'reactive': such a schedule has no reactive slots.
 */
export function nextSlot(
  parameters: ScheduleParameters,
  timeMs: number,
  kind: 'proactive' | 'reactive',
): Slot {
  assertValidParameters(parameters);
  assertTime(timeMs);
  const layout = layoutOf(parameters);
  const indices = kind === 'proactive' ? layout.proactiveIndices : layout.reactiveIndices;
  if (indices.length === 0) {
    throw new InvariantViolation(`no ${kind} slots: with f = ${parameters.f} the schedule has none`);
  }
  const firstPeriod = periodContaining(parameters, timeMs);
  // Every slot of the period after the one holding timeMs starts after timeMs: two rounds suffice.
  for (let period = firstPeriod; period <= firstPeriod + 1; period++) {
    for (const index of indices) {
      if (slotStart(parameters, period, index) >= timeMs)
        return slotOfPeriod(parameters, layout, period, index);
    }
  }
  throw new InvariantViolation(`no ${kind} slot found after ${timeMs}: the layout is inconsistent`);
}

/** The proactive slot of `replica` that is the first to start at or after `timeMs`. */
export function nextProactiveSlotOf(
  parameters: ScheduleParameters,
  replica: ReplicaId,
  timeMs: number,
): Slot {
  assertValidParameters(parameters);
  assertMember(parameters, replica);
  assertTime(timeMs);
  return nextProactiveSlotOfUnchecked(parameters, layoutOf(parameters), replica, timeMs);
}

/**
 * The proactive slot of `replica` that is the last to end at or before `timeMs`: its latest
 * completed rejuvenation if every recovery keeps to T_D (what the dashboard measures against T).
 */
export function previousProactiveSlotOf(
  parameters: ScheduleParameters,
  replica: ReplicaId,
  timeMs: number,
): Slot {
  assertValidParameters(parameters);
  assertMember(parameters, replica);
  assertTime(timeMs);
  const layout = layoutOf(parameters);
  const index = layout.indexOfGroup[Math.floor(replica / parameters.k)]!;
  let period = periodContaining(parameters, timeMs);
  if (slotStart(parameters, period, index) + parameters.recoveryBoundMs > timeMs) period -= 1;
  return slotOfPeriod(parameters, layout, period, index);
}

/**
 * Every slot of `period` in time order: S = P + R slots of T_D, then one idle slot when
 * T_P > S·T_D. They tile [periodStartMs(period), periodStartMs(period + 1)) exactly.
 */
export function slotsOfPeriod(parameters: ScheduleParameters, period: number): Slot[] {
  assertValidParameters(parameters);
  assertPeriod(period);
  const layout = layoutOf(parameters);
  const slots: Slot[] = [];
  for (let index = 0; index < layout.kinds.length; index++) {
    slots.push(slotOfPeriod(parameters, layout, period, index));
  }
  if (parameters.periodMs > layout.kinds.length * parameters.recoveryBoundMs) {
    slots.push(slotOfPeriod(parameters, layout, period, layout.kinds.length));
  }
  return slots;
}

/**
 * The longest time between the starts of two consecutive reactive slots: an accused replica whose
 * accusation is `decisionLeadMs` old waits at most this long for a reactive slot to start. It is
 * max((⌈P/R⌉ + 1)·T_D if R ≥ 2, (⌊P/R⌋ + 1)·T_D + T_P − S·T_D), which is T_P when R = 1 and
 * never more than (⌈P/R⌉ + 1)·T_D + (T_P − S·T_D). Infinite when f = 0 (no reactive slots).
 */
export function maximumReactiveWaitMs(parameters: ScheduleParameters): number {
  assertValidParameters(parameters);
  const indices = layoutOf(parameters).reactiveIndices;
  if (indices.length === 0) return Number.POSITIVE_INFINITY;
  // Across the period boundary: from the last reactive slot of one period to the first of the next.
  let longestMs =
    parameters.periodMs - (indices[indices.length - 1]! - indices[0]!) * parameters.recoveryBoundMs;
  for (let position = 1; position < indices.length; position++) {
    longestMs = Math.max(
      longestMs,
      (indices[position]! - indices[position - 1]!) * parameters.recoveryBoundMs,
    );
  }
  return longestMs;
}

/**
 * Which accused replicas the reactive slot `slot` rejuvenates, decided identically by every
 * guardian from the same accusations, whatever their order and duplicates. The rule:
 *
 * 1. An accusation counts only if it was made at least `decisionLeadMs` before the slot starts
 *    (accusedAtMs ≤ slot.startMs − decisionLeadMs), so that every guardian has it in time.
 * 2. An accusation is discharged, and ignored, when a proactive rejuvenation of the accused
 *    started at or after it and completed by the time the slot starts: that rejuvenation already
 *    cleaned the replica. (A replica can never be rejuvenating proactively during a reactive slot:
 *    slots do not overlap.) Discharging through earlier reactive slots is the caller's part: drop
 *    an accusation once a reactive recovery of the accused that started after it has run.
 * 3. Accusations of replicas that are not members (id ≥ n) or with a non-finite time are ignored:
 *    they cannot be acted on, and throwing here would let bad input stop the guardians.
 * 4. The remaining accused replicas are ranked by their earliest remaining accusation, then by
 *    lowest id, and the first k are returned in that order.
 *
 * Later accusations rank behind earlier ones, so with at most f accused replicas outstanding (and
 * the caller dropping those already served) rule 4 serves each within R = ⌈f/k⌉ reactive slots.
 * Throws when `slot` is not a reactive slot of this schedule.
 */
export function reactiveAssignment(
  parameters: ScheduleParameters,
  slot: Slot,
  accusations: readonly Accusation[],
  decisionLeadMs: number,
): ReplicaId[] {
  assertValidParameters(parameters);
  assert(
    Number.isFinite(decisionLeadMs) && decisionLeadMs >= 0,
    `decisionLeadMs must be a finite number ≥ 0, got ${decisionLeadMs}`,
  );
  assertTime(slot.startMs);
  const layout = layoutOf(parameters);
  // Recomputed rather than trusted, so a hand-made or stale slot cannot smuggle in a wrong kind.
  const scheduled = slotContaining(parameters, layout, slot.startMs);
  assert(
    scheduled.kind === 'reactive' &&
      scheduled.startMs === slot.startMs &&
      scheduled.endMs === slot.endMs &&
      scheduled.period === slot.period &&
      scheduled.index === slot.index,
    `reactiveAssignment needs a reactive slot of this schedule, got ${slot.kind} slot ${slot.index} ` +
      `of period ${slot.period} at ${slot.startMs}`,
  );
  const deadlineMs = scheduled.startMs - decisionLeadMs;
  const earliestAccusation = new Map<ReplicaId, { atMs: number; owed: boolean }>();
  for (const { replica, accusedAtMs, owed } of accusations) {
    if (!isMember(parameters, replica) || !Number.isFinite(accusedAtMs)) continue;
    if (accusedAtMs > deadlineMs) continue;
    const cleaning = nextProactiveSlotOfUnchecked(parameters, layout, replica, accusedAtMs);
    if (cleaning.endMs <= scheduled.startMs) continue;
    const known = earliestAccusation.get(replica);
    if (known === undefined || accusedAtMs < known.atMs)
      earliestAccusation.set(replica, { atMs: accusedAtMs, owed: owed === true });
    // At one time a fault outranks an owed rejuvenation, whatever order they came in.
    else if (accusedAtMs === known.atMs && owed !== true) known.owed = false;
  }
  // Faults first (earliest first), then owed rejuvenations (earliest first), then the lowest id.
  return [...earliestAccusation]
    .sort(
      ([replicaA, a], [replicaB, b]) =>
        Number(a.owed) - Number(b.owed) || a.atMs - b.atMs || replicaA - replicaB,
    )
    .slice(0, parameters.k)
    .map(([replica]) => replica);
}

/**
 * The replicas that should be recovering at `timeMs`: the proactive group, the reactive
 * assignment (see `reactiveAssignment`) or nobody, depending on the slot. Never more than k.
 */
export function replicasRecoveringAt(
  parameters: ScheduleParameters,
  timeMs: number,
  accusations: readonly Accusation[],
  decisionLeadMs: number,
): readonly ReplicaId[] {
  const slot = slotAt(parameters, timeMs);
  if (slot.kind === 'reactive') return reactiveAssignment(parameters, slot, accusations, decisionLeadMs);
  return slot.replicas;
}

/** A time interval; `toMs` null means still open at `untilMs` (see mostAtOnce). */
export interface TimeInterval {
  readonly fromMs: number;
  readonly toMs: number | null;
}

/**
 * The most intervals open at one instant: how many replicas were recovering at once, for the
 * checkers of "at most k". An end at t comes before a start at t, so back-to-back slots do not
 * overlap; an interval still open counts as open until `untilMs`.
 */
export function mostAtOnce(intervals: readonly TimeInterval[], untilMs = Number.POSITIVE_INFINITY): number {
  const edges = intervals.flatMap((interval) => [
    { atMs: interval.fromMs, delta: 1 },
    { atMs: interval.toMs ?? untilMs, delta: -1 },
  ]);
  edges.sort((a, b) => a.atMs - b.atMs || a.delta - b.delta);
  let current = 0;
  let most = 0;
  for (const edge of edges) {
    current += edge.delta;
    most = Math.max(most, current);
  }
  return most;
}

// ---------------------------------------------------------------------------------------------
// Internals: they assume validated parameters.

interface PeriodLayoutTable {
  /** Kind of each slot position 0 … S − 1. */
  readonly kinds: readonly ('proactive' | 'reactive')[];
  /** Proactive group held at each position, −1 at reactive positions. */
  readonly groupAtIndex: readonly number[];
  /** Position of each proactive group 0 … P − 1. */
  readonly indexOfGroup: readonly number[];
  readonly proactiveIndices: readonly number[];
  readonly reactiveIndices: readonly number[];
}

function layoutOf(model: FaultModel): PeriodLayoutTable {
  const proactiveCount = proactiveSlotsPerPeriod(model);
  const reactiveCount = reactiveSlotsPerPeriod(model);
  const kinds: ('proactive' | 'reactive')[] = [];
  const groupAtIndex: number[] = [];
  const indexOfGroup: number[] = [];
  const proactiveIndices: number[] = [];
  const reactiveIndices: number[] = [];
  const addGroups = (endGroup: number): void => {
    for (let group = indexOfGroup.length; group < endGroup; group++) {
      indexOfGroup.push(kinds.length);
      proactiveIndices.push(kinds.length);
      groupAtIndex.push(group);
      kinds.push('proactive');
    }
  };
  for (let run = 0; run < reactiveCount; run++) {
    // Bresenham-style split: run lengths differ by at most one and the first run is a shortest.
    addGroups(Math.floor(((run + 1) * proactiveCount) / reactiveCount));
    reactiveIndices.push(kinds.length);
    groupAtIndex.push(-1);
    kinds.push('reactive');
  }
  addGroups(proactiveCount);
  return { kinds, groupAtIndex, indexOfGroup, proactiveIndices, reactiveIndices };
}

function startOfPeriod(parameters: ScheduleParameters, period: number): number {
  return parameters.originMs + period * parameters.periodMs;
}

function slotStart(parameters: ScheduleParameters, period: number, index: number): number {
  return startOfPeriod(parameters, period) + index * parameters.recoveryBoundMs;
}

function periodContaining(parameters: ScheduleParameters, timeMs: number): number {
  let period = Math.floor((timeMs - parameters.originMs) / parameters.periodMs);
  // The division rounds; for a non-integer time just below a boundary it can land one period
  // late (or early), and the slot arithmetic below needs start ≤ timeMs < end exactly.
  if (startOfPeriod(parameters, period) > timeMs) period -= 1;
  else if (startOfPeriod(parameters, period + 1) <= timeMs) period += 1;
  return period;
}

function slotContaining(parameters: ScheduleParameters, layout: PeriodLayoutTable, timeMs: number): Slot {
  const period = periodContaining(parameters, timeMs);
  let index = Math.floor((timeMs - startOfPeriod(parameters, period)) / parameters.recoveryBoundMs);
  if (slotStart(parameters, period, index) > timeMs) index -= 1; // same rounding guard as above
  return slotOfPeriod(parameters, layout, period, Math.min(index, layout.kinds.length));
}

function slotOfPeriod(
  parameters: ScheduleParameters,
  layout: PeriodLayoutTable,
  period: number,
  index: number,
): Slot {
  const startMs = slotStart(parameters, period, index);
  if (index >= layout.kinds.length) {
    return {
      kind: 'idle',
      period,
      index,
      startMs,
      endMs: startOfPeriod(parameters, period + 1),
      replicas: [],
    };
  }
  const kind = layout.kinds[index]!;
  const endMs = startMs + parameters.recoveryBoundMs;
  if (kind === 'reactive') return { kind, period, index, startMs, endMs, replicas: [] };
  const firstReplica = layout.groupAtIndex[index]! * parameters.k;
  const replicas: ReplicaId[] = [];
  for (let replica = firstReplica; replica < Math.min(parameters.n, firstReplica + parameters.k); replica++) {
    replicas.push(replicaId(replica));
  }
  return { kind, period, index, startMs, endMs, replicas };
}

function nextProactiveSlotOfUnchecked(
  parameters: ScheduleParameters,
  layout: PeriodLayoutTable,
  replica: ReplicaId,
  timeMs: number,
): Slot {
  const index = layout.indexOfGroup[Math.floor(replica / parameters.k)]!;
  let period = periodContaining(parameters, timeMs);
  if (slotStart(parameters, period, index) < timeMs) period += 1;
  return slotOfPeriod(parameters, layout, period, index);
}

function isMember(parameters: ScheduleParameters, replica: number): boolean {
  return Number.isSafeInteger(replica) && replica >= 0 && replica < parameters.n;
}

function assertValidParameters(parameters: ScheduleParameters): void {
  const problems = scheduleProblems(parameters);
  if (problems.length > 0) throw new InvariantViolation(`invalid recovery schedule: ${problems.join('; ')}`);
}

function assertMember(parameters: ScheduleParameters, replica: ReplicaId): void {
  assert(isMember(parameters, replica), `replica ${replica} is not a member (n = ${parameters.n})`);
}

function assertTime(timeMs: number): void {
  // Beyond 2^53 ms the slot arithmetic is no longer exact; real clocks are far from it.
  assert(
    Number.isFinite(timeMs) && Math.abs(timeMs) <= Number.MAX_SAFE_INTEGER,
    `time must be a finite number of ms within ±2^53, got ${timeMs}`,
  );
}

function assertPeriod(period: number): void {
  assert(Number.isSafeInteger(period), `period must be an integer, got ${period}`);
}
