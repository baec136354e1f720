import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvariantViolation, type ReplicaId, replicaId } from '../../src/messages/ids.js';
import { minimumReplicas } from '../../src/core/quorum.js';
import {
  mostAtOnce,
  type Accusation,
  exposureBoundMs,
  maximumReactiveWaitMs,
  minimumPeriodMs,
  nextProactiveSlotOf,
  nextSlot,
  periodLayout,
  periodOf,
  periodStartMs,
  previousProactiveSlotOf,
  proactiveGroupOf,
  proactiveSlotsPerPeriod,
  reactiveAssignment,
  reactiveSlotsPerPeriod,
  replicasRecoveringAt,
  type ScheduleParameters,
  scheduleProblems,
  type Slot,
  slotAt,
  slotsOfPeriod,
} from '../../src/core/schedule.js';

// ---------------------------------------------------------------------------------------------
// Generators

/**
 * Valid parameters: f in 0..3, k in 1..3, n from 3f + 2k + 1 to five above it, T_D in
 * 100..10 000 ms, T_P from the minimum to three times it (often exactly at either end), and an
 * origin anywhere within ±2·10^12 ms (about ±63 years around the Unix epoch).
 */
function parametersArbitrary(minimumF = 0): fc.Arbitrary<ScheduleParameters> {
  return fc
    .record({
      f: fc.integer({ min: minimumF, max: 3 }),
      k: fc.integer({ min: 1, max: 3 }),
      extraReplicas: fc.integer({ min: 0, max: 5 }),
      recoveryBoundMs: fc.integer({ min: 100, max: 10_000 }),
      periodStretch: fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
      originMs: fc.oneof(fc.constant(0), fc.integer({ min: -2e12, max: 2e12 })),
    })
    .map(({ f, k, extraReplicas, recoveryBoundMs, periodStretch, originMs }) => {
      const n = minimumReplicas(f, k) + extraReplicas;
      const minimum = minimumPeriodMs({ n, f, k }, recoveryBoundMs);
      const periodMs = minimum + Math.round(periodStretch * 2 * minimum);
      return { n, f, k, recoveryBoundMs, periodMs, originMs };
    });
}

function slotsPerPeriod(parameters: ScheduleParameters): number {
  return proactiveSlotsPerPeriod(parameters) + reactiveSlotsPerPeriod(parameters);
}

/**
 * A time: anywhere in periods −3..3 (integer ms), exactly on a slot boundary or 1 ms either side
 * (near the origin or a million periods away), or a fractional time.
 */
function timeArbitrary(parameters: ScheduleParameters): fc.Arbitrary<number> {
  const { originMs, periodMs, recoveryBoundMs } = parameters;
  return fc.oneof(
    fc.integer({ min: -3 * periodMs, max: 4 * periodMs - 1 }).map((offsetMs) => originMs + offsetMs),
    fc
      .record({
        period: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -1e6, max: 1e6 })),
        index: fc.integer({ min: 0, max: slotsPerPeriod(parameters) }),
        nudgeMs: fc.constantFrom(-1, 0, 1),
      })
      .map(({ period, index, nudgeMs }) => originMs + period * periodMs + index * recoveryBoundMs + nudgeMs),
    fc
      .double({ min: -3 * periodMs, max: 4 * periodMs, noNaN: true, noDefaultInfinity: true })
      .map((offsetMs) => originMs + offsetMs),
  );
}

function withTime(minimumF = 0): fc.Arbitrary<{ parameters: ScheduleParameters; timeMs: number }> {
  return parametersArbitrary(minimumF).chain((parameters) =>
    timeArbitrary(parameters).map((timeMs) => ({ parameters, timeMs })),
  );
}

interface ShuffledAccusation extends Accusation {
  /** Only used to reorder the input. */
  readonly shuffleKey: number;
}

/**
 * Accusations around `aroundMs`: replicas 0..n + 1 (so a few are not members), times from three
 * periods before to one period after, sometimes exactly at a slot boundary.
 */
function accusationsArbitrary(
  parameters: ScheduleParameters,
  aroundMs: number,
): fc.Arbitrary<ShuffledAccusation[]> {
  const { n, periodMs, recoveryBoundMs } = parameters;
  return fc.array(
    fc.record({
      replica: fc.integer({ min: 0, max: n + 1 }).map(replicaId),
      accusedAtMs: fc.oneof(
        fc.integer({ min: -3 * periodMs, max: periodMs }).map((offsetMs) => aroundMs + offsetMs),
        fc
          .integer({ min: -3 * slotsPerPeriod(parameters), max: 3 })
          .map((slots) => aroundMs + slots * recoveryBoundMs),
      ),
      owed: fc.boolean(),
      shuffleKey: fc.double({ noNaN: true }),
    }),
    { maxLength: 14 },
  );
}

/** A reactive slot (f ≥ 1), accusations around it and a decision lead of up to two slots. */
const reactiveCase = parametersArbitrary(1).chain((parameters) =>
  fc
    .record({
      period: fc.integer({ min: -3, max: 3 }),
      reactiveOrdinal: fc.nat({ max: reactiveSlotsPerPeriod(parameters) - 1 }),
      decisionLeadMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 * parameters.recoveryBoundMs })),
    })
    .chain(({ period, reactiveOrdinal, decisionLeadMs }) => {
      const slot = slotsOfPeriod(parameters, period).filter((candidate) => candidate.kind === 'reactive')[
        reactiveOrdinal
      ]!;
      return accusationsArbitrary(parameters, slot.startMs).map((accusations) => ({
        parameters,
        slot,
        accusations,
        decisionLeadMs,
      }));
    }),
);

// ---------------------------------------------------------------------------------------------
// Brute-force helpers: they read the schedule only through slotsOfPeriod, so the other functions
// are checked against an independent enumeration.

function slotsOfPeriods(parameters: ScheduleParameters, firstPeriod: number, lastPeriod: number): Slot[] {
  const slots: Slot[] = [];
  for (let period = firstPeriod; period <= lastPeriod; period++)
    slots.push(...slotsOfPeriod(parameters, period));
  return slots;
}

function proactiveSlotsOf(slots: readonly Slot[], replica: ReplicaId): Slot[] {
  return slots.filter((slot) => slot.kind === 'proactive' && slot.replicas.includes(replica));
}

/** The assignment rule written out the slow way (see reactiveAssignment's documentation). */
function referenceAssignment(
  parameters: ScheduleParameters,
  slot: Slot,
  accusations: readonly Accusation[],
  decisionLeadMs: number,
): ReplicaId[] {
  // Accusations reach back at most three periods (plus a few slots): five periods cover them.
  const earlier = slotsOfPeriods(parameters, slot.period - 5, slot.period);
  const eligible = accusations.filter(
    ({ replica, accusedAtMs }) =>
      replica < parameters.n &&
      accusedAtMs <= slot.startMs - decisionLeadMs &&
      !proactiveSlotsOf(earlier, replica).some(
        (cleaning) => cleaning.startMs >= accusedAtMs && cleaning.endMs <= slot.startMs,
      ),
  );
  const replicas = [...new Set(eligible.map(({ replica }) => replica))];
  const earliest = (replica: ReplicaId): number =>
    Math.min(
      ...eligible
        .filter((accusation) => accusation.replica === replica)
        .map(({ accusedAtMs }) => accusedAtMs),
    );
  // Owed only when every accusation at its earliest time is an owed rejuvenation; faults go first.
  const owed = (replica: ReplicaId): number =>
    eligible.every(
      (accusation) =>
        accusation.replica !== replica ||
        accusation.accusedAtMs !== earliest(replica) ||
        accusation.owed === true,
    )
      ? 1
      : 0;
  return replicas
    .sort((a, b) => owed(a) - owed(b) || earliest(a) - earliest(b) || a - b)
    .slice(0, parameters.k);
}

const workedExample: ScheduleParameters = {
  n: 6,
  f: 1,
  k: 1,
  recoveryBoundMs: 8000,
  periodMs: 56_000,
  originMs: 0,
};

// ---------------------------------------------------------------------------------------------

describe('recovery schedule', () => {
  describe('(1) at most k replicas recover at once', () => {
    it('the replicas recovering at any time are at most k distinct members', () => {
      fc.assert(
        fc.property(
          withTime().chain(({ parameters, timeMs }) =>
            fc.record({
              parameters: fc.constant(parameters),
              timeMs: fc.constant(timeMs),
              accusations: accusationsArbitrary(parameters, timeMs),
              decisionLeadMs: fc.integer({ min: 0, max: 2 * parameters.recoveryBoundMs }),
            }),
          ),
          ({ parameters, timeMs, accusations, decisionLeadMs }) => {
            const recovering = replicasRecoveringAt(parameters, timeMs, accusations, decisionLeadMs);
            assert.ok(
              recovering.length <= parameters.k,
              `${recovering.length} recovering, k = ${parameters.k}`,
            );
            assert.equal(new Set(recovering).size, recovering.length, 'a replica is listed twice');
            for (const replica of recovering)
              assert.ok(replica < parameters.n, `replica ${replica} is not a member`);
          },
        ),
      );
    });

    it('no slot holds more than k replicas and slots never overlap, so groups never add up', () => {
      fc.assert(
        fc.property(parametersArbitrary(), fc.integer({ min: -3, max: 3 }), (parameters, period) => {
          const slots = slotsOfPeriods(parameters, period, period + 1);
          for (const slot of slots) assert.ok(slot.replicas.length <= parameters.k);
          for (let position = 1; position < slots.length; position++) {
            assert.ok(slots[position - 1]!.endMs <= slots[position]!.startMs, 'two slots overlap');
          }
        }),
      );
    });

    it('reactiveAssignment returns at most k members and none of a proactive group running at the same time', () => {
      fc.assert(
        fc.property(reactiveCase, ({ parameters, slot, accusations, decisionLeadMs }) => {
          const assigned = reactiveAssignment(parameters, slot, accusations, decisionLeadMs);
          assert.ok(assigned.length <= parameters.k);
          const concurrentProactive = slotsOfPeriods(parameters, slot.period - 1, slot.period + 1).filter(
            (other) => other.kind === 'proactive' && other.startMs < slot.endMs && slot.startMs < other.endMs,
          );
          for (const other of concurrentProactive) {
            for (const replica of assigned) assert.ok(!other.replicas.includes(replica));
          }
          assert.ok(
            assigned.length + concurrentProactive.flatMap((other) => other.replicas).length <= parameters.k,
          );
        }),
      );
    });
  });

  describe('(2) proactive coverage', () => {
    it('every replica is in exactly one proactive slot per period, groups in id order of k', () => {
      fc.assert(
        fc.property(
          parametersArbitrary(),
          fc.oneof(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -1e6, max: 1e6 })),
          (parameters, period) => {
            const proactive = slotsOfPeriod(parameters, period).filter((slot) => slot.kind === 'proactive');
            assert.equal(proactive.length, proactiveSlotsPerPeriod(parameters));
            const covered = proactive.flatMap((slot) => [...slot.replicas]);
            assert.deepEqual(
              covered,
              Array.from({ length: parameters.n }, (_, replica) => replica),
            );
            proactive.forEach((slot, group) => {
              for (const replica of slot.replicas) assert.equal(proactiveGroupOf(parameters, replica), group);
              assert.equal(slot.replicas[0], group * parameters.k);
            });
          },
        ),
      );
    });
  });

  describe('(3) slots tile the timeline', () => {
    it('slotsOfPeriod tiles the period with S slots of T_D and at most one idle slot at the end', () => {
      fc.assert(
        fc.property(
          parametersArbitrary(),
          fc.oneof(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -1e6, max: 1e6 })),
          (parameters, period) => {
            const slots = slotsOfPeriod(parameters, period);
            const timedSlots = slotsPerPeriod(parameters);
            const idleMs = parameters.periodMs - timedSlots * parameters.recoveryBoundMs;
            assert.equal(slots.length, timedSlots + (idleMs > 0 ? 1 : 0));
            assert.equal(slots[0]!.startMs, periodStartMs(parameters, period));
            assert.equal(slots[slots.length - 1]!.endMs, periodStartMs(parameters, period + 1));
            slots.forEach((slot, index) => {
              assert.equal(slot.period, period);
              assert.equal(slot.index, index);
              if (index > 0) assert.equal(slot.startMs, slots[index - 1]!.endMs, 'gap or overlap');
              if (index < timedSlots) {
                assert.notEqual(slot.kind, 'idle');
                assert.equal(slot.endMs - slot.startMs, parameters.recoveryBoundMs);
              } else {
                assert.equal(slot.kind, 'idle');
                assert.equal(slot.endMs - slot.startMs, idleMs);
              }
              if (slot.kind !== 'proactive') assert.deepEqual(slot.replicas, []);
            });
            assert.equal(
              slots.filter((slot) => slot.kind === 'reactive').length,
              reactiveSlotsPerPeriod(parameters),
            );
          },
        ),
      );
    });

    it('slotAt returns the slot of slotsOfPeriod that contains the time', () => {
      fc.assert(
        fc.property(withTime(), ({ parameters, timeMs }) => {
          const slot = slotAt(parameters, timeMs);
          assert.ok(
            slot.startMs <= timeMs && timeMs < slot.endMs,
            `${timeMs} not in [${slot.startMs}, ${slot.endMs})`,
          );
          assert.equal(periodOf(parameters, timeMs), slot.period);
          assert.deepEqual(slotsOfPeriod(parameters, slot.period)[slot.index], slot);
        }),
      );
    });

    it('before the origin the schedule runs backwards with negative period numbers', () => {
      fc.assert(
        fc.property(parametersArbitrary(), (parameters) => {
          const justBefore = slotAt(parameters, parameters.originMs - 1);
          assert.equal(justBefore.period, -1);
          assert.equal(justBefore.endMs, parameters.originMs);
          const atOrigin = slotAt(parameters, parameters.originMs);
          assert.equal(atOrigin.period, 0);
          assert.equal(atOrigin.index, 0);
          assert.equal(atOrigin.startMs, parameters.originMs);
        }),
      );
    });
  });

  describe('(4) exposure bound T = T_P + T_D', () => {
    it('whatever happens to a replica at t is wiped by a proactive rejuvenation that starts after t and ends by t + T', () => {
      fc.assert(
        fc.property(
          withTime().chain(({ parameters, timeMs }) =>
            fc
              .nat({ max: parameters.n - 1 })
              .map((replica) => ({ parameters, timeMs, replica: replicaId(replica) })),
          ),
          ({ parameters, timeMs, replica }) => {
            const bound = exposureBoundMs(parameters);
            const period = periodOf(parameters, timeMs);
            const ownSlots = proactiveSlotsOf(slotsOfPeriods(parameters, period - 2, period + 2), replica);
            const cleaning = ownSlots.find((slot) => slot.startMs > timeMs)!;
            // Slot edges are integers, so comparing them (not t ± T, which rounds) with t stays exact.
            assert.ok(cleaning.endMs - bound <= timeMs, `cleaned only at ${cleaning.endMs}, T = ${bound}`);
            // The same guarantee seen backwards: the last completed rejuvenation started less than T ago.
            const completed = ownSlots.filter((slot) => slot.endMs <= timeMs).at(-1)!;
            assert.ok(completed.startMs + bound > timeMs);
            assert.deepEqual(previousProactiveSlotOf(parameters, replica, timeMs), completed);
          },
        ),
      );
    });

    it('is tight: one proactive slot of a replica starts exactly T before the end of its next one', () => {
      fc.assert(
        fc.property(
          parametersArbitrary().chain((parameters) =>
            fc.nat({ max: parameters.n - 1 }).map((replica) => ({ parameters, replica: replicaId(replica) })),
          ),
          fc.integer({ min: -3, max: 3 }),
          ({ parameters, replica }, period) => {
            const [first, second] = proactiveSlotsOf(slotsOfPeriods(parameters, period, period + 1), replica);
            assert.equal(second!.startMs - first!.startMs, parameters.periodMs);
            assert.equal(second!.endMs - first!.startMs, exposureBoundMs(parameters));
          },
        ),
      );
    });
  });

  describe('(5) next slots', () => {
    it('nextSlot returns the first slot of the kind that starts at or after t', () => {
      fc.assert(
        fc.property(withTime(), fc.constantFrom('proactive', 'reactive'), ({ parameters, timeMs }, kind) => {
          const period = periodOf(parameters, timeMs);
          const expected = slotsOfPeriods(parameters, period, period + 1).find(
            (slot) => slot.kind === kind && slot.startMs >= timeMs,
          );
          if (expected === undefined) {
            assert.equal(parameters.f, 0);
            assert.throws(() => nextSlot(parameters, timeMs, kind), InvariantViolation);
          } else {
            assert.deepEqual(nextSlot(parameters, timeMs, kind), expected);
          }
        }),
      );
    });

    it('nextProactiveSlotOf returns the first slot of the replica that starts at or after t', () => {
      fc.assert(
        fc.property(
          withTime().chain(({ parameters, timeMs }) =>
            fc
              .nat({ max: parameters.n - 1 })
              .map((replica) => ({ parameters, timeMs, replica: replicaId(replica) })),
          ),
          ({ parameters, timeMs, replica }) => {
            const period = periodOf(parameters, timeMs);
            const expected = proactiveSlotsOf(slotsOfPeriods(parameters, period, period + 1), replica).find(
              (slot) => slot.startMs >= timeMs,
            );
            assert.deepEqual(nextProactiveSlotOf(parameters, replica, timeMs), expected);
          },
        ),
      );
    });

    it('rejects replicas that are not members', () => {
      assert.throws(() => nextProactiveSlotOf(workedExample, replicaId(6), 0), InvariantViolation);
    });
  });

  describe('(6) reactive slots are spread among the proactive ones', () => {
    it('runs of ⌊P/R⌋ or ⌈P/R⌉ proactive slots, the first a shortest, each followed by a reactive slot', () => {
      fc.assert(
        fc.property(parametersArbitrary(1), (parameters) => {
          const proactive = proactiveSlotsPerPeriod(parameters);
          const reactive = reactiveSlotsPerPeriod(parameters);
          const layout = periodLayout(parameters);
          const runs: number[] = [];
          let run = 0;
          for (const kind of layout) {
            if (kind === 'proactive') run += 1;
            else {
              runs.push(run);
              run = 0;
            }
          }
          assert.equal(run, 0, 'the period must end with a reactive slot');
          assert.equal(runs.length, reactive);
          assert.equal(runs[0], Math.floor(proactive / reactive));
          for (const run of runs) {
            assert.ok(run === Math.floor(proactive / reactive) || run === Math.ceil(proactive / reactive));
          }
        }),
      );
    });

    it('consecutive reactive slots start at most (⌈P/R⌉ + 1)·T_D apart, plus the idle time across a period boundary', () => {
      fc.assert(
        fc.property(parametersArbitrary(1), fc.integer({ min: -3, max: 3 }), (parameters, period) => {
          const proactive = proactiveSlotsPerPeriod(parameters);
          const reactive = reactiveSlotsPerPeriod(parameters);
          const idleMs = parameters.periodMs - slotsPerPeriod(parameters) * parameters.recoveryBoundMs;
          const reactiveSlots = slotsOfPeriods(parameters, period, period + 2).filter(
            (slot) => slot.kind === 'reactive',
          );
          let longestGapMs = 0;
          for (let position = 1; position < reactiveSlots.length; position++) {
            const previous = reactiveSlots[position - 1]!;
            const current = reactiveSlots[position]!;
            const gapMs = current.startMs - previous.startMs;
            longestGapMs = Math.max(longestGapMs, gapMs);
            if (previous.period === current.period) {
              assert.ok(gapMs <= (Math.ceil(proactive / reactive) + 1) * parameters.recoveryBoundMs);
            } else {
              assert.equal(
                gapMs,
                (Math.floor(proactive / reactive) + 1) * parameters.recoveryBoundMs + idleMs,
              );
            }
          }
          assert.equal(maximumReactiveWaitMs(parameters), longestGapMs);
          // The closed form documented on maximumReactiveWaitMs.
          const withinPeriodMs =
            reactive >= 2 ? (Math.ceil(proactive / reactive) + 1) * parameters.recoveryBoundMs : 0;
          const acrossBoundaryMs =
            (Math.floor(proactive / reactive) + 1) * parameters.recoveryBoundMs + idleMs;
          assert.equal(longestGapMs, Math.max(withinPeriodMs, acrossBoundaryMs));
          if (reactive === 1) assert.equal(longestGapMs, parameters.periodMs);
        }),
      );
    });

    it('from any time, a reactive slot starts within maximumReactiveWaitMs', () => {
      fc.assert(
        fc.property(withTime(1), ({ parameters, timeMs }) => {
          const waitMs = nextSlot(parameters, timeMs, 'reactive').startMs - timeMs;
          assert.ok(waitMs >= 0 && waitMs <= maximumReactiveWaitMs(parameters));
        }),
      );
    });

    it('with f = 0 there are no reactive slots and the wait is unbounded', () => {
      const plain = { n: 3, f: 0, k: 1, recoveryBoundMs: 1000, periodMs: 3000, originMs: 0 };
      assert.deepEqual(periodLayout(plain), ['proactive', 'proactive', 'proactive']);
      assert.equal(maximumReactiveWaitMs(plain), Number.POSITIVE_INFINITY);
      assert.throws(() => nextSlot(plain, 0, 'reactive'), /no reactive slots/);
    });
  });

  describe('(7) reactive assignment', () => {
    it('follows the documented rule (reference implementation)', () => {
      fc.assert(
        fc.property(reactiveCase, ({ parameters, slot, accusations, decisionLeadMs }) => {
          assert.deepEqual(
            reactiveAssignment(parameters, slot, accusations, decisionLeadMs),
            referenceAssignment(parameters, slot, accusations, decisionLeadMs),
          );
        }),
      );
    });

    it('is independent of the order and duplication of its input', () => {
      fc.assert(
        fc.property(reactiveCase, ({ parameters, slot, accusations, decisionLeadMs }) => {
          const expected = reactiveAssignment(parameters, slot, accusations, decisionLeadMs);
          const shuffled = [...accusations].sort((a, b) => a.shuffleKey - b.shuffleKey);
          assert.deepEqual(reactiveAssignment(parameters, slot, shuffled, decisionLeadMs), expected);
          const duplicated = [...shuffled, ...accusations.toReversed()];
          assert.deepEqual(reactiveAssignment(parameters, slot, duplicated, decisionLeadMs), expected);
        }),
      );
    });

    it('ignores accusations newer than slot start − decisionLeadMs', () => {
      fc.assert(
        fc.property(
          reactiveCase.chain((testCase) =>
            fc
              .array(
                fc.record({
                  replica: fc.nat({ max: testCase.parameters.n - 1 }).map(replicaId),
                  lateByMs: fc.integer({ min: 1, max: 3 * testCase.parameters.periodMs }),
                }),
                { minLength: 1, maxLength: 6 },
              )
              .map((late) => ({ ...testCase, late })),
          ),
          ({ parameters, slot, accusations, decisionLeadMs, late }) => {
            const deadlineMs = slot.startMs - decisionLeadMs;
            const onTime = accusations.filter(({ accusedAtMs }) => accusedAtMs <= deadlineMs);
            const tooLate = late.map(({ replica, lateByMs }) => ({
              replica,
              accusedAtMs: deadlineMs + lateByMs,
            }));
            const expected = reactiveAssignment(parameters, slot, onTime, decisionLeadMs);
            assert.deepEqual(
              reactiveAssignment(parameters, slot, [...onTime, ...tooLate], decisionLeadMs),
              expected,
            );
            assert.deepEqual(reactiveAssignment(parameters, slot, accusations, decisionLeadMs), expected);
          },
        ),
      );
    });

    it('takes the earliest accusations first, then the lowest ids, up to k', () => {
      const parameters = { n: 11, f: 2, k: 2, recoveryBoundMs: 1000, periodMs: 8000, originMs: 0 };
      // P = 6, R = 1: groups 0..5 in [0, 6000), the reactive slot at [6000, 7000), idle to 8000.
      const slot = nextSlot(parameters, 0, 'reactive');
      assert.equal(slot.startMs, 6000);
      const accused = (replica: number, accusedAtMs: number): Accusation => ({
        replica: replicaId(replica),
        accusedAtMs,
      });
      // Replica 9 (group 4, [4000, 5000)) accused at 3000 was cleaned proactively since: discharged.
      // Replica 10 (group 5, [5000, 6000)) accused at 5500, during its own slot: still counts.
      const accusations = [
        accused(7, 5000),
        accused(9, 3000),
        accused(3, 5000),
        accused(10, 5500),
        accused(8, 5900),
      ];
      assert.deepEqual(reactiveAssignment(parameters, slot, accusations, 0), [3, 7]);
      assert.deepEqual(reactiveAssignment(parameters, slot, accusations, 200), [3, 7]);
      assert.deepEqual(reactiveAssignment(parameters, slot, accusations, 600), [3, 7]);
      assert.deepEqual(reactiveAssignment(parameters, slot, accusations, 1000), [3, 7]);
      assert.deepEqual(reactiveAssignment(parameters, slot, accusations, 1001), []);
      assert.deepEqual(
        reactiveAssignment(parameters, slot, [accused(10, 5500), accused(8, 5900)], 0),
        [10, 8],
      );
      assert.deepEqual(
        reactiveAssignment(parameters, slot, [accused(10, 5500), accused(8, 5900)], 300),
        [10],
      );
      // Replica 11 is not a member; a NaN time cannot be ordered: both are ignored.
      assert.deepEqual(reactiveAssignment(parameters, slot, [accused(11, 0), accused(2, Number.NaN)], 0), []);
    });

    it('refuses a slot that is not a reactive slot of the schedule', () => {
      const proactive = slotAt(workedExample, 0);
      assert.throws(() => reactiveAssignment(workedExample, proactive, [], 0), InvariantViolation);
      const reactive = nextSlot(workedExample, 0, 'reactive');
      const forged: Slot = { ...reactive, startMs: reactive.startMs + 1 };
      assert.throws(() => reactiveAssignment(workedExample, forged, [], 0), InvariantViolation);
      assert.throws(() => reactiveAssignment(workedExample, reactive, [], -1), InvariantViolation);
    });
  });

  describe('(8) parameters and the worked example', () => {
    it('n = 6, f = 1, k = 1, T_D = 8 s: minimum T_P = 56 s, T = 64 s, 7 slots', () => {
      assert.equal(minimumPeriodMs(workedExample, 8000), 56_000);
      assert.deepEqual(scheduleProblems(workedExample), []);
      assert.equal(exposureBoundMs(workedExample), 64_000);
      assert.equal(maximumReactiveWaitMs(workedExample), 56_000);
      const slots = slotsOfPeriod(workedExample, 0);
      assert.deepEqual(
        slots.map(({ kind, startMs, endMs, replicas }) => [kind, startMs, endMs, [...replicas]]),
        [
          ['proactive', 0, 8000, [0]],
          ['proactive', 8000, 16_000, [1]],
          ['proactive', 16_000, 24_000, [2]],
          ['proactive', 24_000, 32_000, [3]],
          ['proactive', 32_000, 40_000, [4]],
          ['proactive', 40_000, 48_000, [5]],
          ['reactive', 48_000, 56_000, []],
        ],
      );
      assert.deepEqual(slotAt(workedExample, 50_000), {
        kind: 'reactive',
        period: 0,
        index: 6,
        startMs: 48_000,
        endMs: 56_000,
        replicas: [],
      });
      assert.equal(nextProactiveSlotOf(workedExample, replicaId(2), 20_000).startMs, 72_000);
      const longer = { ...workedExample, periodMs: 60_000 };
      assert.deepEqual(slotAt(longer, 57_000), {
        kind: 'idle',
        period: 0,
        index: 7,
        startMs: 56_000,
        endMs: 60_000,
        replicas: [],
      });
      assert.match(scheduleProblems({ ...workedExample, periodMs: 55_999 }).join('\n'), /at least 56000 ms/);
    });

    it('n = 11, f = 2, k = 1 puts one reactive slot after group 4 and one at the end', () => {
      const parameters = { n: 11, f: 2, k: 1, recoveryBoundMs: 1000, periodMs: 13_000, originMs: 0 };
      assert.deepEqual(
        slotsOfPeriod(parameters, 0).map((slot) =>
          slot.kind === 'reactive' ? 'R' : String(slot.replicas[0]),
        ),
        ['0', '1', '2', '3', '4', 'R', '5', '6', '7', '8', '9', '10', 'R'],
      );
      assert.equal(maximumReactiveWaitMs(parameters), 7000);
    });

    it('explains what is wrong with bad parameters', () => {
      const problemsOf = (change: Partial<ScheduleParameters>): string =>
        scheduleProblems({ ...workedExample, ...change }).join('\n');
      assert.match(problemsOf({ k: 0 }), /k ≥ 1/);
      assert.match(problemsOf({ k: -1 }), /k must be a non-negative integer/);
      assert.match(problemsOf({ n: 5 }), /n = 5 is too small.*3f \+ 2k \+ 1 = 6/);
      assert.match(problemsOf({ f: 2, n: 8 }), /n = 8 is too small/);
      assert.match(problemsOf({ n: 6.5 }), /n must be a non-negative integer, got 6.5/);
      assert.match(problemsOf({ recoveryBoundMs: 0 }), /recoveryBoundMs \(T_D\) must be a positive integer/);
      assert.match(problemsOf({ recoveryBoundMs: 8000.5 }), /recoveryBoundMs/);
      assert.match(problemsOf({ periodMs: Number.NaN }), /periodMs \(T_P\) must be a positive integer.*NaN/);
      assert.match(problemsOf({ originMs: 0.5 }), /originMs must be an integer/);
      assert.match(
        problemsOf({ periodMs: 50_000 }),
        /periodMs \(T_P\) = 50000 ms is too short.*7 slots.*56000 ms/,
      );
      assert.deepEqual(scheduleProblems({ ...workedExample, periodMs: 56_001, originMs: -5 }), []);
    });

    it('every function refuses invalid parameters', () => {
      const invalid = { ...workedExample, periodMs: 1000 };
      assert.throws(() => slotAt(invalid, 0), /invalid recovery schedule.*too short/);
      assert.throws(() => slotsOfPeriod(invalid, 0), InvariantViolation);
      assert.throws(() => exposureBoundMs(invalid), InvariantViolation);
      assert.throws(() => nextSlot(invalid, 0, 'proactive'), InvariantViolation);
      assert.throws(() => slotAt(workedExample, Number.NaN), InvariantViolation);
      assert.throws(() => slotsOfPeriod(workedExample, 0.5), InvariantViolation);
    });

    it('minimumPeriodMs is infinite without recovery (k = 0)', () => {
      assert.equal(minimumPeriodMs({ n: 4, f: 1, k: 0 }, 1000), Number.POSITIVE_INFINITY);
    });
  });
});

describe('mostAtOnce', () => {
  it('counts back-to-back intervals once and an open interval until the given end', () => {
    assert.equal(
      mostAtOnce([
        { fromMs: 0, toMs: 10 },
        { fromMs: 10, toMs: 20 },
      ]),
      1,
    );
    assert.equal(
      mostAtOnce(
        [
          { fromMs: 0, toMs: null },
          { fromMs: 15, toMs: 20 },
        ],
        12,
      ),
      1,
    );
    assert.equal(
      mostAtOnce([
        { fromMs: 0, toMs: null },
        { fromMs: 15, toMs: 20 },
      ]),
      2,
    );
    assert.equal(mostAtOnce([]), 0);
  });

  it('equals the most intervals containing any one instant (half-open [from, to))', () => {
    const interval = fc
      .tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 20 }))
      .map(([fromMs, length]) => ({ fromMs, toMs: fromMs + length }));
    fc.assert(
      fc.property(fc.array(interval, { maxLength: 12 }), (intervals) => {
        let expected = 0;
        for (let at = 0; at <= 70; at++)
          expected = Math.max(
            expected,
            intervals.filter((entry) => entry.fromMs <= at && at < entry.toMs).length,
          );
        assert.equal(mostAtOnce(intervals), expected);
      }),
    );
  });
});

describe('reactive assignment: faults before owed rejuvenations', () => {
  it('serves a proven replica before an owed one accused a moment earlier (simulator --recovery seed 568)', () => {
    const parameters = workedExample;
    const slot = slotsOfPeriod(parameters, 1).find((candidate) => candidate.kind === 'reactive')!;
    const atMs = slot.startMs - 3 * parameters.recoveryBoundMs;
    const accusations: Accusation[] = [
      { replica: replicaId(2), accusedAtMs: atMs, owed: true },
      { replica: replicaId(1), accusedAtMs: atMs + 1 },
    ];
    assert.deepEqual(reactiveAssignment(parameters, slot, accusations, 0), [1]);
    assert.deepEqual(reactiveAssignment(parameters, slot, [accusations[0]!], 0), [2]);
  });
});
