/**
 * A start that fails must not leave the guardian waiting: the pure GuardianCore of one guardian,
 * driven by a small shell that answers each action at once, whose replica process exits during
 * its start (as one that finds its data folder still locked by the replica of the guardian's
 * previous incarnation does) or whose shell work fails. The replica must be started again within
 * the crash settle time, not at the first start's 60 s timeout or at a slot T_P away.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CRASH_SETTLE_MAX_MS, FIRST_START_TIMEOUT_MS } from '../../src/recovery/core/guardian-core.js';
import { OneGuardian, SCHEDULE, START_MS, TICK_MS } from './one-guardian.js';

describe('a replica start that fails', () => {
  test('a first start whose process exits before it catches up is retried within the crash settle time', () => {
    const guardian = new OneGuardian();
    guardian.feed({ type: 'started', now: guardian.nowMs });
    assert.deepEqual(guardian.startsAtMs, [START_MS], 'the first start spawns the replica');
    assert.equal(guardian.step(), 'validating-state');
    guardian.runFor(500);
    // "replica-2 is in use by process <pid>": the new process exits with code 1.
    guardian.exits();
    const exitedAtMs = guardian.nowMs;
    guardian.runFor(CRASH_SETTLE_MAX_MS + 10 * TICK_MS);
    assert.equal(guardian.startsAtMs.length, 2, 'the replica is started again');
    assert.ok(
      guardian.startsAtMs[1]! - exitedAtMs < FIRST_START_TIMEOUT_MS / 10,
      `restarted ${guardian.startsAtMs[1]! - exitedAtMs} ms after its exit`,
    );
    assert.ok(
      guardian.core
        .status(guardian.nowMs)
        .alarms.some((alarm) => /first start of replica 2 failed: its process exited/.test(alarm.message)),
    );
  });

  test('a rejuvenation whose new process exits while it catches up ends at once and is retried', () => {
    const guardian = new OneGuardian();
    // A crash, then its rejuvenation's new process crashes too while it validates its state.
    guardian.crashIntoRejuvenation();
    guardian.exits();
    assert.equal(guardian.step(), 'idle', 'the recovery does not wait for its deadline');
    // At most one crash rejuvenation per T_D: the next one waits for it, then starts.
    guardian.runFor(SCHEDULE.recoveryBoundMs + 10 * TICK_MS);
    assert.equal(guardian.startsAtMs.length, 3, 'the replica is started again');
  });

  test("a 'recovery-failed' from the shell leads to another start, not to a replica left down", () => {
    const guardian = new OneGuardian();
    guardian.failNextCodeCheck = true;
    guardian.feed({ type: 'started', now: guardian.nowMs });
    assert.deepEqual(guardian.startsAtMs, [], 'the first start failed before it spawned anything');
    assert.equal(guardian.step(), 'idle');
    guardian.runFor(CRASH_SETTLE_MAX_MS + 10 * TICK_MS);
    assert.equal(guardian.startsAtMs.length, 1, 'the replica is started after all');
  });
});
