/**
 * The figures `phalanx bench recovery` prints for a slot, from a guardian's record and the
 * workload's completion times: rates, ratios against the baseline, operations lost, step times.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { slotFigures } from '../../src/cli/bench-recovery.js';
import { STANDBY_LEAD_MS } from '../../src/recovery/guardian.js';
import type { RecoveryRecord } from '../../src/runtime/guardian-report.js';

const START_MS = 1_000_000;
const BASELINE_MS = 15_000;

const record: RecoveryRecord = {
  kind: 'proactive',
  reason: 'period 0',
  startedAtMs: START_MS,
  durationMs: 2000,
  steps: [
    { step: 'validating-state', durationMs: 1250 },
    { step: 'transferring-state', durationMs: 500 },
    { step: 'rejoining', durationMs: 250 },
  ],
  exceededBound: false,
  keyEpoch: 2,
};

/** Completions every `everyMs` over [from, to). */
function completions(from: number, to: number, everyMs: number): number[] {
  const times: number[] = [];
  for (let time = from; time < to; time += everyMs) times.push(time);
  return times;
}

function countIn(times: readonly number[]): (from: number, to: number) => number {
  return (from, to) => times.filter((time) => time >= from && time < to).length;
}

describe('bench recovery figures', () => {
  it('compares the recovery with the baseline before the preparation, and counts what was lost', () => {
    const preparationFrom = START_MS - STANDBY_LEAD_MS;
    const times = [
      // 100 ops/s in the baseline, 80 ops/s while the guardian prepares, 50 ops/s during the recovery.
      ...completions(preparationFrom - BASELINE_MS, preparationFrom, 10),
      ...completions(preparationFrom, START_MS, 12.5),
      ...completions(START_MS, START_MS + record.durationMs, 20),
      // After the recovery: counted nowhere.
      ...completions(START_MS + record.durationMs, START_MS + 10_000, 1),
    ];
    const figures = slotFigures(3, record, countIn(times), BASELINE_MS);
    assert.equal(figures.replica, 3);
    assert.equal(figures.baseline_ops_s, 100);
    assert.equal(figures.during_recovery_ops_s, 50);
    assert.equal(figures.throughput_ratio, 0.5);
    assert.equal(figures.throughput_ratio_during_preparation, 0.8);
    assert.equal(figures.operations_lost, 100, '(100 − 50) ops/s over 2 s');
    assert.equal(figures.recovery_s, 2);
    assert.equal(figures.transfer_s, 0.5);
    assert.deepEqual(figures.steps_s, {
      'validating-state': 1.25,
      'transferring-state': 0.5,
      rejoining: 0.25,
    });
  });

  it('reports a ratio of 0, not a division by zero, when nothing completed in the baseline', () => {
    const figures = slotFigures(0, record, () => 0, BASELINE_MS);
    assert.equal(figures.throughput_ratio, 0);
    assert.equal(figures.operations_lost, 0);
  });
});
