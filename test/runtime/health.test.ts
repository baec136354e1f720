import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GuardianReport } from '../../src/runtime/guardian-report.js';
import {
  clusterHealth,
  describeRejuvenation,
  formatAge,
  type HealthParameters,
  replicaList,
  STALL_AFTER_REQUEST_TIMEOUTS,
} from '../../src/runtime/health.js';
import type { ReplicaReport, ReplicaStatus } from '../../src/runtime/status.js';
import { sampleGuardianStatus, sampleReplicaStatus } from '../dashboard/fake-replicas.js';

const FOUR: HealthParameters = { n: 4, f: 1, k: 0, requestTimeoutMs: 2000 };
const SIX: HealthParameters = { n: 6, f: 1, k: 1, requestTimeoutMs: 2000 };
const STALL_AFTER_MS = STALL_AFTER_REQUEST_TIMEOUTS * FOUR.requestTimeoutMs;
const NOW_MS = 1_767_225_600_000;

function upReports(
  n: number,
  overrides: (replica: number) => Partial<ReplicaStatus> = () => ({}),
): ReplicaReport[] {
  return Array.from({ length: n }, (_, replica) => ({
    up: true,
    ...sampleReplicaStatus(replica, overrides(replica)),
  }));
}

function down(replica: number, error = 'connection refused'): ReplicaReport {
  return { up: false, replica, error };
}

/** Every replica waits on requests that are `ageMs` old and executed its last batch `idleMs` ago. */
function stuck(ageMs: number, idleMs: number | null): Partial<ReplicaStatus> {
  return {
    pendingRequests: 40,
    oldestPendingMs: ageMs,
    msSinceLastExecution: idleMs,
    throughputPerSecond: 0,
  };
}

function guardiansAtRest(n: number): GuardianReport[] {
  return Array.from({ length: n }, (_, replica) => ({ up: true, ...sampleGuardianStatus(replica, NOW_MS) }));
}

describe('clusterHealth', () => {
  it('calls a cluster that executes while requests come and go healthy', () => {
    const health = clusterHealth(upReports(4), undefined, FOUR);
    assert.equal(health.verdict, 'healthy');
    assert.deepEqual(health.reasons, []);
    assert.equal(health.quorum, 3);
    assert.equal(health.votingReplicas, 4);
    assert.equal(health.stallAfterMs, STALL_AFTER_MS);
    assert.ok(
      health.replicas.every((replica) => replica.condition === 'ok' && replica.rejuvenation === null),
    );
  });

  it('calls an idle cluster healthy, however long ago it last executed', () => {
    const idle = { pendingRequests: 0, oldestPendingMs: null, throughputPerSecond: 0 };
    for (const msSinceLastExecution of [null, 3_600_000]) {
      const health = clusterHealth(
        upReports(4, () => ({ ...idle, msSinceLastExecution })),
        undefined,
        FOUR,
      );
      assert.equal(health.verdict, 'healthy', `last execution ${msSinceLastExecution} ms ago`);
      assert.deepEqual(health.reasons, []);
    }
  });

  it('calls a cluster degraded when a replica is down, transferring state or not voting', () => {
    const health = clusterHealth(
      [
        ...upReports(3, (replica) =>
          replica === 1
            ? { stateTransferInProgress: true, voting: false }
            : replica === 2
              ? { voting: false }
              : {},
        ),
        down(3),
      ],
      undefined,
      FOUR,
    );
    // Replica 0 alone votes: fewer than a quorum, so this one is stalled; drop a problem to see degraded.
    assert.equal(health.verdict, 'stalled');
    assert.deepEqual(
      health.replicas.map((replica) => replica.condition),
      ['ok', 'transferring-state', 'not-voting', 'down'],
    );

    const degraded = clusterHealth(
      [...upReports(5, (replica) => (replica === 2 ? { voting: false } : {})), down(5)],
      undefined,
      SIX,
    );
    assert.equal(degraded.verdict, 'degraded');
    assert.deepEqual(degraded.reasons, ['replica 5 is down', 'replica 2 is not voting']);

    const twoDown = clusterHealth([...upReports(4), down(4), down(5)], undefined, SIX);
    assert.equal(twoDown.verdict, 'degraded');
    assert.deepEqual(twoDown.reasons, ['replicas 4 and 5 are down']);
    assert.equal(twoDown.votingReplicas, 4);
  });

  it('calls a cluster stalled when requests wait beyond the limit and nothing executes', () => {
    const health = clusterHealth(
      upReports(4, (replica) => ({
        ...stuck(14_000, 12_000 + replica),
        viewChangeInProgress: replica !== 2,
      })),
      undefined,
      FOUR,
    );
    assert.equal(health.verdict, 'stalled');
    assert.deepEqual(health.reasons, [
      'no batch executed for 12 s while 40 requests wait (the oldest for 14 s)',
      'replicas 0, 1 and 3 are in a view change',
    ]);
    // Every replica still answers and votes: the verdict does not come from being down.
    assert.ok(health.replicas.every((replica) => replica.condition === 'ok'));

    const neverExecuted = clusterHealth(
      upReports(4, () => stuck(9_000, null)),
      undefined,
      FOUR,
    );
    assert.deepEqual(neverExecuted.reasons, [
      'no batch executed since the replicas started while 40 requests wait (the oldest for 9 s)',
    ]);
  });

  it('does not call requests younger than the limit, or a cluster still executing, stalled', () => {
    const young = clusterHealth(
      upReports(4, () => stuck(STALL_AFTER_MS - 1, 60_000)),
      undefined,
      FOUR,
    );
    assert.equal(young.verdict, 'healthy');
    // Old requests at every replica, but batches execute: a slow request, not a stalled cluster.
    const executing = clusterHealth(
      upReports(4, () => stuck(60_000, 10)),
      undefined,
      FOUR,
    );
    assert.equal(executing.verdict, 'healthy');
  });

  it('needs f + 1 replicas to agree, so one liar neither fakes nor hides a stall', () => {
    const fakedStall = clusterHealth(
      upReports(4, (replica) => (replica === 3 ? stuck(60_000, 60_000) : {})),
      undefined,
      FOUR,
    );
    assert.equal(fakedStall.verdict, 'healthy');
    const hiddenStall = clusterHealth(
      upReports(4, (replica) => (replica === 3 ? { msSinceLastExecution: 1 } : stuck(60_000, 30_000))),
      undefined,
      FOUR,
    );
    assert.equal(hiddenStall.verdict, 'stalled');
    assert.match(hiddenStall.reasons[0]!, /^no batch executed for 30 s while 40 requests wait/);
  });

  it('calls a cluster without a quorum of voting replicas stalled, even when idle', () => {
    const health = clusterHealth(
      [...upReports(2, () => ({ pendingRequests: 0, oldestPendingMs: null })), down(2), down(3, 'HTTP 500')],
      undefined,
      FOUR,
    );
    assert.equal(health.verdict, 'stalled');
    assert.deepEqual(health.reasons, [
      'only 2 of 4 replicas are up and voting; a quorum needs 3',
      'replicas 2 and 3 are down',
    ]);
  });

  it('counts a replica its guardian is rejuvenating as rejuvenating, not down', () => {
    const guardians = guardiansAtRest(6);
    const startedAtMs = NOW_MS - 1_200;
    guardians[2] = {
      up: true,
      ...sampleGuardianStatus(2, NOW_MS, {
        keyEpoch: 5,
        replicaProcess: 'stopped',
        recovery: {
          inProgress: true,
          kind: 'proactive',
          reason: 'scheduled',
          step: 'validating-state',
          startedAtMs,
          stepStartedAtMs: startedAtMs + 900,
        },
      }),
    };
    const reports = upReports(6);
    reports[2] = down(2, 'fetch failed');
    const health = clusterHealth(reports, guardians, SIX);
    assert.equal(health.verdict, 'degraded');
    assert.deepEqual(health.reasons, [
      'replica 2 is being rejuvenated (proactive, step validating-state, key epoch 5)',
    ]);
    assert.deepEqual(health.replicas[2], {
      replica: 2,
      condition: 'rejuvenating',
      rejuvenation: { kind: 'proactive', step: 'validating-state', keyEpoch: 5 },
      guardianDown: false,
    });
    assert.equal(
      describeRejuvenation(health.replicas[2]!.rejuvenation!),
      'step validating-state, key epoch 5',
    );

    // Without the guardian's word the same replica is simply down.
    const unguarded = clusterHealth(reports, undefined, SIX);
    assert.equal(unguarded.replicas[2]!.condition, 'down');
    assert.deepEqual(unguarded.reasons, ['replica 2 is down']);
  });

  it('ignores a guardian answer for another replica, and reports guardians that do not answer', () => {
    const guardians = guardiansAtRest(6);
    const recovering = sampleGuardianStatus(3, NOW_MS, {
      recovery: {
        inProgress: true,
        kind: 'reactive',
        reason: 'equivocation',
        step: null,
        startedAtMs: NOW_MS,
        stepStartedAtMs: null,
      },
    });
    guardians[1] = { up: true, ...recovering };
    guardians[4] = { up: false, replica: 4, error: 'connection refused' };
    guardians[5] = { up: false, replica: 5, error: 'no answer within 1000 ms' };
    const reports = upReports(6);
    reports[1] = down(1);
    const health = clusterHealth(reports, guardians, SIX);
    assert.equal(health.replicas[1]!.condition, 'down');
    assert.deepEqual(health.reasons, [
      'replica 1 is down',
      'the guardians of replicas 4 and 5 do not answer',
    ]);

    guardians[3] = { up: true, ...recovering };
    const rejuvenating = clusterHealth(upReports(6), guardians, SIX);
    assert.equal(rejuvenating.replicas[3]!.condition, 'rejuvenating', 'up, but being rejuvenated');
    assert.equal(rejuvenating.reasons[0], 'replica 3 is being rejuvenated (reactive, key epoch 2)');
  });
});

describe('clusterHealth on key epochs and the trust boundary', () => {
  it('calls a replica whose key epoch expired degraded, from the time of the reports', () => {
    const guardians = guardiansAtRest(6);
    guardians[4] = {
      up: true,
      ...sampleGuardianStatus(4, NOW_MS, { keyEpoch: 7, keyEpochAcceptedUntilMs: NOW_MS - 12_000 }),
    };
    const health = clusterHealth(upReports(6), guardians, { ...SIX, nowMs: NOW_MS });
    assert.equal(health.verdict, 'degraded');
    assert.deepEqual(health.reasons, [
      "replica 4's key epoch 7 expired 12 s ago: nobody accepts its signatures until its guardian rotates it",
    ]);
    // Not judged without a time, nor while the epoch is still accepted.
    assert.equal(clusterHealth(upReports(6), guardians, SIX).verdict, 'healthy');
    assert.equal(
      clusterHealth(upReports(6), guardians, { ...SIX, nowMs: NOW_MS - 12_000 }).verdict,
      'healthy',
    );
  });

  it('says plainly where the trust boundary is not enforced, without changing the verdict', () => {
    const reason =
      "trust boundary not enforced: replica runs as the guardian's user (no replica user is configured)";
    const guardians = guardiansAtRest(6).map((guardian, replica) =>
      guardian.up && replica !== 2 ? { ...guardian, trustBoundary: { enforced: false, reason } } : guardian,
    );
    const health = clusterHealth(upReports(6), guardians, { ...SIX, nowMs: NOW_MS });
    assert.equal(health.verdict, 'healthy');
    assert.deepEqual(health.reasons, []);
    assert.deepEqual(health.notices, [`replicas 0, 1, 3, 4 and 5: ${reason}`]);
    assert.deepEqual(clusterHealth(upReports(6), guardiansAtRest(6), SIX).notices, []);
  });
});

describe('health wording', () => {
  it('lists replicas and ages in plain words', () => {
    assert.equal(replicaList([3]), 'replica 3');
    assert.equal(replicaList([1, 3]), 'replicas 1 and 3');
    assert.equal(replicaList([0, 1, 2]), 'replicas 0, 1 and 2');
    assert.equal(formatAge(0), '0 s');
    assert.equal(formatAge(4_250), '4.3 s');
    assert.equal(formatAge(12_400), '12 s');
    assert.equal(formatAge(125_000), '2 min 5 s');
    assert.equal(formatAge(180_000), '3 min');
  });
});
