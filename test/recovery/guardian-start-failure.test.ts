/**
 * A start that fails must not leave the guardian waiting: the pure GuardianCore of one guardian,
 * driven by a small shell that answers each action at once, whose replica process exits during
 * its start (as one that finds its data folder still locked by the replica of the guardian's
 * previous incarnation does) or whose shell work fails. The replica must be started again within
 * the crash settle time, not at the first start's 60 s timeout or at a slot T_P away.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ScheduleParameters } from '../../src/core/schedule.js';
import { keyEpoch, replicaId, signature } from '../../src/messages/ids.js';
import type { KeyCertificate } from '../../src/messages/types.js';
import {
  CRASH_SETTLE_MAX_MS,
  FIRST_START_TIMEOUT_MS,
  type GuardianAction,
  GuardianCore,
  type GuardianEvent,
} from '../../src/recovery/core/guardian-core.js';

const SCHEDULE: ScheduleParameters = {
  n: 6,
  f: 1,
  k: 1,
  recoveryBoundMs: 8000,
  periodMs: 56_000,
  originMs: 0,
};
const TICK_MS = 50;
/** Far from any slot of replica 2 (its proactive slot starts at 16 s of each 56 s period). */
const START_MS = 30_000;

function certificate(replica: number, epoch: number, issuedAtMs: number): KeyCertificate {
  return {
    replica: replicaId(replica),
    keyEpoch: keyEpoch(epoch),
    signingKey: new Uint8Array(32).fill(epoch),
    agreementKey: new Uint8Array(32).fill(epoch),
    issuedAtMs,
    signature: signature(new Uint8Array(64)),
  };
}

/** One guardian's shell: every action answered at once; the test decides what fails. */
class OneGuardian {
  readonly core = new GuardianCore({
    id: replicaId(2),
    schedule: SCHEDULE,
    persisted: { keyEpoch: 0, lastRejuvenationAtMs: null, lastSlot: null },
    certificates: [],
    clockSkewAllowanceMs: 1000,
    recoveringNiceShareOfTd: 0.25,
  });
  nowMs = START_MS;
  /** When each 'start-replica' was asked for. */
  readonly startsAtMs: number[] = [];
  running = false;
  /** The next code check throws in the shell (a 'recovery-failed' instead of a verdict). */
  failNextCodeCheck = false;

  feed(event: GuardianEvent): void {
    const pending: GuardianEvent[] = [event];
    for (let next = pending.shift(); next !== undefined; next = pending.shift())
      for (const action of this.core.step(next)) this.#answer(action, (answer) => pending.push(answer));
  }

  #answer(action: GuardianAction, answer: (event: GuardianEvent) => void): void {
    const now = this.nowMs;
    switch (action.type) {
      case 'stop-replica':
        if (this.running) answer({ type: 'replica-exited', now, expected: true, code: 0, signal: null });
        this.running = false;
        answer({ type: 'replica-stopped', now });
        return;
      case 'check-code':
        if (this.failNextCodeCheck) {
          this.failNextCodeCheck = false;
          answer({ type: 'recovery-failed', now, message: 'EMFILE: too many open files' });
          return;
        }
        answer({ type: 'code-checked', now, ok: true, problems: [] });
        return;
      case 'issue-keys':
        answer({
          type: 'keys-issued',
          now,
          certificate: certificate(2, action.nextEpoch, now),
          fresh: true,
        });
        return;
      case 'start-replica':
        this.startsAtMs.push(now);
        this.running = true;
        answer({ type: 'replica-started', now, loweredPriority: false });
        return;
      default:
        return;
    }
  }

  /** The rejuvenation state's name (a call, so the compiler does not narrow it between steps). */
  step(): string {
    return this.core.rejuvenation.name;
  }

  /** The replica process dies on its own (it was not asked to stop). */
  exits(): void {
    this.running = false;
    this.feed({ type: 'replica-exited', now: this.nowMs, expected: false, code: 1, signal: null });
  }

  runFor(ms: number): void {
    const until = this.nowMs + ms;
    while (this.nowMs < until) {
      this.nowMs += TICK_MS;
      // Every peer's guardian is connected and says its replica votes: nothing else is out.
      for (let peer = 0; peer < SCHEDULE.n; peer++)
        if (peer !== 2) this.feed({ type: 'peer-replica-state', now: this.nowMs, from: peer, voting: true });
      this.feed({ type: 'tick', now: this.nowMs, connectedGuardians: [0, 1, 3, 4, 5] });
    }
  }
}

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
    guardian.feed({ type: 'started', now: guardian.nowMs });
    guardian.feed({ type: 'replica-progress', now: guardian.nowMs, stage: 'caught-up' });
    assert.equal(guardian.step(), 'idle', 'the first start is over');
    // A crash, then its rejuvenation's new process crashes too while it validates its state.
    guardian.exits();
    guardian.runFor(CRASH_SETTLE_MAX_MS + 2 * TICK_MS);
    assert.equal(guardian.startsAtMs.length, 2, 'the crash is rejuvenated');
    assert.equal(guardian.step(), 'validating-state');
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
