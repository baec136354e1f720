/**
 * The guardian's metrics from status snapshots, without processes: each recovery, alarm and
 * evidence record is counted once however many scrapes see it, the recovery histogram's buckets
 * are fractions of T_D, and the page serves what docs/metrics.md lists for the guardian.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { GuardianMetrics, NewestFirstCursor } from '../../src/recovery/guardian-metrics.js';
import type { GuardianStatus, RecoveryRecord } from '../../src/runtime/guardian-report.js';
import { assertServesDocumented, sampleValue } from '../prometheus/documented.js';
import { parsePrometheusText } from '../prometheus/text-format.js';

const T_D_MS = 8000;

function status(overrides: Partial<GuardianStatus> = {}): GuardianStatus {
  return {
    replica: 2,
    keyEpoch: 3,
    replicaProcess: 'running',
    recovery: {
      inProgress: false,
      kind: null,
      reason: null,
      step: null,
      startedAtMs: null,
      stepStartedAtMs: null,
    },
    lastRejuvenationAtMs: 1_000_000,
    exposureMs: 5000,
    guaranteeMs: 64_000,
    recoveryBoundMs: T_D_MS,
    periodMs: 56_000,
    nextProactiveAtMs: 1_050_000,
    recentRecoveries: [],
    alarms: [],
    evidence: [],
    suspicions: [],
    connectedGuardians: 5,
    pendingReactive: [],
    faultyReplicas: { f: 1, counted: [4], proven: [] },
    safeMode: null,
    keyEpochAcceptedUntilMs: null,
    trustBoundary: { enforced: false, reason: 'test' },
    ...overrides,
  };
}

function recovery(
  keyEpoch: number,
  durationMs: number,
  kind: 'proactive' | 'reactive' = 'proactive',
): RecoveryRecord {
  return {
    kind,
    reason: 'schedule',
    startedAtMs: 1000 * keyEpoch,
    durationMs,
    steps: [
      { step: 'stopping', durationMs: durationMs / 4 },
      { step: 'transferring-state', durationMs: (3 * durationMs) / 4 },
    ],
    exceededBound: durationMs > T_D_MS,
    keyEpoch,
  };
}

describe('GuardianMetrics', () => {
  it('serves what docs/metrics.md lists for the guardian, with their types', async () => {
    const metrics = new GuardianMetrics(2, T_D_MS);
    const page = parsePrometheusText(await metrics.render({ status: status(), standby: 'none' }));
    assertServesDocumented(page, 'Guardian');
    assert.equal(
      sampleValue(page, 'phalanx_guardian_exposure_seconds', 'phalanx_guardian_exposure_seconds'),
      5,
    );
    assert.equal(
      sampleValue(page, 'phalanx_guardian_standby', 'phalanx_guardian_standby', { state: 'none' }),
      1,
    );
    assert.equal(
      sampleValue(page, 'phalanx_guardian_key_epoch', 'phalanx_guardian_key_epoch', { replica: '2' }),
      3,
    );
  });

  it('counts each recovery, alarm and evidence record once across scrapes', async () => {
    const metrics = new GuardianMetrics(2, T_D_MS);
    const first = recovery(1, 2000);
    const second = recovery(2, 9000, 'reactive');
    const alarm = { atMs: 5, message: 'over T_D' };
    const evidence = {
      atMs: 6,
      kind: 'equivocation',
      accused: 1,
      reporter: 'replica 0',
      valid: true,
      detail: '',
    };
    await metrics.render({ status: status({ recentRecoveries: [first] }), standby: 'none' });
    await metrics.render({ status: status({ recentRecoveries: [first] }), standby: 'none' });
    const text = await metrics.render({
      status: status({
        recentRecoveries: [second, first],
        alarms: [alarm, alarm],
        evidence: [evidence],
        recovery: {
          inProgress: true,
          kind: 'proactive',
          reason: 'schedule',
          step: 'issuing-keys',
          startedAtMs: 1_004_000,
          stepStartedAtMs: 1_004_500,
        },
      }),
      standby: 'ready',
    });
    const page = parsePrometheusText(text);
    const value = (family: string, name: string, labels: Record<string, string> = {}): number | undefined =>
      sampleValue(page, family, name, labels);
    const recoveries = 'phalanx_guardian_recoveries_total';
    assert.equal(value(recoveries, recoveries, { kind: 'proactive' }), 1);
    assert.equal(value(recoveries, recoveries, { kind: 'reactive' }), 1);
    const over = 'phalanx_guardian_recoveries_over_bound_total';
    assert.equal(value(over, over, { kind: 'reactive' }), 1);
    assert.equal(value(over, over, { kind: 'proactive' }), 0);
    // Two equal alarms at one instant are two alarms.
    assert.equal(value('phalanx_guardian_alarms_total', 'phalanx_guardian_alarms_total'), 2);
    const evidenceTotal = 'phalanx_guardian_evidence_total';
    assert.equal(value(evidenceTotal, evidenceTotal, { kind: 'equivocation', valid: 'true' }), 1);
    // Buckets are fractions of T_D: le = 8 (T_D) holds the 2 s recovery, not the 9 s one.
    const duration = 'phalanx_guardian_recovery_duration_seconds';
    assert.equal(value(duration, `${duration}_bucket`, { kind: 'proactive', le: '8' }), 1);
    assert.equal(value(duration, `${duration}_bucket`, { kind: 'reactive', le: '8' }), 0);
    assert.equal(value(duration, `${duration}_bucket`, { kind: 'reactive', le: '10' }), 1);
    const steps = 'phalanx_guardian_recovery_step_duration_seconds';
    assert.equal(value(steps, `${steps}_count`, { step: 'transferring-state' }), 2);
    const step = 'phalanx_guardian_recovery_step';
    assert.equal(value(step, step, { step: 'issuing-keys' }), 1);
    assert.equal(value(step, step, { step: 'stopping' }), 0);
    // now = last rejuvenation + exposure = 1 005 000; the recovery started at 1 004 000.
    assert.equal(
      value('phalanx_guardian_recovery_elapsed_seconds', 'phalanx_guardian_recovery_elapsed_seconds'),
      1,
    );
    assert.equal(value('phalanx_guardian_standby', 'phalanx_guardian_standby', { state: 'ready' }), 1);
  });
});

describe('NewestFirstCursor', () => {
  /** A list capped at `cap`, newest first, fed batch by batch; checks each call's count. */
  const replay = (arrivals: readonly (readonly string[])[], cap: number): void => {
    const cursor = new NewestFirstCursor<string>((entry) => entry);
    let list: string[] = [];
    for (const batch of arrivals) {
      list = [...[...batch].reverse(), ...list].slice(0, cap);
      assert.equal(cursor.fresh(list).length, Math.min(batch.length, cap));
    }
  };

  it('counts every record, equal ones too, while the list is below its cap', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.constantFrom('a', 'b'), { maxLength: 4 }), { maxLength: 8 }),
        (arrivals) => replay(arrivals, 1000),
      ),
    );
  });

  it('counts every record once the list is capped, when records differ (they carry their time)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 6 }), { maxLength: 12 }),
        fc.integer({ min: 1, max: 8 }),
        (sizes, cap) => {
          let next = 0;
          const arrivals = sizes.map((size) =>
            Array.from({ length: Math.min(size, cap) }, () => `record ${next++}`),
          );
          replay(arrivals, cap);
        },
      ),
    );
  });
});
