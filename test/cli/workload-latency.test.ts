import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recentLatencyOf, WORKLOAD_LATENCY_WINDOW } from '../../src/cli/up.js';

describe("the live workload's latency for the dashboard", () => {
  it('takes p50 and p99 by nearest rank over the operations of the window only', () => {
    const nowMs = 100_000;
    const inWindow = Array.from({ length: 100 }, (_, index) => ({ atMs: nowMs - 10 * index, ms: index + 1 }));
    const tooOld = { atMs: nowMs - WORKLOAD_LATENCY_WINDOW.windowMs - 1, ms: 10_000 };
    assert.deepEqual(recentLatencyOf([tooOld, ...inWindow], nowMs), { p50Ms: 50, p99Ms: 99 });
    assert.deepEqual(recentLatencyOf([{ atMs: nowMs, ms: 7 }], nowMs), { p50Ms: 7, p99Ms: 7 });
  });

  it('is null when nothing completed in the window', () => {
    assert.equal(recentLatencyOf([], 0), null);
    assert.equal(recentLatencyOf([{ atMs: 0, ms: 3 }], WORKLOAD_LATENCY_WINDOW.windowMs + 1), null);
  });
});
