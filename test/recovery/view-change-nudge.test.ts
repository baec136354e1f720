/**
 * The view-change nudge between guardians (control channel) and from a guardian to its replica
 * (IPC): it names the view it is about, so a replica already past that view ignores it, and
 * anything malformed is refused rather than acted upon.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeControl, encodeControl } from '../../src/recovery/control.js';
import { parseGuardianMessage, parseReplicaMessage } from '../../src/runtime/ipc.js';
import { MAX_REJOIN_ASKS, REJOIN_RETRY_MS } from '../../src/recovery/core/guardian-core.js';
import { OneGuardian, TICK_MS } from './one-guardian.js';

const frame = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

/** The views named by the nudges the guardian sent (to the other guardians and to its replica). */
function nudgesOf(guardian: OneGuardian): (number | null)[] {
  return guardian.actions.flatMap((action) =>
    action.type === 'nudge-replica'
      ? [action.aboveView]
      : action.type === 'broadcast' && action.message.type === 'nudge'
        ? [action.message.aboveView]
        : [],
  );
}

describe('view-change nudges', () => {
  test('a control nudge round-trips with or without the view it is about', () => {
    for (const aboveView of [null, 0, 17]) {
      const decoded = decodeControl(encodeControl({ type: 'nudge', aboveView }));
      assert.deepEqual(decoded, { ok: true, message: { type: 'nudge', aboveView } });
    }
  });

  test('a control nudge with a view that is not a non-negative integer is refused', () => {
    for (const aboveView of [-1, 1.5, '3', Number.MAX_SAFE_INTEGER + 2, undefined]) {
      const decoded = decodeControl(frame({ type: 'nudge', aboveView }));
      assert.equal(decoded.ok, false, `aboveView ${String(aboveView)}`);
    }
  });

  test('the IPC nudge carries the view, and a bad one is refused', () => {
    assert.deepEqual(
      parseGuardianMessage({ type: 'nudge-view-change', avoidLeaders: [1, 2], aboveView: 4 }),
      {
        type: 'nudge-view-change',
        avoidLeaders: [1, 2],
        aboveView: 4,
      },
    );
    assert.deepEqual(parseGuardianMessage({ type: 'nudge-view-change', avoidLeaders: [], aboveView: null }), {
      type: 'nudge-view-change',
      avoidLeaders: [],
      aboveView: null,
    });
    for (const aboveView of [-1, 'x', 2.5, undefined])
      assert.equal(parseGuardianMessage({ type: 'nudge-view-change', avoidLeaders: [], aboveView }), null);
    for (const avoidLeaders of [[-1], [1.5], ['1'], [null], 'x', Array.from({ length: 1000 }, () => 0)])
      assert.equal(parseGuardianMessage({ type: 'nudge-view-change', avoidLeaders, aboveView: null }), null);
  });

  test('a rejoin asks above the view the replica sits out, which may be above the view it is in', () => {
    const guardian = new OneGuardian();
    // A crash: its rejuvenation starts an amnesiac process, which catches up but cannot verify
    // the NEW-VIEW of view 2 the others are in; its voting floor is 2, its view still 0.
    guardian.crashIntoRejuvenation();
    guardian.feed({
      type: 'replica-status',
      now: guardian.nowMs,
      view: 0,
      rejoinAboveView: 2,
      lastExecuted: 64,
      voting: false,
    });
    guardian.actions.length = 0;
    guardian.feed({ type: 'replica-progress', now: guardian.nowMs, stage: 'caught-up' });
    assert.equal(guardian.step(), 'rejoining');
    assert.deepEqual(
      nudgesOf(guardian),
      [2, 2],
      'the other guardians and its own replica are asked above view 2',
    );
  });

  test("the replica's status carries the view a rejoin must go above, never below its view", () => {
    const status = {
      type: 'status',
      view: 3,
      lastExecuted: 9,
      stableCheckpoint: 8,
      stateTransferInProgress: false,
      voting: false,
      peersExecuted: 9,
    };
    assert.deepEqual(parseReplicaMessage({ ...status, rejoinAboveView: 5 }), {
      ...status,
      rejoinAboveView: 5,
    });
    for (const rejoinAboveView of [2, -1, 1.5, '5', undefined])
      assert.equal(
        parseReplicaMessage({ ...status, rejoinAboveView }),
        null,
        `rejoinAboveView ${String(rejoinAboveView)}`,
      );
  });

  test('a first start whose replica catches up without voting asks for a view change above the view it sits out', () => {
    const guardian = new OneGuardian();
    guardian.feed({ type: 'started', now: guardian.nowMs });
    // Back from its disk as an amnesiac (its log was that of a rejuvenated process that had not
    // voted yet): the others are in view 1, its voting floor.
    guardian.feed({
      type: 'replica-status',
      now: guardian.nowMs,
      view: 1,
      rejoinAboveView: 1,
      lastExecuted: 32,
      voting: false,
    });
    guardian.actions.length = 0;
    guardian.feed({ type: 'replica-progress', now: guardian.nowMs, stage: 'caught-up' });
    assert.equal(guardian.step(), 'idle', 'the first start is over');
    assert.deepEqual(nudgesOf(guardian), [1, 1]);
  });

  test('a first start whose replica votes at once asks for no view change', () => {
    const guardian = new OneGuardian();
    guardian.feed({ type: 'started', now: guardian.nowMs });
    guardian.actions.length = 0;
    guardian.feed({ type: 'replica-progress', now: guardian.nowMs, stage: 'voting' });
    assert.equal(guardian.step(), 'idle');
    assert.deepEqual(nudgesOf(guardian), []);
  });

  test('a replica caught up and still not voting is asked for again, a bounded number of times', () => {
    const guardian = new OneGuardian();
    guardian.feed({ type: 'started', now: guardian.nowMs });
    const status = (view: number, rejoinAboveView: number, voting: boolean): void =>
      guardian.feed({
        type: 'replica-status',
        now: guardian.nowMs,
        view,
        rejoinAboveView,
        lastExecuted: 32,
        voting,
      });
    // Its first status predates its voting floor; the others are changing view 0 -> 1, which it
    // sits out: the first request (above view 0) is lost.
    status(0, 0, false);
    guardian.actions.length = 0;
    guardian.feed({ type: 'replica-progress', now: guardian.nowMs, stage: 'caught-up' });
    assert.deepEqual(nudgesOf(guardian), [0, 0]);
    status(1, 1, false);
    guardian.actions.length = 0;
    guardian.runFor(REJOIN_RETRY_MS + TICK_MS);
    assert.deepEqual(nudgesOf(guardian), [1, 1], 'asked again, above the view it sits out now');
    guardian.actions.length = 0;
    guardian.runFor(10 * REJOIN_RETRY_MS);
    assert.equal(
      nudgesOf(guardian).length,
      2 * (MAX_REJOIN_ASKS - 2),
      'then only up to MAX_REJOIN_ASKS in all',
    );
    guardian.actions.length = 0;
    guardian.runFor(10 * REJOIN_RETRY_MS);
    assert.deepEqual(nudgesOf(guardian), []);
  });

  test('a replica that votes is not asked again', () => {
    const guardian = new OneGuardian();
    guardian.feed({ type: 'started', now: guardian.nowMs });
    guardian.feed({
      type: 'replica-status',
      now: guardian.nowMs,
      view: 0,
      rejoinAboveView: 0,
      lastExecuted: 32,
      voting: false,
    });
    guardian.feed({ type: 'replica-progress', now: guardian.nowMs, stage: 'caught-up' });
    guardian.feed({
      type: 'replica-status',
      now: guardian.nowMs,
      view: 1,
      rejoinAboveView: 1,
      lastExecuted: 32,
      voting: true,
    });
    guardian.feed({ type: 'replica-progress', now: guardian.nowMs, stage: 'voting' });
    guardian.actions.length = 0;
    guardian.runFor(10 * REJOIN_RETRY_MS);
    assert.deepEqual(nudgesOf(guardian), []);
  });
});
