/**
 * Key epochs expire on the schedule (src/crypto/key-certificates.ts epochLifetimeOfSchedule): a
 * certificate lasts until its replica's next proactive slot has ended, and a retired epoch only
 * until the end of the slot that retired it, so that at any instant at most k replicas' retired
 * epochs are accepted.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { replicaId } from '../../src/messages/ids.js';
import { CLOCK_SKEW_ALLOWANCE_MS, epochLifetimeOfSchedule } from '../../src/crypto/key-certificates.js';
import { nextProactiveSlotOf, type ScheduleParameters, slotAt } from '../../src/core/schedule.js';

const schedule: ScheduleParameters = {
  n: 6,
  f: 1,
  k: 1,
  recoveryBoundMs: 8000,
  periodMs: 56_000,
  originMs: 1_000_000,
};
const lifetime = epochLifetimeOfSchedule(schedule);

describe('key epoch lifetimes on the schedule', () => {
  it('a certificate issued in its replica’s slot lasts until the end of its slot one period later', () => {
    const replica = replicaId(2);
    const slot = nextProactiveSlotOf(schedule, replica, schedule.originMs);
    const issuedAtMs = slot.startMs + 300;
    assert.equal(
      lifetime.validUntilMs(replica, issuedAtMs),
      slot.startMs + schedule.periodMs + schedule.recoveryBoundMs + CLOCK_SKEW_ALLOWANCE_MS,
    );
  });

  it('a certificate issued outside its replica’s slot (a first start) lasts until its next slot has ended', () => {
    const replica = replicaId(5);
    const issuedAtMs = schedule.originMs + 1000; // replica 0's slot
    const next = nextProactiveSlotOf(schedule, replica, issuedAtMs);
    assert.ok(next.startMs > issuedAtMs + schedule.recoveryBoundMs);
    assert.equal(lifetime.validUntilMs(replica, issuedAtMs), next.endMs + CLOCK_SKEW_ALLOWANCE_MS);
  });

  it('outlives a slot of its replica that starts less than T_D after the issue (the guardian may still be starting it)', () => {
    const replica = replicaId(1);
    const slot = nextProactiveSlotOf(schedule, replica, schedule.originMs);
    // Issued 2 s before the replica's slot, by a guardian whose first start takes 10 s.
    const issuedAtMs = slot.startMs - 2000;
    assert.equal(
      lifetime.validUntilMs(replica, issuedAtMs),
      slot.endMs + schedule.periodMs + CLOCK_SKEW_ALLOWANCE_MS,
    );
  });

  it('never outlives T_P + 2·T_D (+ the skew allowance) from its issue', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 10 * 56_000 }),
        (replica, offset) => {
          const issuedAtMs = schedule.originMs + offset;
          const until = lifetime.validUntilMs(replicaId(replica), issuedAtMs);
          return (
            until > issuedAtMs &&
            until <=
              issuedAtMs + schedule.periodMs + 2 * schedule.recoveryBoundMs + CLOCK_SKEW_ALLOWANCE_MS &&
            until >= issuedAtMs + schedule.recoveryBoundMs
          );
        },
      ),
    );
  });

  it('at any instant, at most k replicas rotated in rejuvenations have a retired epoch still accepted', () => {
    fc.assert(
      fc.property(
        // Each rotation is issued somewhere inside its replica's proactive slot.
        fc.array(fc.integer({ min: 0, max: schedule.recoveryBoundMs - 1 }), { minLength: 6, maxLength: 6 }),
        fc.integer({ min: 0, max: 3 * 56_000 }),
        (delays, offset) => {
          const now = schedule.originMs + schedule.periodMs + offset;
          let graced = 0;
          for (let replica = 0; replica < schedule.n; replica++) {
            // Its rotations in the last three periods, and the grace of the epoch each retired.
            for (let period = 0; period < 4; period++) {
              const slot = nextProactiveSlotOf(
                schedule,
                replicaId(replica),
                schedule.originMs + period * schedule.periodMs,
              );
              const issuedAtMs = slot.startMs + delays[replica]!;
              if (issuedAtMs > now) continue;
              if (now <= lifetime.retiredUntilMs(replicaId(replica), issuedAtMs)) graced++;
            }
          }
          return graced <= schedule.k;
        },
      ),
    );
  });

  it('makes an issue time the schedule cannot place expired, without throwing', () => {
    assert.equal(lifetime.retiredUntilMs(replicaId(0), Number.NaN), Number.NEGATIVE_INFINITY);
    assert.equal(slotAt(schedule, schedule.originMs).startMs, schedule.originMs);
  });
});
