import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvariantViolation } from '../../src/messages/ids.js';
import {
  OVERFLOW_KEY,
  RATE_LIMITED_LOG_LIMITS,
  RateLimitedLog,
} from '../../src/transport/rate-limited-log.js';

describe('RateLimitedLog', () => {
  it('lets the first line through, then one per interval carrying the suppressed count', () => {
    const log = new RateLimitedLog({ intervalMilliseconds: 1000 });
    assert.deepEqual(log.admit('10.0.0.1 garbage', 0), { key: '10.0.0.1 garbage', suppressed: 0 });
    for (let at = 1; at < 1000; at += 10) assert.equal(log.admit('10.0.0.1 garbage', at), null);
    assert.deepEqual(log.admit('10.0.0.1 garbage', 1000), { key: '10.0.0.1 garbage', suppressed: 100 });
    assert.equal(log.admit('10.0.0.1 garbage', 1999), null);
    assert.deepEqual(log.admit('10.0.0.1 garbage', 5000), { key: '10.0.0.1 garbage', suppressed: 1 });
    assert.equal(log.suppressedTotal, 101);
  });

  it('limits each key on its own', () => {
    const log = new RateLimitedLog({ intervalMilliseconds: 1000 });
    assert.notEqual(log.admit('a', 0), null);
    assert.notEqual(log.admit('b', 1), null);
    assert.equal(log.admit('a', 2), null);
    assert.equal(log.admit('b', 3), null);
    assert.equal(log.trackedKeys, 2);
  });

  it('reads its injected clock when no time is given', () => {
    let now = 0;
    const log = new RateLimitedLog({ intervalMilliseconds: 50, now: () => now });
    assert.notEqual(log.admit('k'), null);
    now = 49;
    assert.equal(log.admit('k'), null);
    now = 50;
    assert.deepEqual(log.admit('k'), { key: 'k', suppressed: 1 });
  });

  it('bounds the keys it tracks: beyond them, new keys share the catch-all', () => {
    const log = new RateLimitedLog({ intervalMilliseconds: 1000, maxTrackedKeys: 3 });
    for (const key of ['a', 'b', 'c']) {
      assert.deepEqual(log.admit(key, 0), { key, suppressed: 0 });
      assert.equal(log.admit(key, 1), null, 'each of them owes a count, so it stays tracked');
    }
    assert.deepEqual(log.admit('d', 10), { key: OVERFLOW_KEY, suppressed: 0 });
    for (let index = 0; index < 1000; index++) assert.equal(log.admit(`x${index}`, 20), null);
    assert.equal(log.trackedKeys, 3);
    assert.deepEqual(log.admit('e', 1010), { key: OVERFLOW_KEY, suppressed: 1000 });
    for (const key of ['a', 'b', 'c']) assert.deepEqual(log.admit(key, 1010), { key, suppressed: 1 });
    // Once their interval is over, idle keys are forgotten and new ones are tracked again.
    assert.deepEqual(log.admit('f', 2010), { key: 'f', suppressed: 0 });
    assert.ok(log.trackedKeys <= 3);
  });

  it('keeps a key that still owes a count until it is reported', () => {
    const log = new RateLimitedLog({ intervalMilliseconds: 1000, maxTrackedKeys: 1 });
    assert.notEqual(log.admit('a', 0), null);
    assert.equal(log.admit('a', 1), null);
    // 'a' owes one line: it is not swept, so 'b' goes to the catch-all.
    assert.equal(log.admit('b', 5000)?.key, OVERFLOW_KEY);
    assert.deepEqual(log.admit('a', 5001), { key: 'a', suppressed: 1 });
  });

  it('reports the counts owed at the end of a burst, once', () => {
    const log = new RateLimitedLog({ intervalMilliseconds: 1000, maxTrackedKeys: 1 });
    assert.equal(log.owesCounts, false);
    log.admit('a', 0);
    log.admit('a', 1);
    log.admit('a', 2);
    log.admit('z', 3); // the catch-all's first line
    log.admit('y', 4);
    assert.equal(log.owesCounts, true);
    assert.deepEqual(log.overdue(999), [], 'not before an interval has passed');
    assert.deepEqual(log.overdue(1004), [
      { key: 'a', suppressed: 2 },
      { key: OVERFLOW_KEY, suppressed: 1 },
    ]);
    assert.equal(log.owesCounts, false);
    assert.deepEqual(log.overdue(10_000), []);
    // The summary counts as the key's line: the next one waits a whole interval again.
    assert.equal(log.admit('a', 1500), null);
  });

  it('refuses limits that are not positive integers', () => {
    assert.throws(() => new RateLimitedLog({ intervalMilliseconds: 0 }), InvariantViolation);
    assert.throws(() => new RateLimitedLog({ maxTrackedKeys: 1.5 }), InvariantViolation);
    const defaults = new RateLimitedLog();
    assert.equal(defaults.intervalMilliseconds, RATE_LIMITED_LOG_LIMITS.defaultIntervalMilliseconds);
    assert.equal(defaults.maxTrackedKeys, RATE_LIMITED_LOG_LIMITS.defaultMaxTrackedKeys);
  });

  it('property: bounded lines and keys, and every suppressed line is accounted for', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 150 })), {
          maxLength: 400,
        }),
        (interval, maxTrackedKeys, calls) => {
          const log = new RateLimitedLog({ intervalMilliseconds: interval, maxTrackedKeys });
          let now = 0;
          let written = 0;
          let reported = 0;
          const lastLine = new Map<string, number>();
          for (const [keyIndex, advance] of calls) {
            now += advance;
            const permit = log.admit(`key ${keyIndex}`, now);
            assert.ok(log.trackedKeys <= maxTrackedKeys);
            if (permit === null) continue;
            written++;
            reported += permit.suppressed;
            const previous = lastLine.get(permit.key);
            // After the first line of a key (the table may forget an idle one and start it over),
            // lines come at least an interval apart.
            if (previous !== undefined) assert.ok(now - previous >= interval || permit.suppressed === 0);
            lastLine.set(permit.key, now);
          }
          for (const owed of log.overdue(now + interval)) reported += owed.suppressed;
          assert.equal(written + log.suppressedTotal, calls.length, 'every call is written or suppressed');
          assert.equal(reported, log.suppressedTotal, 'every suppressed line is reported exactly once');
          assert.equal(log.owesCounts, false);
        },
      ),
    );
  });
});
