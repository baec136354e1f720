import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { keyEpoch, replicaId } from '../../src/messages/ids.js';
import { KeyRegistry } from '../../src/crypto/key-registry.js';
import { sessionKeysFromSeed, sessionPublicKeys } from '../../src/crypto/replica-crypto.js';
import { epochLifetimeOfSchedule } from '../../src/crypto/key-certificates.js';
import { nextProactiveSlotOf, periodLayout } from '../../src/core/schedule.js';
import { EpochAuditor, keyRotationSchedule } from '../../src/sim/key-theft.js';
import { runSimulation, type SeedReport } from '../../src/sim/simulator.js';

function passed(report: SeedReport): boolean {
  return report.violations.length === 0 && report.livenessFailure === null;
}

function explain(report: SeedReport): string {
  return `seed ${report.seed}: ${[...report.violations, report.livenessFailure ?? ''].join(' | ')}`;
}

describe('the key rotation schedule of a simulated cluster', () => {
  it('uses the cluster’s own f and k when a schedule exists for them', () => {
    const schedule = keyRotationSchedule(6, 1, 1);
    assert.equal(schedule.f, 1);
    assert.equal(schedule.k, 1);
    assert.equal(schedule.periodMs, 7 * schedule.recoveryBoundMs);
  });

  it('with k = 0, rotates one replica per slot with the largest f that fits n', () => {
    const four = keyRotationSchedule(4, 1, 0);
    assert.deepEqual([four.f, four.k], [0, 1]);
    assert.deepEqual(periodLayout(four), ['proactive', 'proactive', 'proactive', 'proactive']);
    const seven = keyRotationSchedule(7, 2, 0);
    assert.deepEqual([seven.f, seven.k], [1, 1]);
  });
});

describe('the key-epoch checker', () => {
  const schedule = keyRotationSchedule(4, 1, 0);
  const slot = schedule.recoveryBoundMs;
  const r1 = replicaId(1);

  it('accepts the current epoch within its validity and the previous one within its grace only', () => {
    const auditor = new EpochAuditor(schedule, 0);
    // Replica 1's slots start at 400 ms, then every period (1600 ms).
    auditor.recordRotation(r1, keyEpoch(1), slot + 50);
    assert.equal(auditor.judge('test', r1, keyEpoch(1), 'message', 1000), null);
    // Epoch 0 was retired at 450 ms: a proof under it counts until the end of that slot (800 ms).
    assert.equal(auditor.judge('test', r1, keyEpoch(0), 'proof', 2 * slot), null);
    assert.match(
      auditor.judge('test', r1, keyEpoch(0), 'proof', 2 * slot + 1) ?? '',
      /accepted only until 800/,
    );
    // A retired epoch never counts for a message its replica sends now.
    assert.match(auditor.judge('test', r1, keyEpoch(0), 'message', slot + 60) ?? '', /as a message/);
    // Epoch 1 (issued at 450 ms) is valid until its next slot ends (2000 + 400 ms) plus the skew allowance.
    const validUntil = nextProactiveSlotOf(schedule, r1, slot + 50 + slot).endMs + 1000;
    assert.equal(auditor.judge('test', r1, keyEpoch(1), 'proof', validUntil), null);
    assert.match(auditor.judge('test', r1, keyEpoch(1), 'proof', validUntil + 1) ?? '', /valid only until/);
    auditor.recordRotation(r1, keyEpoch(2), 2050);
    assert.match(auditor.judge('test', r1, keyEpoch(0), 'proof', 2060) ?? '', /nothing older than 1/);
  });

  it('agrees with a KeyRegistry under the schedule’s epoch lifetimes, whatever the rotation times', () => {
    const keys = Array.from({ length: 4 }, (_, index) => {
      const seed = new Uint8Array(32);
      seed[0] = index + 1;
      return sessionPublicKeys(sessionKeysFromSeed(seed));
    });
    fc.assert(
      fc.property(
        // Per rotation: how far into the replica's next slot it happens.
        fc.array(fc.integer({ min: 0, max: slot - 1 }), { minLength: 1, maxLength: 3 }),
        fc.array(fc.integer({ min: 0, max: 4 * schedule.periodMs }), { minLength: 1, maxLength: 20 }),
        (offsets, probes) => {
          let now = 0;
          const registry = new KeyRegistry(4, {
            lifetime: epochLifetimeOfSchedule(schedule),
            now: () => now,
          });
          registry.installReplicaEpoch(r1, keyEpoch(0), keys[0]!, 0);
          const auditor = new EpochAuditor(schedule, 0);
          let issuedAt = 0;
          offsets.forEach((offset, index) => {
            issuedAt = nextProactiveSlotOf(schedule, r1, issuedAt + 1).startMs + offset;
            registry.installReplicaEpoch(r1, keyEpoch(index + 1), keys[(index + 1) % 4]!, issuedAt);
            auditor.recordRotation(r1, keyEpoch(index + 1), issuedAt);
          });
          for (const probe of probes) {
            now = issuedAt + probe;
            for (let epoch = 0; epoch <= offsets.length; epoch++) {
              const byRegistry = registry.replicaKeys(r1, keyEpoch(epoch)) !== undefined;
              const byChecker = auditor.judge('test', r1, keyEpoch(epoch), 'proof', now) === null;
              if (byRegistry !== byChecker) return false;
            }
          }
          return true;
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('key theft in the simulator', () => {
  it('a thief replaying every stolen key gets nothing accepted outside the grace (n = 4, f = 1)', () => {
    let replays = 0;
    let acceptedInGrace = 0;
    // Seeds whose Byzantine replica is the thief (r3, r1, and r0, which leads view 0).
    for (const seed of [2, 3, 6]) {
      const report = runSimulation({ seed, n: 4, f: 1, byzantine: ['key-thief'] });
      assert.ok(report.keyTheft, `seed ${seed}: 'key-thief' implies key theft`);
      assert.ok(passed(report), explain(report));
      assert.ok(report.keyRotations >= 8, `seed ${seed}: only ${report.keyRotations} rotations`);
      assert.ok(report.stolenKeyReplays > 0, `seed ${seed}: the thief replayed nothing`);
      assert.ok(report.signaturesJudged > 0);
      assert.ok(report.requestsCompleted > 50, `seed ${seed}: ${report.requestsCompleted} requests`);
      replays += report.stolenKeyReplays;
      acceptedInGrace += report.stolenSignaturesAccepted;
    }
    assert.ok(replays > 0);
    // The attempts inside the grace window reached signature checks that passed, legitimately.
    assert.ok(acceptedInGrace > 0, 'no stolen signature was ever accepted, even inside a grace');
  });

  it('with room for a recovering replica (n = 6, f = 1, k = 1), under --key-theft', () => {
    for (const seed of [2, 3]) {
      const report = runSimulation({ seed, n: 6, f: 1, k: 1, keyTheft: true });
      assert.ok(passed(report), explain(report));
      assert.ok(report.byzantine.some((entry) => entry.behaviours.includes('key-thief')));
      assert.ok(report.stolenKeyReplays > 0);
    }
  });

  it('keys rotate even when the draw spent f on an amnesiac and left no thief (seed 1)', () => {
    const report = runSimulation({ seed: 1, n: 4, f: 1, byzantine: ['key-thief'], faultPhaseMs: 2500 });
    assert.deepEqual(report.byzantine, []);
    assert.ok(report.keyTheft && report.keyRotations > 0);
    assert.equal(report.stolenKeyReplays, 0);
    assert.ok(passed(report), explain(report));
  });

  it('the core faults that key rotations exposed stay fixed', () => {
    // 495: a restarted backup raised a false safety alarm at the equivocating leader's proposal
    // for a sequence it had committed. 17 (in place): a VIEW-CHANGE signed once stopped verifying
    // and stalled the view change. 334 (restart in a view change): a restarted replica's rebuilt
    // VIEW-CHANGE was ignored as a duplicate and a later view re-decided executed sequences.
    const cases = [
      { seed: 495, keyRotation: 'restart' },
      { seed: 17, keyRotation: 'in-place' },
      { seed: 334, keyRotation: 'restart-in-view-change' },
    ] as const;
    for (const { seed, keyRotation } of cases) {
      const report = runSimulation({ seed, n: 4, f: 1, keyTheft: true, keyRotation });
      assert.ok(passed(report), `${keyRotation}: ${explain(report)}`);
      assert.equal(report.livenessOutsideModel, null, `${keyRotation}: ${explain(report)}`);
    }
  });

  it('a stolen leader key inside its grace gets no correct leader blamed (seed 2, in place)', () => {
    // Before: backups took a PREPARE carrying a second proposal signature under the leader's
    // retired epoch as equivocation, and changed views blaming correct leaders 1 and 2.
    const report = runSimulation({
      seed: 2,
      n: 4,
      f: 1,
      byzantine: ['key-thief'],
      keyRotation: 'in-place',
      trace: true,
    });
    assert.ok(passed(report), explain(report));
    assert.ok(report.stolenKeyReplays > 0);
    assert.deepEqual(
      report.trace.filter((line) => line.includes('equivocation-detected')),
      [],
    );
  });

  it('a replica that transferred an older checkpoint than its unverifiable stored one keeps the stored one (seed 739)', () => {
    // Before: the older checkpoint replaced the newer one on disk; restarted again, the replica
    // took it for all it had executed, voted at once, and a view re-decided executed sequences
    // (an agreement violation). n = 4 stalls here (certificate decay), which is reported apart.
    const report = runSimulation({ seed: 739, n: 4, f: 1, keyTheft: true });
    assert.deepEqual(report.violations, []);
    assert.equal(report.livenessFailure, null);
  });

  it('reports a stall of a cluster too small for its rotations apart from failures (seed 191)', () => {
    // n = 4, f = 1 with keys rotating (a recovery, k = 1) is below n ≥ 3f + 2k + 1, so a run may
    // stall: reported apart from failures. (Seed 191 was the example until the CERTIFICATE-HISTORY
    // messages of safe mode changed every schedule, then seed 57 until the leader-pace view
    // changes did, then seed 516 until the detectors of 2026-12-03 did, then seed 152 until the
    // per-client request timers and batch fill of that day did; seed 191 is again the only one of
    // seeds 0-400 that stalls.)
    const report = runSimulation({ seed: 191, n: 4, f: 1, keyTheft: true });
    assert.deepEqual(report.violations, []);
    assert.equal(report.livenessFailure, null);
    assert.match(report.livenessOutsideModel ?? '', /outstanding/);
  });

  it('replays a key-theft seed exactly', () => {
    const strip = (report: SeedReport): string => JSON.stringify({ ...report, trace: [] });
    const options = { seed: 5, n: 4, f: 1, keyTheft: true, faultPhaseMs: 2500 } as const;
    assert.equal(strip(runSimulation(options)), strip(runSimulation(options)));
  });

  it('a run without key theft rotates nothing and judges nothing', () => {
    const report = runSimulation({ seed: 5, n: 4, f: 1, byzantine: ['replay'], faultPhaseMs: 1500 });
    assert.equal(report.keyTheft, false);
    assert.equal(report.keyRotations, 0);
    assert.equal(report.signaturesJudged, 0);
  });

  it('the checker catches a registry that accepts retired epochs for ever', () => {
    const report = runSimulation({
      seed: 2,
      n: 4,
      f: 1,
      byzantine: ['key-thief'],
      brokenEpochLifetime: true,
    });
    assert.ok(
      report.violations.some((violation) => /key epochs: .*\(made with a stolen key\)/.test(violation)),
      explain(report),
    );
  });
});
