/**
 * The leader's turnaround expectation: a leader that delays every proposal to just under the
 * request timeout is replaced after a few proposals, a leader that keeps pace never is, and the
 * floor and backoff keep an honest leader on a slow machine from being rotated for ever.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  HISTORY_MULTIPLIER,
  LeaderPace,
  MAX_PACE_BACKOFF,
  MIN_TURNAROUND_SAMPLES,
} from '../../src/core/leader-pace.js';
import { Harness, kv } from './harness.js';

const CONFIG = { floorMs: 150, ceilingMs: 2000, historyViews: 2, pipelineDepth: 1 };

/** Feeds `count` proposals to `pace`, each `turnaroundMs` after the previous one executed. */
function feed(
  pace: LeaderPace,
  from: { sequence: number; now: number },
  count: number,
  turnaroundMs: number,
): ReturnType<LeaderPace['observe']>[] {
  const verdicts = [];
  for (let index = 0; index < count; index++) {
    const sequence = from.sequence + 1;
    from.now += turnaroundMs;
    verdicts.push(pace.observe(sequence, from.now - turnaroundMs, from.now));
    from.now += 1;
    pace.executed(sequence, from.now);
    from.sequence = sequence;
  }
  return verdicts;
}

describe('leader pace (unit)', () => {
  test('judges nobody before MIN_TURNAROUND_SAMPLES proposals, then the median against the floor', () => {
    const pace = new LeaderPace(CONFIG);
    pace.viewStarted(0);
    pace.executed(1, 0);
    const verdicts = feed(pace, { sequence: 1, now: 0 }, MIN_TURNAROUND_SAMPLES, 400);
    assert.deepEqual(
      verdicts.slice(0, -1).map((verdict) => verdict.kind),
      Array<string>(MIN_TURNAROUND_SAMPLES - 1).fill('kept-pace'),
    );
    const last = verdicts.at(-1)!;
    assert.equal(last.kind, 'too-slow');
    assert.ok(last.kind === 'too-slow' && last.medianMs === 400 && last.expectationMs === 150);
  });

  test('one slow proposal among fast ones is not enough (the median, not the maximum)', () => {
    const pace = new LeaderPace(CONFIG);
    pace.viewStarted(0);
    pace.executed(1, 0);
    const cursor = { sequence: 1, now: 0 };
    feed(pace, cursor, 2, 5);
    assert.equal(feed(pace, cursor, 1, 1900)[0]!.kind, 'kept-pace');
    assert.equal(feed(pace, cursor, 1, 5)[0]!.kind, 'kept-pace');
  });

  test('measures from the latest bound the leader is held to: request held, previous batch executed, view start', () => {
    const pace = new LeaderPace(CONFIG);
    pace.viewStarted(1000);
    pace.executed(9, 500);
    // The request arrived at 0 and the previous batch executed at 500, but the view began at 1000.
    assert.equal(pace.observe(10, 0, 1100).kind, 'kept-pace');
    // Then each proposal 100 ms after the batch before it executed here.
    for (let sequence = 11; sequence < 10 + MIN_TURNAROUND_SAMPLES; sequence++) {
      pace.executed(sequence - 1, 1000 + (sequence - 10) * 100);
      assert.equal(pace.observe(sequence, 0, 1100 + (sequence - 10) * 100).kind, 'kept-pace');
    }
    assert.equal(pace.report.medianMs, 100);
    // Not executed here yet: no fair bound, no measurement.
    assert.equal(pace.observe(40, 0, 9000).kind, 'unmeasured');
    // A batch holding a request this replica never got: nothing measured.
    assert.equal(pace.observe(10, null, 9000).kind, 'unmeasured');
    assert.equal(pace.report.samples, MIN_TURNAROUND_SAMPLES);
  });

  test('the expectation follows the best of recent unblamed views, times HISTORY_MULTIPLIER, above the floor', () => {
    const pace = new LeaderPace(CONFIG);
    const cursor = { sequence: 0, now: 0 };
    for (const turnaround of [100, 60]) {
      pace.viewStarted(cursor.now);
      feed(pace, cursor, 5, turnaround);
    }
    pace.viewStarted(cursor.now);
    assert.equal(pace.expectationMs, Math.max(CONFIG.floorMs, HISTORY_MULTIPLIER * 60));
    // A blamed view's pace never becomes history.
    feed(pace, cursor, 5, 1000);
    pace.blamed();
    pace.viewStarted(cursor.now);
    assert.equal(pace.report.backoff, 2);
    assert.equal(pace.expectationMs, 2 * HISTORY_MULTIPLIER * 60);
  });

  test('backoff doubles per blame up to its bound, halves when a view keeps pace, and the ceiling caps it', () => {
    const pace = new LeaderPace(CONFIG);
    for (let blame = 0; blame < 20; blame++) pace.blamed();
    assert.equal(pace.report.backoff, MAX_PACE_BACKOFF);
    assert.equal(pace.expectationMs, CONFIG.ceilingMs);
    pace.viewStarted(0);
    feed(pace, { sequence: 0, now: 0 }, 5, 10);
    pace.viewStarted(100);
    assert.equal(pace.report.backoff, MAX_PACE_BACKOFF / 2);
  });

  test('floor 0 turns the check off', () => {
    const pace = new LeaderPace({ ...CONFIG, floorMs: 0 });
    pace.viewStarted(0);
    assert.ok(
      feed(pace, { sequence: 0, now: 0 }, 10, 1900).every((verdict) => verdict.kind === 'unmeasured'),
    );
  });

  test('property: a leader whose every turnaround is within the expectation is never judged too slow', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 500 }),
        fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 4 }),
        (floorMs, delays, pipelineDepth) => {
          const pace = new LeaderPace({ floorMs, ceilingMs: 2000, historyViews: 2, pipelineDepth });
          pace.viewStarted(0);
          let now = 0;
          for (let sequence = 1; sequence <= delays.length; sequence++) {
            const limit = pace.expectationMs;
            const turnaround = Math.min(delays[sequence - 1]!, limit);
            now += turnaround;
            const verdict = pace.observe(sequence, now - turnaround, now);
            if (verdict.kind === 'too-slow') return false;
            pace.executed(sequence, now);
          }
          return true;
        },
      ),
    );
  });
});

/**
 * Runs `count` requests one at a time; every PRE-PREPARE of `leader` is held back for `delayMs`
 * before it is delivered (the stalling-leader attack: a delay well under the request timeout).
 */
function runWithDelayedProposals(cluster: Harness, leader: number, count: number, delayMs: number): void {
  const alice = cluster.client('alice');
  cluster.filter = (envelope) =>
    envelope.from === leader && envelope.message.kind === 'pre-prepare' ? 'hold' : 'deliver';
  for (let index = 0; index < count; index++) {
    cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    cluster.advance(delayMs, Math.min(50, delayMs));
    cluster.filter = null;
    cluster.release();
    cluster.run();
    cluster.filter = (envelope) =>
      envelope.from === leader && envelope.message.kind === 'pre-prepare' ? 'hold' : 'deliver';
  }
  cluster.filter = null;
  cluster.release();
  cluster.run();
}

describe('leader pace in the replica', () => {
  test('a leader that holds every proposal 400 ms (request timeout 1000 ms) is replaced after a few', () => {
    const cluster = new Harness({ config: { pipelineDepth: 1 } });
    runWithDelayedProposals(cluster, 0, 6, 400);
    assert.ok(
      cluster.advanceUntil(() => cluster.ids.every((id) => cluster.replica(id).view >= 1), 3000),
      'every replica moved past view 0',
    );
    const reasons = cluster.logs(1, 'view-change-started').map((log) => String(log.details.reason));
    assert.match(
      reasons[0] ?? '',
      /^leader turnaround: median 4\d\d ms over its last 3 proposals, expected at most 150 ms$/,
    );
    assert.ok(cluster.suspicions(1).some((suspicion) => suspicion.replica === 0));
    // No request waited for a request timeout: nobody blamed the leader through its timer.
    assert.ok(!reasons.some((reason) => reason.startsWith('request ')));
    // And the new leader goes on.
    const after = cluster.client('bob').request(kv.put('after', 'yes'));
    cluster.execute(after);
    assert.ok(cluster.advanceUntil(() => cluster.ids.every((id) => cluster.executionOf(id, after)), 3000));
  });

  test('the same delay with the check off (floor 0) replaces nobody', () => {
    const cluster = new Harness({ config: { pipelineDepth: 1, leaderTurnaroundFloorMs: 0 } });
    runWithDelayedProposals(cluster, 0, 6, 400);
    assert.ok(cluster.ids.every((id) => cluster.replica(id).view === 0));
  });

  test('a leader that keeps pace (50 ms) is never replaced', () => {
    const cluster = new Harness({ config: { pipelineDepth: 1 } });
    runWithDelayedProposals(cluster, 0, 12, 50);
    assert.ok(cluster.ids.every((id) => cluster.replica(id).view === 0));
    assert.equal(cluster.logs(1, 'view-change-started').length, 0);
    const report = cluster.replica(1).leaderPace;
    assert.ok(report.medianMs !== null && report.medianMs <= report.expectationMs);
  });
});
