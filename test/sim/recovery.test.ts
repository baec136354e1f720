/**
 * The simulator's --recovery mode (src/sim/guardians.ts, src/sim/checkers/recovery.ts): one
 * GuardianCore per replica rejuvenates the simulated replicas on the schedule, and the recovery
 * checkers judge it. A few seeds of n = 6, f = 1, k = 1 with every Byzantine behaviour pass; the
 * broken guardian (a reactive slot that takes k + 1 replicas) is caught on the same seeds; a seed
 * replays exactly.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exposureBoundMs } from '../../src/core/schedule.js';
import { keyRotationSchedule, SIMULATED_GUARDIAN_RECOVERY_BOUND_MS } from '../../src/sim/key-theft.js';
import { runSimulation, type SeedReport } from '../../src/sim/simulator.js';
import { RecoveryChecker } from '../../src/sim/checkers/recovery.js';
import { RECOVERY_BEHAVIOURS } from '../../src/sim/byzantine.js';

const SEEDS = [1, 2, 3, 4, 5, 6];

function run(seed: number, brokenGuardian = false): SeedReport {
  return runSimulation({ seed, n: 6, f: 1, k: 1, byzantine: 'all', recovery: true, brokenGuardian });
}

function explain(report: SeedReport): string {
  return `seed ${report.seed}: ${[...report.violations, report.livenessFailure ?? ''].join(' | ')}`;
}

describe('the simulator with the guardians (--recovery)', () => {
  const reports = SEEDS.map((seed) => run(seed));

  it('passes every checker on n = 6, f = 1, k = 1 with every Byzantine behaviour', () => {
    for (const report of reports) {
      assert.deepEqual(report.violations, [], explain(report));
      assert.equal(report.livenessFailure, null, explain(report));
    }
  });

  it('rejuvenates the replicas amnesiac on fresh key epochs, never more than k at once', () => {
    for (const report of reports) {
      const recovery = report.recovery;
      assert.ok(recovery !== null);
      // A seed whose fault phase partitions the network may see one rejuvenation overrun T_D and
      // the next slots keep their disks; the seeds together rejuvenate many.
      assert.ok(recovery.rejuvenations >= 1, `seed ${report.seed}: ${recovery.rejuvenations} rejuvenations`);
      // Every rejuvenation issued a fresh epoch (and some restarts from the disk did too).
      assert.ok(recovery.retiredEpochs >= recovery.rejuvenations);
      assert.equal(report.keyRotations, recovery.retiredEpochs);
      assert.equal(
        recovery.exposureBoundMs,
        exposureBoundMs(keyRotationSchedule(6, 1, 1, SIMULATED_GUARDIAN_RECOVERY_BOUND_MS)),
      );
      assert.ok(recovery.recoveryDurationsMs.length > 0);
      for (const duration of recovery.recoveryDurationsMs) assert.ok(duration >= 0);
    }
    const total = reports.reduce((sum, report) => sum + report.recovery!.rejuvenations, 0);
    assert.ok(total >= 5 * reports.length, `${total} rejuvenations in ${reports.length} seeds`);
    const reactive = reports.reduce((sum, report) => sum + report.recovery!.reactiveRejuvenations, 0);
    assert.ok(reactive > 0, 'some reactive rejuvenations (evidence, suspicions, owed, crashes)');
  });

  it('catches the broken guardian (a reactive slot that takes k + 1 replicas) on the same seeds', () => {
    for (const seed of SEEDS.slice(0, 3)) {
      const report = run(seed, true);
      assert.ok(
        report.violations.some((text) => /replicas rejuvenating at once/.test(text)),
        `seed ${seed} was not caught: ${explain(report)}`,
      );
    }
  });

  it('evicts an intruder at the full rejuvenation of its replica, and lets it break in again', () => {
    const evicted = reports.reduce((sum, report) => sum + report.recovery!.intrusionsEvicted, 0);
    const resumed = reports.reduce((sum, report) => sum + report.recovery!.intrusionsResumed, 0);
    assert.ok(evicted > 0 && resumed > 0, `evicted ${evicted}, resumed ${resumed}`);
  });

  for (const behaviour of RECOVERY_BEHAVIOURS)
    it(`passes every checker against '${behaviour}'`, () => {
      // Seeds whose scenario has a Byzantine replica (seeds 1 and 4 spend f on an amnesiac instead).
      for (const seed of [2, 3]) {
        const report = runSimulation({ seed, n: 6, f: 1, k: 1, byzantine: [behaviour], recovery: true });
        assert.deepEqual(report.violations, [], explain(report));
        assert.equal(report.livenessFailure, null, explain(report));
        assert.ok(report.recovery!.rejuvenations >= 4);
        if (behaviour === 'frame') assert.ok(report.recovery!.byzantineSuspicions > 0);
      }
    });

  it("catches a guardian that accuses on f suspicions (--broken-suspicions) against a 'frame' replica", () => {
    const caught = [2, 3, 5].filter((seed) =>
      runSimulation({
        seed,
        n: 6,
        f: 1,
        k: 1,
        byzantine: ['frame'],
        recovery: true,
        brokenSuspicions: true,
      }).violations.some((text) => /on suspicions no correct replica shared/.test(text)),
    );
    assert.deepEqual(caught, [2, 3, 5]);
  });

  it('replays a seed exactly', () => {
    const again = run(SEEDS[0]!);
    const { trace: _first, ...first } = reports[0]!;
    const { trace: _second, ...second } = again;
    assert.deepEqual(second, first);
  });
});

describe('the recovery checker', () => {
  const schedule = keyRotationSchedule(6, 1, 1);
  const correct = (replica: number): boolean => replica !== 5;

  it('objects to k + 1 rejuvenations at once, not to one that ends as the next begins', () => {
    const checker = new RecoveryChecker(schedule, correct, 100);
    checker.onBegun(1, 'proactive', false, false, 400);
    checker.onOver(1, 800, false);
    checker.onBegun(2, 'proactive', false, false, 800);
    assert.deepEqual(checker.violations, []);
    checker.onBegun(3, 'reactive', false, false, 900);
    assert.match(checker.violations[0] ?? '', /2 replicas rejuvenating at once at 900 ms/);
  });

  it('objects to an accusation of a correct replica on proof, counts one on suspicions a correct replica shared', () => {
    const checker = new RecoveryChecker(schedule, correct, 100);
    checker.onSuspicion(1, 2, 900);
    checker.onSuspicion(5, 2, 950);
    checker.onAccusation(0, 2, 1000, 'suspicions', 'f + 1 replicas suspect it (timeout)', 1);
    checker.onAccusation(0, 3, 1000, 'owed', 'rejuvenation owed: kept its disk', 2);
    assert.deepEqual(checker.violations, []);
    assert.equal(checker.statistics().correctAccusedOnSuspicion, 1);
    checker.onAccusation(0, 4, 1000, 'proof', 'proof: equivocation', 3);
    assert.match(checker.violations[0] ?? '', /accused correct replica 4/);
  });

  it('objects to an accusation of a correct replica on the word of Byzantine replicas alone', () => {
    const checker = new RecoveryChecker(schedule, correct, 100);
    // Replica 1 suspected replica 3 long ago (outside the 2 T_D window); only replica 5 since.
    checker.onSuspicion(1, 3, 100);
    checker.onSuspicion(5, 3, 3000);
    checker.onAccusation(0, 3, 3000, 'suspicions', 'f + 1 replicas suspect it (timeout)', 1);
    assert.match(
      checker.violations[0] ?? '',
      /accused correct replica 3 at 3000 ms on suspicions no correct replica shared/,
    );
    assert.equal(checker.statistics().byzantineSuspicions, 1);
  });

  it('objects to a proven replica not rejuvenated by its reactive slot', () => {
    const checker = new RecoveryChecker(schedule, correct, 100);
    checker.onAccusation(0, 5, 100, 'proof', 'proof: equivocation', 1);
    checker.onTick(schedule.periodMs * 2, () => true);
    assert.ok(
      checker.violations.some((text) => /proven to misbehave/.test(text)),
      checker.violations.join('\n'),
    );
    const served = new RecoveryChecker(schedule, correct, 100);
    served.onAccusation(0, 5, 100, 'proof', 'proof: equivocation', 1);
    served.onBegun(5, 'reactive', false, false, 2400);
    served.onTick(schedule.periodMs * 2, () => false);
    assert.deepEqual(served.violations, []);
  });

  it('objects to an exposure over T_P + T_D', () => {
    const checker = new RecoveryChecker(schedule, correct, 100);
    const bound = exposureBoundMs(schedule);
    checker.onTick(bound, () => true);
    assert.deepEqual(checker.violations, []);
    checker.onTick(bound + 1, (replica) => replica === 0);
    assert.match(checker.violations[0] ?? '', /replica 0 exposed/);
    assert.equal(checker.violations.length, 1);
  });
});
