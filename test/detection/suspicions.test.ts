import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvariantViolation, type ReplicaId, replicaId } from '../../src/messages/ids.js';
import { SuspicionTracker } from '../../src/detection/suspicions.js';

// n = 7, f = 2: three distinct reporters are needed.
const n = 7;
const f = 2;
const windowMs = 1000;
const id = (value: number): ReplicaId => replicaId(value);

function tracker(): SuspicionTracker {
  return new SuspicionTracker({ n, f, windowMs });
}

describe('SuspicionTracker', () => {
  it('reports true exactly once, when the f + 1-th distinct reporter joins', () => {
    const suspicions = tracker();
    assert.equal(suspicions.report(id(0), id(1), 0), false);
    assert.equal(suspicions.report(id(0), id(2), 10), false);
    assert.equal(suspicions.report(id(0), id(3), 20), true);
    assert.equal(suspicions.report(id(0), id(4), 30), false, 'already announced');
    assert.equal(suspicions.report(id(0), id(3), 40), false);
  });

  it('counts one vote per reporter', () => {
    const suspicions = tracker();
    for (let time = 0; time < 10; time++) assert.equal(suspicions.report(id(0), id(1), time), false);
    assert.equal(suspicions.report(id(0), id(2), 10), false);
    assert.deepEqual(suspicions.snapshot(10), [{ accused: id(0), reporters: [id(1), id(2)] }]);
  });

  it('ignores a replica suspecting itself', () => {
    const suspicions = tracker();
    assert.equal(suspicions.report(id(0), id(0), 0), false);
    assert.equal(suspicions.report(id(0), id(1), 0), false);
    assert.equal(suspicions.report(id(0), id(2), 0), false);
    assert.deepEqual(suspicions.snapshot(0), [{ accused: id(0), reporters: [id(1), id(2)] }]);
    assert.equal(suspicions.report(id(0), id(3), 0), true);
  });

  it('rejects ids outside the configuration', () => {
    const suspicions = tracker();
    assert.equal(suspicions.report(n as ReplicaId, id(1), 0), false);
    assert.equal(suspicions.report(id(0), 99 as ReplicaId, 0), false);
    assert.equal(suspicions.report(id(0), -1 as ReplicaId, 0), false);
    assert.equal(suspicions.report(id(0), 1.5 as ReplicaId, 0), false);
    assert.deepEqual(suspicions.snapshot(0), []);
  });

  it('lets votes older than the window expire', () => {
    const suspicions = tracker();
    suspicions.report(id(0), id(1), 0);
    suspicions.report(id(0), id(2), 500);
    // At 1001 the first vote is 1001 ms old: expired. Only two current reporters remain.
    assert.equal(suspicions.report(id(0), id(3), 1001), false);
    assert.deepEqual(suspicions.snapshot(1001), [{ accused: id(0), reporters: [id(2), id(3)] }]);
    // A vote exactly windowMs old still counts.
    assert.equal(suspicions.report(id(0), id(4), 1500), true);
  });

  it('renews a vote on a repeated report', () => {
    const suspicions = tracker();
    suspicions.report(id(0), id(1), 0);
    suspicions.report(id(0), id(1), 900);
    suspicions.report(id(0), id(2), 1500);
    assert.equal(suspicions.report(id(0), id(3), 1800), true);
  });

  it('re-arms after clear, and forgets the votes', () => {
    const suspicions = tracker();
    for (const reporter of [1, 2, 3]) suspicions.report(id(0), id(reporter), 0);
    suspicions.clear(id(0));
    assert.deepEqual(suspicions.snapshot(0), []);
    assert.equal(suspicions.report(id(0), id(1), 1), false);
    assert.equal(suspicions.report(id(0), id(2), 1), false);
    assert.equal(suspicions.report(id(0), id(3), 1), true);
  });

  it('does not re-arm when votes merely expire', () => {
    const suspicions = tracker();
    for (const reporter of [1, 2, 3]) suspicions.report(id(0), id(reporter), 0);
    suspicions.expire(5000);
    assert.deepEqual(suspicions.snapshot(5000), []);
    for (const reporter of [1, 2]) suspicions.report(id(0), id(reporter), 5000);
    assert.equal(suspicions.report(id(0), id(3), 5000), false);
  });

  it('keeps accused replicas apart and sorts the snapshot', () => {
    const suspicions = tracker();
    suspicions.report(id(5), id(6), 0);
    suspicions.report(id(2), id(4), 0);
    suspicions.report(id(2), id(1), 0);
    suspicions.report(id(5), id(0), 0);
    assert.deepEqual(suspicions.snapshot(0), [
      { accused: id(2), reporters: [id(1), id(4)] },
      { accused: id(5), reporters: [id(0), id(6)] },
    ]);
  });

  it('rejects invalid options', () => {
    assert.throws(() => new SuspicionTracker({ n: 0, f: 0, windowMs: 1 }), InvariantViolation);
    assert.throws(() => new SuspicionTracker({ n: 4, f: -1, windowMs: 1 }), InvariantViolation);
    assert.throws(() => new SuspicionTracker({ n: 4, f: 1, windowMs: 0 }), InvariantViolation);
  });

  it('never reaches the threshold from f faulty reporters, whatever they report (property)', () => {
    const action = fc.oneof(
      {
        weight: 9,
        arbitrary: fc.record({
          kind: fc.constant('report' as const),
          accused: fc.nat({ max: n - 1 }),
          reporterSlot: fc.nat({ max: f - 1 }),
          advanceMs: fc.nat({ max: 3 * windowMs }),
        }),
      },
      // Clears (a rejuvenation) in between must not help them either.
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('clear' as const), accused: fc.nat({ max: n - 1 }) }),
      },
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.nat({ max: n - 1 }), { minLength: f, maxLength: f }),
        fc.array(action, { maxLength: 200 }),
        (faulty, actions) => {
          const suspicions = tracker();
          let nowMs = 0;
          for (const step of actions) {
            if (step.kind === 'clear') {
              suspicions.clear(id(step.accused));
              continue;
            }
            nowMs += step.advanceMs;
            assert.equal(suspicions.report(id(step.accused), id(faulty[step.reporterSlot]!), nowMs), false);
          }
          for (const { reporters } of suspicions.snapshot(nowMs)) assert.ok(reporters.length <= f);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('always reaches the threshold once f + 1 distinct replicas report within the window (property)', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: n - 1 }),
        fc.uniqueArray(fc.nat({ max: n - 1 }), { minLength: f + 1, maxLength: n }),
        fc.array(fc.nat({ max: windowMs / (n + 1) }), { minLength: n, maxLength: n }),
        (accused, reporters, gapsMs) => {
          const suspicions = tracker();
          const witnesses = reporters.filter((reporter) => reporter !== accused);
          let nowMs = 0;
          let crossings = 0;
          witnesses.forEach((reporter, index) => {
            nowMs += gapsMs[index]!;
            if (suspicions.report(id(accused), id(reporter), nowMs)) {
              crossings++;
              assert.equal(index, f, 'crossed at the f + 1-th distinct reporter');
            }
          });
          assert.equal(crossings, witnesses.length > f ? 1 : 0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
